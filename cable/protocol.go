package cable

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Wire constants of actioncable-v1-json
// (actioncable/lib/action_cable.rb, ActionCable::INTERNAL).
const (
	// Protocol is the subprotocol the official client needs.
	Protocol = "actioncable-v1-json"
	// protocolUnsupported is the sentinel a client may offer; Rails selects
	// it in client order like any other supported protocol.
	protocolUnsupported = "actioncable-unsupported"

	// ReasonUnauthorized is the disconnect reason of a connection the
	// Authenticator refused (ActionCable::INTERNAL[:disconnect_reasons]).
	ReasonUnauthorized = "unauthorized"
	// ReasonServerRestart is the disconnect reason Server.Shutdown sends;
	// the official client reconnects.
	ReasonServerRestart = "server_restart"
	// ReasonRemote is the disconnect reason of Server.Disconnect, Rails'
	// remote_connections.where(...).disconnect.
	ReasonRemote = "remote"
)

// Frames that never change, written exactly as ActiveSupport::JSON writes
// them in Rails (keys in Ruby hash insertion order).
var (
	frameWelcome = []byte(`{"type":"welcome"}`)
)

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

// command is a client frame (actioncable/lib/action_cable/connection/subscriptions.rb,
// execute_command). Identifier and Data are strings holding JSON; nil means
// the key is missing or null.
type command struct {
	Command    string
	Identifier *string
	Data       *string
	// DataErr says why data is not a string. Only a message reads data
	// (connection/subscriptions.rb, perform_action decodes data["data"]),
	// so a subscribe or unsubscribe with a non-string data still runs, as
	// in Rails.
	DataErr error
}

var errUnrecognized = errors.New("unrecognized command")

// decodeCommand parses one text frame as ActiveSupport::JSON.decode and
// a Ruby Hash would see it: keys match exactly (encoding/json's struct
// decoding would also accept "COMMAND"), unknown keys are ignored,
// duplicate keys resolve last-wins, and an identifier that is not a string
// is an error, as Ruby raises TypeError for it. A data that is not a
// string is reported in DataErr, for a message to refuse.
func decodeCommand(b []byte) (command, error) {
	var c command
	// Fast path: a struct, when every key that encoding/json would match
	// to a field is spelled exactly (it also matches "COMMAND").
	if keysExact(b, "command", "identifier", "data") {
		var f struct {
			Command    *string `json:"command"`
			Identifier *string `json:"identifier"`
			Data       *string `json:"data"`
		}
		if err := json.Unmarshal(b, &f); err == nil {
			if f.Command != nil {
				c.Command = *f.Command
			}
			c.Identifier, c.Data = f.Identifier, f.Data
			return c, nil
		}
		// Invalid JSON, or a field of another type: the exact path below
		// tells which.
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return c, err
	}
	return commandFrom(m["command"], m["identifier"], m["data"])
}

func commandFrom(cmd, identifier, data json.RawMessage) (command, error) {
	var c command
	if raw := cmd; len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &c.Command); err != nil {
			return c, fmt.Errorf("command is not a string: %s", raw)
		}
	}
	var err error
	if c.Identifier, err = stringField(identifier); err != nil {
		return c, err
	}
	c.Data, c.DataErr = stringField(data)
	return c, nil
}

// keysExact reports whether every top-level key of the JSON object b that
// equals one of names case-insensitively equals it exactly, and no key
// holds an escape. When it returns false the caller decodes the slow,
// exact way. b need not be valid: the decoder that follows judges that.
func keysExact(b []byte, names ...string) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return true // not an object: the decoder reports it
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return true
		}
		if b[i] != '"' {
			return true
		}
		end := i + 1
		for end < len(b) && b[end] != '"' {
			if b[end] == '\\' {
				return false
			}
			end++
		}
		key := string(b[i+1 : min(end, len(b))])
		for _, n := range names {
			if key != n && strings.EqualFold(key, n) {
				return false
			}
		}
		i = skipSpace(b, end+1)
		if i >= len(b) || b[i] != ':' {
			return true
		}
		i = skipValue(b, skipSpace(b, i+1))
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ',' {
			return true
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			i++
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth <= 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// stringField returns raw as a string, nil if it is missing or null.
func stringField(raw json.RawMessage) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("no implicit conversion of %s into String", jsonKind(raw))
	}
	return &s, nil
}

// jsonKind names the Ruby class a JSON value decodes to, for log lines.
func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimLeft(raw, " \t\r\n")
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "Hash"
	case '[':
		return "Array"
	case 't', 'f':
		return "true or false"
	case '"':
		return "String"
	}
	return "Numeric"
}

