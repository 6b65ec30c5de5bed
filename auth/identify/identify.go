package identify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gocable/gocable/auth"
	"github.com/gocable/gocable/cable"
)

// Config holds what the rules read with. The zero Config has no reader:
// New refuses every rule with it, naming the field the rule needs.
type Config struct {
	// Cookies reads the Rails cookies of Encrypted, Signed, Session and
	// Warden rules. Nil: New refuses those rules.
	Cookies *auth.RailsCookies

	// SessionKey is the name of the cookie-store session cookie, e.g.
	// "_myapp_session" (session_store :cookie_store, key:). "": New refuses
	// Session and Warden rules.
	SessionKey string

	// Tokens reads the gorilla/securecookie values of Token and GoCookie
	// rules. Nil: New refuses those rules.
	Tokens *auth.GoCookies

	// GlobalIDApp is GlobalID.app of the Rails application, e.g. "my-app"
	// for module MyApp; rules with a model render gid://GlobalIDApp/Model/ID.
	// It must equal what `bin/rails runner 'p GlobalID.app'` prints, or the
	// connection identifiers differ from Rails' and remote disconnects miss.
	// "": New refuses rules with a model.
	GlobalIDApp string

	// DefaultModel is the GlobalID model of rules whose Model is "", e.g.
	// "User". "": such rules render their value with to_s.
	DefaultModel string

	// WardenTimeout is Devise's timeout_in (timeoutable): a Warden user
	// whose last request is older gives nothing. 0: no check.
	WardenTimeout time.Duration

	// Logger receives, at debug, why each rule gave nothing and the
	// identifier of each identified connection, and at info the refusals of
	// requests without a Cookie header. Nil means slog.Default().
	Logger *slog.Logger
}

// Authenticator identifies connections by its rules, as the connect method
// of an ApplicationCable::Connection does; it implements
// cable.Authenticator. Build it with New; the zero Authenticator refuses
// every connection. It is safe for concurrent use.
type Authenticator struct {
	groups  []group
	cfg     Config
	logger  *slog.Logger
	now     func() time.Time
	session bool // some rule reads the session
}

var _ cable.Authenticator = (*Authenticator)(nil)

var errNoRules = errors.New("identify: no rules")

// group is one identifier and its rules, in the order they are tried.
type group struct {
	name  string
	rules []Rule
}

// New returns an Authenticator that gives each connection one value per
// distinct Rule.Name. The rules of one name are tried in the order given,
// as Ruby's || does: the first that gives a value wins. It returns an error
// when there are no rules or a rule cannot work with cfg.
func New(cfg Config, rules ...Rule) (*Authenticator, error) {
	if len(rules) == 0 {
		return nil, errNoRules
	}
	id := &Authenticator{cfg: cfg, logger: cfg.Logger, now: time.Now}
	if id.logger == nil {
		id.logger = slog.Default()
	}
	index := map[string]int{}
	for _, r := range rules {
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("identify: rule %q: %w", r.String(), err)
		}
		if err := cfg.check(r); err != nil {
			return nil, fmt.Errorf("identify: rule %q: %w", r.String(), err)
		}
		r.Path = append([]string(nil), r.Path...)
		if r.Source == Session || r.Source == Warden {
			id.session = true
		}
		i, ok := index[r.Name]
		if !ok {
			i = len(id.groups)
			index[r.Name] = i
			id.groups = append(id.groups, group{name: r.Name})
		}
		id.groups[i].rules = append(id.groups[i].rules, r)
	}
	return id, nil
}

// check reports what r needs that c lacks.
func (c Config) check(r Rule) error {
	switch {
	case r.Source.readsRails() && c.Cookies == nil:
		return errors.New("Config.Cookies is nil")
	case (r.Source == Session || r.Source == Warden) && c.SessionKey == "":
		return errors.New("Config.SessionKey is empty")
	case (r.Source == Token || r.Source == GoCookie) && c.Tokens == nil:
		return errors.New("Config.Tokens is nil")
	case c.model(r) != "" && c.GlobalIDApp == "":
		return errors.New("a GlobalID model needs Config.GlobalIDApp")
	}
	return nil
}

// model returns the GlobalID model r renders as, "" for to_s.
func (c Config) model(r Rule) string {
	m := r.Model
	if m == "" {
		m = c.DefaultModel
	}
	if m == ToS {
		return ""
	}
	return m
}

