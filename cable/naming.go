package cable

import (
	"fmt"
	"strconv"
	"strings"
)

// GlobalIDer is implemented by values that stand for a Rails record in
// broadcasting names, like Ruby objects that respond to to_gid_param.
type GlobalIDer interface {
	GlobalIDParam() string
}

// GlobalID names a Rails record: gid://App/Model/ID. ID is the record's id
// as Ruby's to_s renders it, unescaped. For a composite primary key
// (Rails 7.1+), CompositeID holds each part in order and ID is unused,
// as URI::GID#model_id is then an array (rails/globalid
// lib/global_id/uri/gid.rb). The zero GlobalID is no record.
type GlobalID struct {
	App, Model, ID string
	CompositeID    []string
}

// modelID returns the id parts: CompositeID, or ID alone.
func (g GlobalID) modelID() []string {
	if len(g.CompositeID) > 0 {
		return g.CompositeID
	}
	return []string{g.ID}
}

// GlobalIDParam returns the record's to_gid_param.
func (g GlobalID) GlobalIDParam() string { return GlobalIDParam(g.App, g.Model, g.modelID()...) }

// String returns the GlobalID URI, gid://App/Model/ID, with ID (or each
// part of CompositeID) escaped as GlobalID escapes it (see GlobalIDParam).
func (g GlobalID) String() string { return globalIDURI(g.App, g.Model, g.modelID()) }

// ChannelName returns the name Rails derives from a channel class name for
// broadcastings: "ChatChannel" is "chat", "Admin::ChatChannel" is
// "admin:chat", "HTTPStatusChannel" is "http_status"
// (actioncable/lib/action_cable/channel/naming.rb, channel_name:
// delete_suffix("Channel"), gsub("::", ":"), underscore).
func ChannelName(class string) string {
	name := strings.TrimSuffix(class, "Channel")
	name = strings.ReplaceAll(name, "::", ":")
	return underscore(name)
}

// underscore follows ActiveSupport::Inflector#underscore without custom
// acronyms (activesupport/lib/active_support/inflector/methods.rb).
func underscore(s string) string {
	isUpper := func(c byte) bool { return c >= 'A' && c <= 'Z' }
	isLower := func(c byte) bool { return c >= 'a' && c <= 'z' }
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i > 0 && isUpper(c) {
			prev := s[i-1]
			// (?<=[A-Z])(?=[A-Z][a-z]) | (?<=[a-z\d])(?=[A-Z])
			if (isUpper(prev) && i+1 < len(s) && isLower(s[i+1])) || isLower(prev) || isDigit(prev) {
				b.WriteByte('_')
			}
		}
		switch {
		case c == '-':
			b.WriteByte('_')
		case isUpper(c):
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// BroadcastingFor returns the broadcasting name Rails' stream_for and
// broadcast_to use for a channel class and a model or list of values:
// ChannelName(class) followed by each part, joined with ":"
// (channel/broadcasting.rb, broadcasting_for, and serialize_broadcasting).
// A part is serialized as Rails does: a GlobalIDer by its GlobalIDParam,
// a string as itself, integers and booleans as to_param writes them, nil as
// "", a []any element by element; anything else is an error.
//
// BroadcastingFor("ModelChannel", user) is "model:<gid param>" in every Rails
// version. The parts are Rails 8.1's Array(x): BroadcastingFor("ModelChannel",
// nil) is "model" (Rails ≤ 8.0 wrote "model:"), and a single []any stands
// for its elements.
func BroadcastingFor(class string, parts ...any) (string, error) {
	// Rails 8.1 names [channel_name] + Array(x): a single nil is no part
	// at all, a single array is its elements.
	if len(parts) == 1 {
		switch p := parts[0].(type) {
		case nil:
			parts = nil
		case []any:
			parts = p
		}
	}
	var b strings.Builder
	b.WriteString(ChannelName(class))
	for _, p := range parts {
		b.WriteByte(':')
		if err := serializeBroadcasting(&b, p); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

func serializeBroadcasting(b *strings.Builder, p any) error {
	switch v := p.(type) {
	case nil:
	case GlobalIDer:
		b.WriteString(v.GlobalIDParam())
	case string:
		b.WriteString(v)
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case int:
		b.WriteString(strconv.FormatInt(int64(v), 10))
	case int32:
		b.WriteString(strconv.FormatInt(int64(v), 10))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case uint:
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	case uint32:
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	case uint64:
		b.WriteString(strconv.FormatUint(v, 10))
	case []any:
		for i, e := range v {
			if i > 0 {
				b.WriteByte(':')
			}
			if err := serializeBroadcasting(b, e); err != nil {
				return err
			}
		}
	case fmt.Stringer:
		b.WriteString(v.String())
	default:
		return fmt.Errorf("cable: cannot name a broadcasting after a %T", p)
	}
	return nil
}