// actionOf returns the action of a message's data, as perform_action
// reads it: data["action"].presence || :receive (channel/base.rb). nil,
// false, "", a blank string, [] and {} are blank, so they mean receive;
// another string is the action; anything else raises in Rails.
func actionOf(raw json.RawMessage) (string, error) {
	var v any
	if len(raw) == 0 {
		return "receive", nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch a := v.(type) {
	case nil:
		return "receive", nil
	case bool:
		if !a {
			return "receive", nil
		}
	case string:
		if strings.TrimSpace(a) == "" {
			return "receive", nil
		}
		return a, nil
	case []any:
		if len(a) == 0 {
			return "receive", nil
		}
	case map[string]any:
		if len(a) == 0 {
			return "receive", nil
		}
	}
	return "", fmt.Errorf("undefined method `to_sym' for %s", raw)
}

// identifierChannel returns the "channel" key of a subscribe's
// identifier. It reads a map, not a struct: Rails reads params[:channel]
// by its exact key (connection/subscriptions.rb, add), where encoding/json
// would also match "Channel" or "CHANNEL"; the last of duplicate keys
// wins, as in Ruby's JSON.parse.
func identifierChannel(id string) (string, error) {
	var params map[string]json.RawMessage
	raw := json.RawMessage(id)
	if err := json.Unmarshal(raw, &params); err != nil || !isObject(raw) {
		if err == nil {
			err = errors.New("identifier is not a JSON object")
		}
		return "", err
	}
	rawChannel, ok := params["channel"]
	if !ok {
		return "", errors.New("identifier has no channel")
	}
	var channel string
	if err := json.Unmarshal(rawChannel, &channel); err != nil || rawChannel[0] != '"' {
		return "", fmt.Errorf("identifier's channel is not a string: %s", rawChannel)
	}
	return channel, nil
}

// decodeData returns a message's data as the JSON object Perform gets,
// and the action it names (see actionOf). data must be a JSON object, as
// perform_action indexes it (connection/subscriptions.rb); its "action"
// key is read by its exact name.
func decodeData(data string) (json.RawMessage, string, error) {
	raw := json.RawMessage(data)
	var actionRaw json.RawMessage
	var err error
	if keysExact(raw, "action") {
		var d struct {
			Action json.RawMessage `json:"action"`
		}
		err = json.Unmarshal(raw, &d)
		actionRaw = d.Action
	} else {
		var d map[string]json.RawMessage
		err = json.Unmarshal(raw, &d)
		actionRaw = d["action"]
	}
	if err != nil || !isObject(raw) {
		if err == nil {
			err = errors.New("data is not a JSON object")
		}
		return nil, "", err
	}
	action, err := actionOf(actionRaw)
	if err != nil {
		return nil, "", err
	}
	return raw, action, nil
}

// internalKind is what a message on a connection's internal stream asks.
type internalKind int

const (
	internalIgnore     internalKind = iota // anything but a disconnect
	internalDisconnect                     // {"type":"disconnect"}
	internalInvalid                        // a value Ruby cannot index: Rails' rescue closes the connection
)

// decodeInternal reads a message on the internal stream action_cable/<id>
// as process_internal_message does (connection/internal_channel.rb): a
// remote disconnect, in the Rails 7.1+ form
// {"type":"disconnect","reconnect":bool} or the older
// {"type":"disconnect"}, whose reconnect defaults to true.
func decodeInternal(payload []byte) (kind internalKind, reconnect bool, err error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return internalIgnore, false, err
	}
	switch m := v.(type) {
	case map[string]any:
		if m["type"] != "disconnect" {
			return internalIgnore, false, nil
		}
		reconnect = true // message.fetch("reconnect", true)
		if r, ok := m["reconnect"]; ok {
			reconnect = r != nil && r != false
		}
		return internalDisconnect, reconnect, nil
	case string, nil:
		// "str"["type"] is nil in Ruby: ignored.
		return internalIgnore, false, nil
	default:
		// Indexing an Array or a number raises.
		return internalInvalid, false, nil
	}
}

