package cable

import (
	"net/http"
	"regexp"
	"strings"
)

// allowOrigin plays Rails' allow_request_origin?
// (actioncable/lib/action_cable/connection/base.rb; server/base.rb on main):
// forgery protection off, then the same origin as the Host header, then the
// allowed origins as exact strings and unanchored patterns.
func (s *Server) allowOrigin(r *http.Request) bool {
	if s.CheckOrigin != nil {
		return s.CheckOrigin(r)
	}
	if s.DisableForgeryProtection {
		return true
	}
	origin := r.Header.Get("Origin")
	if !s.DisableSameOrigin && origin != "" && origin == requestScheme(r)+"://"+r.Host {
		return true
	}
	for _, o := range s.AllowedOrigins {
		if o == origin {
			return true
		}
	}
	for _, re := range s.AllowedOriginPatterns {
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

// ParseOrigins turns origin entries into exact strings and patterns, the
// way config.action_cable.allowed_request_origins mixes Strings and
// Regexps: an entry written as /re/ is a regular expression that needs only
// to match (Ruby's ===), anything else must equal the Origin header.
func ParseOrigins(entries []string) (exact []string, patterns []*regexp.Regexp, err error) {
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if len(e) >= 2 && strings.HasPrefix(e, "/") && strings.HasSuffix(e, "/") {
			re, err := regexp.Compile(rubyRegexp(e[1 : len(e)-1]))
			if err != nil {
				return nil, nil, err
			}
			patterns = append(patterns, re)
			continue
		}
		exact = append(exact, e)
	}
	return exact, patterns, nil
}

// rubyRegexp maps Ruby's \A and \z anchors to Go's.
func rubyRegexp(s string) string {
	s = strings.ReplaceAll(s, `\A`, `^`)
	s = strings.ReplaceAll(s, `\z`, `$`)
	return s
}
