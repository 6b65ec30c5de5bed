package cable

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Identity returns the connection's identifiers, what its Authenticator
// returned, like the identified_by accessors a Rails channel delegates to
// its connection (actioncable/lib/action_cable/channel/base.rb). It must
// not be modified. It is safe from any goroutine.
func (s *Subscription) Identity() Identity { return s.conn.identity }

// Get returns the identifier name as a Value holding the string Rails
// renders for it (to_s, or the GlobalID param of a model), so a plain
// identifier reads as in Ruby: Get("tenant").String(),
// Get("current_user_id").Int(). It is the missing Value when the
// connection has no such identifier.
func (id Identity) Get(name string) Value {
	v, ok := id[name]
	if !ok {
		return Value{}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return Value{}
	}
	return Value{raw: raw}
}

// GlobalID returns the record behind a model identifier, such as
// current_user when the connection is identified_by a User: the
// identifier holds the record's to_gid_param (see GlobalIDParam), and
// GlobalID parses it as GlobalID.parse does. It reports false when the
// connection has no such identifier or its value is not a GlobalID.
//
// The GlobalID's GlobalIDParam gives the identifier back, as globalid
// renders ids (each part CGI-escaped, since globalid 0.3.6), so
// StreamFor(ctx, g) streams what Rails' stream_for current_user does.
func (id Identity) GlobalID(name string) (GlobalID, bool) {
	v, ok := id[name]
	if !ok {
		return GlobalID{}, false
	}
	g, err := ParseGlobalID(v)
	return g, err == nil
}

// IntID returns ID as an integer, the usual primary key: the decimal
// text Ruby's Integer#to_s writes. It reports false for a composite id or
// an ID that is not such an integer.
func (g GlobalID) IntID() (int64, bool) {
	if len(g.CompositeID) > 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(g.ID, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != g.ID {
		return 0, false
	}
	return n, true
}

// maxCompositeID is COMPOSITE_MODEL_ID_MAX_SIZE of rails/globalid
// (lib/global_id/uri/gid.rb): a model id splits into at most 20 parts.
const maxCompositeID = 20

// ParseGlobalID parses a GlobalID as GlobalID.parse does (rails/globalid
// lib/global_id/global_id.rb): either the URI gid://app/Model/id or its
// to_gid_param, the URL-safe Base64 of the URI with or without padding.
// As URI::GID reads the path (lib/global_id/uri/gid.rb,
// set_model_components), the model id is split on "/" into at most 20
// parts, blank parts are dropped, and each is unescaped as CGI.unescape
// does ("+" is a space, %XX a byte, a malformed % stays as it is); one
// part is ID, several are CompositeID. A query (?key=value, GlobalID's
// params) is ignored. It checks the shape of the URI, not every character
// Ruby's URI parser would refuse.
func ParseGlobalID(s string) (GlobalID, error) {
	uri := s
	if !strings.HasPrefix(s, "gid://") {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return GlobalID{}, fmt.Errorf("cable: %q is not a GlobalID: %w", s, err)
		}
		uri = string(b)
	}
	g, ok := parseGIDURI(uri)
	if !ok {
		return GlobalID{}, fmt.Errorf("cable: %q is not a GlobalID", s)
	}
	return g, nil
}

func parseGIDURI(uri string) (GlobalID, bool) {
	rest, ok := strings.CutPrefix(uri, "gid://")
	if !ok {
		return GlobalID{}, false
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	app, path, ok := strings.Cut(rest, "/")
	if !ok || app == "" {
		return GlobalID{}, false
	}
	model, id, _ := strings.Cut(path, "/")
	if isBlank(model) || isBlank(id) {
		return GlobalID{}, false
	}
	var parts []string
	for i, p := range strings.SplitN(id, "/", maxCompositeID) {
		if i == maxCompositeID-1 && strings.Contains(p, "/") {
			return GlobalID{}, false // InvalidModelIdError
		}
		if isBlank(p) {
			continue
		}
		parts = append(parts, cgiUnescape(p))
	}
	g := GlobalID{App: app, Model: model}
	switch len(parts) {
	case 0:
		return GlobalID{}, false
	case 1:
		g.ID = parts[0]
	default:
		g.CompositeID = parts
	}
	return g, true
}

// cgiUnescape is Ruby's CGI.unescape: "+" becomes a space and each %XX a
// byte; a "%" not followed by two hex digits is kept as it is.
func cgiUnescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