// isObject reports whether the JSON text b starts as an object, as a
// Ruby Hash must.
func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// truncate shortens a client frame for a log line.
func truncate(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// appendJSONString appends s as a JSON string with Rails' escaping:
// <, >, & and U+2028/U+2029 as \u003c, \u003e, \u0026, \u2028, \u2029
// (activesupport/lib/active_support/json/encoding.rb, ESCAPED_CHARS).
// It writes what encoding/json's default (HTML-escaping) encoder writes,
// byte for byte, without its allocation: frames are built from a
// subscription's identifier on every send, so that the identifier is kept
// once (a 1 MB identifier used to be held twice, raw and escaped).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// identifierPrefix appends `{"identifier":"<id>",`, which starts every
// frame that belongs to a subscription.
func identifierPrefix(dst []byte, id string) []byte {
	dst = append(dst, `{"identifier":`...)
	dst = appendJSONString(dst, id)
	return append(dst, ',')
}

// escapedLen is a guess of the escaped identifier's length, to size a
// frame's buffer; appends grow it when the guess is short.
func escapedLen(id string) int { return len(id) + len(id)/8 + 24 }

// dataFrame builds {"identifier":<id>,"message":<payload>} from an
// identifier and a valid JSON payload.
func dataFrame(id string, payload []byte) []byte {
	b := make([]byte, 0, escapedLen(id)+len(payload)+len(`"message":}`))
	b = identifierPrefix(b, id)
	b = append(b, `"message":`...)
	b = append(b, payload...)
	return append(b, '}')
}

// typeFrame builds {"identifier":<id>,"type":"<typ>"} as
// transmit_subscription_confirmation / _rejection do
// (actioncable/lib/action_cable/channel/base.rb).
func typeFrame(id string, typ string) []byte {
	b := make([]byte, 0, escapedLen(id)+len(typ)+12)
	b = identifierPrefix(b, id)
	b = append(b, `"type":"`...)
	b = append(b, typ...)
	return append(b, `"}`...)
}

// pingFrame is {"type":"ping","message":<unix seconds>}
// (actioncable/lib/action_cable/connection/base.rb, beat).
func pingFrame(t time.Time) []byte {
	b := make([]byte, 0, 40)
	b = append(b, `{"type":"ping","message":`...)
	b = strconv.AppendInt(b, t.Unix(), 10)
	return append(b, '}')
}

// disconnectFrame is {"type":"disconnect","reason":<reason>,"reconnect":<bool>};
// an empty reason is written as null, as Rails' close(reason: nil) does.
// reconnect is always present: the official client treats a missing one as
// false and never reconnects.
func disconnectFrame(reason string, reconnect bool) []byte {
	b := make([]byte, 0, 64)
	b = append(b, `{"type":"disconnect","reason":`...)
	if reason == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, reason)
	}
	b = append(b, `,"reconnect":`...)
	b = strconv.AppendBool(b, reconnect)
	return append(b, '}')
}

// encodeMessage turns a Go value into the JSON text a broadcast or transmit
// carries. json.RawMessage and []byte are taken as JSON text: they are
// validated, compacted and HTML-escaped, which keeps big integers exact.
// Anything else goes through json.Marshal, whose default escaping matches
// ActiveSupport::JSON's.
func encodeMessage(msg any) ([]byte, error) {
	switch m := msg.(type) {
	case json.RawMessage:
		return normalizeJSON(m)
	case []byte:
		return normalizeJSON(m)
	}
	return json.Marshal(msg)
}

// normalizeJSON makes a payload look as Rails' default stream handler would
// re-encode it: no insignificant whitespace and HTML-escaped strings
// (actioncable/lib/action_cable/channel/streams.rb, default_stream_handler
// decodes and transmit re-encodes). Numbers are kept as written. It fails on
// anything that is not a single JSON value, as Rails' decode raises, and on
// invalid UTF-8, which Rails' encode refuses (JSON::GeneratorError) and which
// a WebSocket client must answer by failing the connection (RFC 6455 §8.1):
// forwarded, it would disconnect every subscriber of the stream.
func normalizeJSON(p []byte) ([]byte, error) {
	if !utf8.Valid(p) {
		return nil, ErrInvalidJSON
	}
	if !needsNormalizing(p) {
		if !json.Valid(p) {
			return nil, ErrInvalidJSON
		}
		return p, nil
	}
	var buf bytes.Buffer
	buf.Grow(len(p))
	if err := json.Compact(&buf, p); err != nil {
		return nil, ErrInvalidJSON
	}
	out := buf.Bytes()
	if bytes.ContainsAny(out, "<>&\u2028\u2029") {
		var esc bytes.Buffer
		esc.Grow(len(out) + 16)
		json.HTMLEscape(&esc, out)
		out = esc.Bytes()
	}
	return out, nil
}

// needsNormalizing reports whether p has whitespace or characters that
// Rails would escape.
func needsNormalizing(p []byte) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case ' ', '\t', '\n', '\r', '<', '>', '&':
			return true
		case 0xe2: // first byte of U+2028 and U+2029
			return true
		}
	}
	return false
}
