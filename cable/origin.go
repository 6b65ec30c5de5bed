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

// isWebSocket is websocket-driver's websocket?(env): GET, Connection has the
// upgrade token, Upgrade is websocket (websocket-driver lib/websocket/driver.rb).
func isWebSocket(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	if !strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket") {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// selectProtocol picks the first protocol the client offers that Rails
// supports, in the client's order, as websocket-driver's Hybi does
// (driver/hybi.rb); "" when none.
func selectProtocol(r *http.Request) string {
	for _, v := range r.Header.Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == Protocol || p == protocolUnsupported {
				return p
			}
		}
	}
	return ""
}
