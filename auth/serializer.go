package auth

import (
	"bytes"
	"fmt"
	"strings"
)

type payloadFormat int

const (
	formatUnknown payloadFormat = iota
	formatJSON
	formatMarshal
	formatMessagePack
)

func (f payloadFormat) String() string {
	return [...]string{"unknown", "JSON", "Marshal", "MessagePack"}[f]
}

var marshalSignature = []byte{4, 8}

// detectFormat is SerializerWithFallback#detect_format
// (activesupport/lib/active_support/messages/serializer_with_fallback.rb).
func detectFormat(p []byte) payloadFormat {
	switch {
	case bytes.HasPrefix(p, messagePackSignature):
		return formatMessagePack
	case bytes.HasPrefix(p, marshalSignature):
		return formatMarshal
	case jsonStart(p):
		return formatJSON
	}
	return formatUnknown
}

// jsonStart is JSON_START_WITH: /\A(?:[{\["]|-?\d|true|false|null)/.
func jsonStart(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch c := p[0]; {
	case c == '{' || c == '[' || c == '"':
		return true
	case c >= '0' && c <= '9':
		return true
	case c == '-':
		return len(p) > 1 && p[1] >= '0' && p[1] <= '9'
	}
	return bytes.HasPrefix(p, []byte("true")) || bytes.HasPrefix(p, []byte("false")) || bytes.HasPrefix(p, []byte("null"))
}

// deserialize applies the cookies_serializer of the configured Rails
// version (cookies.rb, SerializedCookieJars).
func (c *RailsCookies) deserialize(p []byte) (any, Reason, string) {
	f := detectFormat(p)
	var use payloadFormat
	switch {
	case c.version >= 701:
		// SerializerWithFallback: the primary format, any detected
		// fallback except Marshal unless allowed, and for the JSON
		// serializers an undetected payload is tried as JSON.
		var primary payloadFormat
		allowMarshal := false
		switch c.serializer {
		case SerializerMarshal:
			primary, allowMarshal = formatMarshal, true
		case SerializerJSON:
			primary = formatJSON
		case SerializerHybrid, SerializerJSONAllowMarshal:
			primary, allowMarshal = formatJSON, true
		case SerializerMessagePack:
			primary = formatMessagePack
		case SerializerMessagePackAllowMarshal:
			primary, allowMarshal = formatMessagePack, true
		}
		if f == formatUnknown && primary == formatJSON {
			f = formatJSON
		}
		switch {
		case f == formatUnknown:
			return nil, ReasonDeserializeFailed, "unsupported serialization format"
		case f == formatMarshal && !allowMarshal:
			return nil, ReasonSerializerRefused, fmt.Sprintf("Marshal payload refused by cookies_serializer :%s", c.serializer)
		}
		use = f
	case c.serializer == SerializerMarshal && c.version < 601:
		// Marshal.load only.
		use = formatMarshal
	case c.serializer == SerializerMarshal || c.serializer == SerializerHybrid:
		// MarshalWithJsonFallback (6.1, 7.0), and :hybrid's
		// needs_migration? (5.2+): Marshal if it has the signature, else JSON.
		use = formatJSON
		if f == formatMarshal {
			use = formatMarshal
		}
	default: // :json before 7.1: JsonSerializer
		if f == formatMarshal {
			return nil, ReasonSerializerRefused, "Marshal payload refused by cookies_serializer :json"
		}
		use = formatJSON
	}
	var v any
	var err error
	switch use {
	case formatJSON:
		v, err = decodeJSON(p)
	case formatMarshal:
		v, err = DecodeMarshal(p)
	case formatMessagePack:
		v, err = DecodeMessagePack(p)
	}
	if err != nil {
		return nil, ReasonDeserializeFailed, strings.TrimPrefix(err.Error(), "auth: ")
	}
	return v, "", ""
}
