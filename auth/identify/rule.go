package identify

import (
	"fmt"
	"strings"
)

// Source says where a Rule reads its value. The zero Source is invalid:
// New refuses a Rule without one.
type Source string

// The sources a Rule may read, each with the Rails expression it plays.
const (
	// Encrypted reads cookies.encrypted[Key].
	Encrypted Source = "encrypted"
	// Signed reads cookies.signed[Key].
	Signed Source = "signed"
	// Session reads session[Key] from the cookie-store session.
	Session Source = "session"
	// Warden reads the Devise user of scope Key, env["warden"].user(Key),
	// from the cookie-store session. Its value is the record's to_key.
	Warden Source = "warden"
	// Token reads a gorilla/securecookie value from the query parameter
	// Key (/cable?Key=...), issued by a Go service with auth.GoCookies.
	Token Source = "token"
	// GoCookie reads a gorilla/securecookie value from the cookie Key.
	GoCookie Source = "gocookie"
)

// readsCookies tells whether s reads the Cookie header.
func (s Source) readsCookies() bool { return s != Token }

// readsRails tells whether s needs Config.Cookies.
func (s Source) readsRails() bool {
	return s == Encrypted || s == Signed || s == Session || s == Warden
}

// ToS is the Model of a Rule that renders its value with Ruby's to_s even
// when Config.DefaultModel names a model (the @to_s of ParseRule).
const ToS = "to_s"

// Rule is one source of one identifier, the Go form of one operand of
//
//	self.current_user = cookies.encrypted[:user_id] || env["warden"].user
//
// Several Rules with the same Name are tried in the order given to New,
// as Ruby's || tries its operands. The zero Rule is invalid.
type Rule struct {
	// Name is the identified_by name, e.g. "current_user".
	Name string

	// Source says what Key names; see the Source constants.
	Source Source

	// Key is the cookie, the session key, the Warden scope or the query
	// parameter to read.
	Key string

	// Path digs into the value: each element is a hash key, or an array
	// index in decimal. Nil uses the value itself. A Warden rule has no
	// Path.
	Path []string

	// Model is the GlobalID model the value renders as, e.g. "User": the
	// identifier is then the record's to_gid_param. "" uses
	// Config.DefaultModel; ToS, or "" with no DefaultModel, renders the
	// value with to_s.
	Model string
}

// ParseRule reads a rule written as the --identify flag of gocable takes
// it:
//
//	NAME=SOURCE:KEY[:PATH...][@Model|@to_s]
//
// where SOURCE is encrypted, signed, session, token or gocookie, and
// session:warden:SCOPE is the Devise user of SCOPE. For example
// "current_user=encrypted:user_id@User",
// "current_user=session:warden:user" or
// "tenant=signed:remember:tenant_id".
func ParseRule(s string) (Rule, error) {
	fail := func(format string, args ...any) (Rule, error) {
		return Rule{}, fmt.Errorf("identify: rule %q: %s", s, fmt.Sprintf(format, args...))
	}
	name, src, ok := strings.Cut(s, "=")
	if !ok || name == "" || src == "" {
		return fail("want NAME=SOURCE, e.g. current_user=encrypted:user_id")
	}
	r := Rule{Name: name}
	if i := strings.LastIndex(src, "@"); i >= 0 {
		src, r.Model = src[:i], src[i+1:]
		if r.Model == "" {
			return fail("empty model after @")
		}
	}
	parts := strings.Split(src, ":")
	if len(parts) < 2 || parts[1] == "" {
		return fail("want SOURCE:NAME, e.g. encrypted:user_id")
	}
	r.Source, r.Key, r.Path = Source(parts[0]), parts[1], parts[2:]
	switch r.Source {
	case Encrypted, Signed, Token, GoCookie:
	case Session:
		if r.Key == "warden" {
			if len(parts) != 3 || parts[2] == "" {
				return fail("want session:warden:SCOPE, e.g. session:warden:user")
			}
			r.Source, r.Key, r.Path = Warden, parts[2], nil
		}
	default:
		return fail("unknown source %q (want encrypted, signed, session, token or gocookie)", r.Source)
	}
	if len(r.Path) == 0 {
		r.Path = nil
	}
	if err := r.check(); err != nil {
		return fail("%v", err)
	}
	return r, nil
}

// check reports what makes r unusable.
func (r Rule) check() error {
	if r.Name == "" {
		return fmt.Errorf("no identifier name")
	}
	if r.Key == "" {
		return fmt.Errorf("no key")
	}
	switch r.Source {
	case Encrypted, Signed, Session, Token, GoCookie:
	case Warden:
		if len(r.Path) > 0 {
			return fmt.Errorf("a Warden rule has no path")
		}
	case "":
		return fmt.Errorf("no source")
	default:
		return fmt.Errorf("unknown source %q", string(r.Source))
	}
	for _, p := range r.Path {
		if p == "" {
			return fmt.Errorf("empty key")
		}
	}
	return nil
}

// String returns r as ParseRule reads it.
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Name)
	b.WriteByte('=')
	if r.Source == Warden {
		b.WriteString("session:warden:")
	} else {
		b.WriteString(string(r.Source))
		b.WriteByte(':')
	}
	b.WriteString(r.Key)
	for _, p := range r.Path {
		b.WriteByte(':')
		b.WriteString(p)
	}
	if r.Model != "" {
		b.WriteByte('@')
		b.WriteString(r.Model)
	}
	return b.String()
}
