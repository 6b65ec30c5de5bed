package cable

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// RailsOrigins is Rails' origin check, allow_request_origin?
// (actioncable/lib/action_cable/connection/base.rb), with the settings of
// config.action_cable it reads (actioncable/lib/action_cable/server/configuration.rb):
// an Origin equal to the request's own scheme://host is accepted unless
// DisableSameOrigin, then one equal to an entry of Allowed, then one that
// a pattern of Patterns matches. Its Check method is the Server's
// CheckOrigin.
//
// The zero value accepts the same origin only, which is Rails' default and
// what a Server with a nil CheckOrigin does. Rails'
// disable_request_forgery_protection has no field here: it is a CheckOrigin
// that returns true. A RailsOrigins must not change while a Server uses
// its Check.
type RailsOrigins struct {
	// Allowed holds Origin header values accepted as they are, like the
	// String entries of allowed_request_origins. Nil allows none.
	Allowed []string
	// Patterns accept an Origin they match anywhere, like the Regexp
	// entries there, which Ruby matches with ===: anchor them with ^ and $.
	// Nil allows none.
	Patterns []*regexp.Regexp
	// DisableSameOrigin stops accepting an Origin equal to the request's
	// own scheme://host, which Rails accepts by default
	// (allow_same_origin_as_host). False accepts it.
	DisableSameOrigin bool
}

// Check reports whether the request's Origin header is allowed. A request
// without an Origin header is refused, as in Rails, where a nil origin
// equals neither the host nor any entry.
func (o RailsOrigins) Check(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if !o.DisableSameOrigin && origin != "" && origin == requestScheme(r)+"://"+r.Host {
		return true
	}
	for _, a := range o.Allowed {
		if a == origin {
			return true
		}
	}
	for _, re := range o.Patterns {
		if re.MatchString(origin) {
			return true
		}
	}
	return false
}

// requestScheme is Rack::Request#scheme as ssl? sees it: https when the
// request came over TLS or a proxy says so through X-Forwarded-Proto,
// X-Forwarded-Scheme or X-Forwarded-Ssl (rack/lib/rack/request.rb).
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if strings.EqualFold(r.Header.Get("X-Forwarded-Ssl"), "on") {
		return "https"
	}
	if strings.EqualFold(r.Header.Get("X-Forwarded-Scheme"), "https") {
		return "https"
	}
	if v := r.Header.Get("X-Forwarded-Proto"); v != "" {
		first, _, _ := strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(first), "https") {
			return "https"
		}
	}
	// allow_request_origin? builds "#{ssl? ? "https" : "http"}://host".
	return "http"
}

// ParseOrigins reads origin entries the way
// config.action_cable.allowed_request_origins mixes Strings and Regexps:
// an entry written as /re/ is a regular expression that needs only to
// match (Ruby's ===); anything else must equal the Origin header. Blank
// entries are skipped. The result accepts the same origin too; set
// DisableSameOrigin to stop that.
//
// A pattern is Ruby's regexp syntax as far as Go's RE2 shares it: \A and
// \z anchor as in Ruby, \Z is \z after an optional newline, "\/" is
// "/", and the flags i (ignore case) and m (Ruby's dot-matches-newline)
// may follow the closing slash (/example\.com/i). An entry that starts
// with "/" but is not such a pattern, a flag Go cannot honour (x, or
// anything else), and a pattern that does not compile are errors, since
// an origin that silently never matches is a migration trap.
func ParseOrigins(entries []string) (RailsOrigins, error) {
	var o RailsOrigins
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !strings.HasPrefix(e, "/") {
			o.Allowed = append(o.Allowed, e)
			continue
		}
		end := strings.LastIndexByte(e, '/')
		if end == 0 {
			return RailsOrigins{}, fmt.Errorf("cable: origin %s: starts with / but has no closing / (an origin is scheme://host, a pattern /regexp/)", e)
		}
		var prefix string
		for _, f := range e[end+1:] {
			switch f {
			case 'i':
				prefix += "i"
			case 'm':
				prefix += "s" // Ruby's /m is Go's s: . matches a newline
			default:
				return RailsOrigins{}, fmt.Errorf("cable: origin %s: regexp flag %q is not supported (i and m are)", e, f)
			}
		}
		src := rubyRegexp(e[1:end])
		if prefix != "" {
			src = "(?" + prefix + ")" + src
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return RailsOrigins{}, fmt.Errorf("cable: origin %s: %w", e, err)
		}
		o.Patterns = append(o.Patterns, re)
	}
	return o, nil
}

// rubyRegexp maps what Ruby's regexp syntax has and RE2 spells otherwise:
// \Z (end, or before a final newline) and \/ (a slash, escaped inside a
// Ruby literal). \A and \z are the same in both. Escapes are followed, so
// "\\Z" (a backslash, then Z) stays as it is.
func rubyRegexp(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'Z':
			b.WriteString(`(?:\n?\z)`)
		case '/':
			b.WriteByte('/')
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
