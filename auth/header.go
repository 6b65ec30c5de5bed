package auth

import (
	"net/http"
	"net/url"
	"strings"
)

// cookieValue finds cookie name in a Cookie header the way Rack does
// (rack lib/rack/utils.rb parse_cookies_header, 2.2 and 3.x): the header is
// split on ";" followed by any spaces, each pair on its first "=", names
// are compared as they are (not unescaped), the first pair of a name wins
// even if it has no "=" (Rack then stores nil: no cookie), and the value is
// unescaped with URI.decode_www_form_component ("+" is a space), keeping
// the raw value when that fails.
func cookieValue(header, name string) (string, bool) {
	for len(header) > 0 {
		var pair string
		pair, header, _ = strings.Cut(header, ";")
		header = strings.TrimLeft(header, " ")
		if pair == "" {
			continue
		}
		k, v, hasValue := strings.Cut(pair, "=")
		if k != name {
			continue
		}
		if !hasValue {
			return "", false
		}
		return rackUnescape(v), true
	}
	return "", false
}

// cookieNames lists the distinct cookie names of a header, first occurrence
// first, as Rack would key them.
func cookieNames(header string) []string {
	var names []string
	seen := map[string]bool{}
	for len(header) > 0 {
		var pair string
		pair, header, _ = strings.Cut(header, ";")
		header = strings.TrimLeft(header, " ")
		if pair == "" {
			continue
		}
		k, _, _ := strings.Cut(pair, "=")
		if !seen[k] {
			seen[k] = true
			names = append(names, k)
		}
	}
	return names
}

// CookieNames returns the distinct cookie names in a Cookie header, in the
// order Rack sees them (the first occurrence of a name wins).
func CookieNames(header string) []string { return cookieNames(header) }

// rackUnescape is Rack::Utils.unescape: URI.decode_www_form_component,
// falling back to the raw value on a bad %-escape. Go's
// url.QueryUnescape has the same rules ("+" is a space).
func rackUnescape(v string) string {
	if u, err := url.QueryUnescape(v); err == nil {
		return u
	}
	return v
}

// cookieHeader returns the request's Cookie header. Several Cookie header
// lines (HTTP/2 may split them) are joined with "; ".
func cookieHeader(r *http.Request) string {
	return strings.Join(r.Header.Values("Cookie"), "; ")
}

// rackEscape is Rack::Utils.escape, URI.encode_www_form_component, which
// Rack applies to a cookie value in Set-Cookie: "*", "-", ".", "_" and
// alphanumerics are kept, a space becomes "+", every other byte %XX.
func rackEscape(v string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '*', c == '-', c == '.', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
	}
	return b.String()
}