// Models returns the GlobalID models the rules render as, in order, each
// once; nil when every rule renders with to_s.
func (id *Authenticator) Models() []string {
	var out []string
	for _, g := range id.groups {
		for _, r := range g.rules {
			if m := id.cfg.model(r); m != "" && !contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Authenticate computes the identity of r: for each identifier, the value
// of the first of its rules that gives one. When no rule of an identifier
// gives a value, or a value is of a kind no identifier can have (a hash
// where an id was expected), it returns an error wrapping
// cable.ErrUnauthorized and the *auth.DecodeError of each rule tried.
func (id *Authenticator) Authenticate(ctx context.Context, r *http.Request) (cable.Identity, error) {
	if len(id.groups) == 0 {
		return nil, fmt.Errorf("%w: %w", cable.ErrUnauthorized, errNoRules)
	}
	req := &request{id: id, r: r}
	identity := make(cable.Identity, len(id.groups))
	for _, g := range id.groups {
		v, err := req.value(ctx, g)
		if err != nil {
			id.refused(ctx, r, g, err)
			return nil, fmt.Errorf("%w: %s: %w", cable.ErrUnauthorized, g.name, err)
		}
		identity[g.name] = v
	}
	if id.logger.Enabled(ctx, slog.LevelDebug) {
		attrs := []any{"connection_identifier", identity.ConnectionIdentifier(), "remote", r.RemoteAddr}
		for _, g := range id.groups {
			attrs = append(attrs, slog.String("identifier."+g.name, identity[g.name]))
		}
		id.logger.DebugContext(ctx, "auth: connection identified", attrs...)
	}
	return identity, nil
}

// refused logs why the identifier of g was refused.
func (id *Authenticator) refused(ctx context.Context, r *http.Request, g group, err error) {
	attrs := []any{"identifier", g.name, "remote", r.RemoteAddr, "err", err}
	var de *auth.DecodeError
	if errors.As(err, &de) {
		attrs = append(attrs, "reason", string(de.Reason))
	}
	id.logger.DebugContext(ctx, "auth: connection not identified", attrs...)
	if r.Header.Get("Cookie") != "" {
		return
	}
	for _, rule := range g.rules {
		if rule.Source.readsCookies() {
			// Browsers send a cookie only to the host that set it (and its
			// subdomains when the app gave a domain): a cable on another
			// host gets none.
			id.logger.InfoContext(ctx, "auth: connection refused: the request carried no Cookie header; "+
				"cookies set on the app's host are not sent to a cable on another host unless the app sets them "+
				"for the parent domain (e.g. session_store :cookie_store, domain: :all)",
				"identifier", g.name, "remote", r.RemoteAddr, "host", r.Host)
			return
		}
	}
}

// request is the state of one Authenticate call: the session, read once.
type request struct {
	id          *Authenticator
	r           *http.Request
	session     map[string]any
	sessionErr  error
	sessionRead bool
}

// nothing is the error of a rule that gave no value; Authenticate goes on
// to the next rule of the identifier.
type nothing struct{ err error }

func (n nothing) Error() string { return n.err.Error() }
func (n nothing) Unwrap() error { return n.err }

// ruleErrors is the error of an identifier none of whose rules gave a
// value: one error per rule, in order.
type ruleErrors []error

func (e ruleErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e ruleErrors) Unwrap() []error { return e }

// value tries the rules of g in order.
func (q *request) value(ctx context.Context, g group) (string, error) {
	var errs ruleErrors
	for i, rule := range g.rules {
		v, err := q.rule(rule)
		if err == nil {
			return v, nil
		}
		var n nothing
		if !errors.As(err, &n) {
			return "", err
		}
		if len(g.rules) > 1 {
			attrs := []any{"identifier", g.name, "rule", rule.String(), "remote", q.r.RemoteAddr, "err", n.err}
			var de *auth.DecodeError
			if errors.As(n.err, &de) {
				attrs = append(attrs, "reason", string(de.Reason))
			}
			if i+1 < len(g.rules) {
				attrs = append(attrs, "next", g.rules[i+1].String())
			}
			q.id.logger.DebugContext(ctx, "auth: rule gave nothing", attrs...)
		}
		errs = append(errs, n.err)
	}
	if len(errs) == 1 {
		return "", errs[0]
	}
	return "", errs
}

// getSession reads the cookie-store session once per request.
func (q *request) getSession() (map[string]any, error) {
	if !q.sessionRead {
		q.sessionRead = true
		c := q.id.cfg
		var v any
		// Every Cookie header line, joined as the cookie jars read them
		// (an HTTP/2 client may send one line per cookie).
		v, q.sessionErr = c.Cookies.Read(auth.JarEncrypted, strings.Join(q.r.Header.Values("Cookie"), "; "), c.SessionKey)
		if q.sessionErr == nil {
			var ok bool
			if q.session, ok = v.(map[string]any); !ok {
				q.sessionErr = &auth.DecodeError{Jar: "session", Name: c.SessionKey, Reason: auth.ReasonDeserializeFailed,
					Detail: fmt.Sprintf("session is a %T, not a Hash", v)}
			}
		}
		var de *auth.DecodeError
		if errors.As(q.sessionErr, &de) {
			de.Jar = "session"
		}
	}
	return q.session, q.sessionErr
}

// rule reads and renders one rule. An error wrapped in nothing means the
// rule gave no value; any other error refuses the connection.
//
// Every error of a Rails cookie jar counts as nothing: a cookie that is
// missing, altered, expired, signed for another purpose or that does not
// deserialize reads as nil in Rails (cookies.rb, EncryptedKeyRotatingCookieJar
// #parse rescues InvalidMessage and InvalidSignature, SignedKeyRotatingCookieJar
// uses MessageVerifier#verified, and SerializedCookieJars#parse rescues the
// serializer's errors: actionpack/lib/action_dispatch/middleware/cookies.rb),
// so `cookies.encrypted[:user_id] || env["warden"].user` falls through to
// its right side. The session is read through the same jar
// (actionpack/lib/action_dispatch/middleware/session/cookie_store.rb), so a
// bad session cookie is an empty session, whose keys are nil.
func (q *request) rule(rule Rule) (string, error) {
	c := q.id.cfg
	var v any
	var err error
	switch rule.Source {
	case Encrypted:
		err = c.Cookies.Encrypted(q.r, rule.Key, &v)
	case Signed:
		err = c.Cookies.Signed(q.r, rule.Key, &v)
	case Session:
		var s map[string]any
		if s, err = q.getSession(); err == nil {
			var ok bool
			if v, ok = s[rule.Key]; !ok || v == nil {
				err = &auth.DecodeError{Jar: "session entry", Name: rule.Key, Reason: auth.ReasonNoUser}
			}
		}
	case Warden:
		v, err = q.warden(rule.Key)
	case Token:
		err = c.Tokens.Query(q.r, rule.Key, &v)
	case GoCookie:
		err = c.Tokens.Cookie(q.r, rule.Key, &v)
	}
	if err != nil {
		var de *auth.DecodeError
		if errors.As(err, &de) {
			return "", nothing{err}
		}
		return "", err
	}
	return render(v, rule, c.model(rule), c.GlobalIDApp)
}

// warden returns the id of the Devise user of scope: a string, or a
// compositeID.
func (q *request) warden(scope string) (any, error) {
	s, err := q.getSession()
	if err != nil {
		return nil, err
	}
	w, err := auth.WardenUser(s, scope)
	if err != nil {
		return nil, err
	}
	// Devise's timeoutable hook signs out a user idle longer than
	// timeout_in (lib/devise/hooks/timeoutable.rb), so env["warden"].user
	// is nil.
	if t := q.id.cfg.WardenTimeout; t > 0 && !w.LastRequestAt.IsZero() && !q.id.now().Before(w.LastRequestAt.Add(t)) {
		return nil, &auth.DecodeError{Jar: "session entry", Name: "warden.user." + scope + ".session", Reason: auth.ReasonExpired,
			Detail: "Devise timeout: last request at " + w.LastRequestAt.UTC().Format(time.RFC3339)}
	}
	if len(w.IDParts) > 1 {
		return compositeID(w.IDParts), nil
	}
	return w.ID, nil
}

// compositeID is the to_key of a record with a composite primary key, each
// part rendered with to_s.
type compositeID []string

// render digs rule.Path out of v and renders it as Rails renders an
// identifier: to_gid_param for a model, to_s otherwise
// (actioncable/lib/action_cable/connection/identification.rb). An empty
// value gives nothing; a value no identifier can have (a hash, an array,
// true or false, a float: no record has such an id, so the
// User.find_by(id:) a Rails connection does would find none) is an error
// that refuses the connection, since it shows a wrong rule.
func render(v any, rule Rule, model, app string) (string, error) {
	fail := func(detail string) error {
		return &auth.DecodeError{Jar: "identifier", Name: rule.Name, Reason: auth.ReasonDeserializeFailed, Detail: detail}
	}
	for _, k := range rule.Path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return "", fail(fmt.Sprintf("no element %q in an array of %d", k, len(x)))
			}
			v = x[i]
		default:
			return "", fail(fmt.Sprintf("cannot take %q of a %T", k, v))
		}
	}
	switch v := v.(type) {
	case compositeID:
		// A composite primary key (Rails 7.1+): GlobalID escapes each part
		// (rails/globalid lib/global_id/uri/gid.rb, URI::GID.build).
		if model != "" {
			return cable.GlobalIDParam(app, model, v...), nil
		}
		return strings.Join(v, "/"), nil
	case string, int64, *big.Int, nil:
	case map[string]any, []any:
		return "", fail(fmt.Sprintf("value is a %T, not an id; dig into it with :KEY", v))
	default:
		return "", fail(fmt.Sprintf("value is a %T, not an id", v))
	}
	s, _ := auth.RubyToS(v)
	if s == "" {
		return "", nothing{&auth.DecodeError{Jar: "identifier", Name: rule.Name, Reason: auth.ReasonNoUser, Detail: "empty value"}}
	}
	if model != "" {
		return cable.GlobalIDParam(app, model, s), nil
	}
	return s, nil
}
