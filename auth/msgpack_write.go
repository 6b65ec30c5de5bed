package auth

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// encodeMessagePack is ActiveSupport::MessagePack.dump
// (activesupport/lib/active_support/message_pack/serializer.rb) of the
// value encoding/json makes of v: the signature 0xCC 0x80 (the integer
// 128), then the value as msgpack-ruby packs the Ruby object JSON.parse
// would give: nil, true/false, Integer in its smallest form (unsigned
// forms for non-negative values), Float as float 64, String as str, Array
// and Hash (string keys, sorted, as encoding/json orders them). Integers
// beyond 64 bits would need the Bigint extension and are refused.
func encodeMessagePack(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	var g any
	if err := d.Decode(&g); err != nil {
		return nil, err
	}
	out := append([]byte(nil), messagePackSignature...)
	return appendMessagePack(out, g)
}

func appendMessagePack(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, 0xc0), nil
	case bool:
		if v {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return appendMsgpackInt(b, i), nil
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return binary.BigEndian.AppendUint64(append(b, 0xcf), u), nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || isIntegerLiteral(string(v)) {
			return nil, fmt.Errorf("auth: msgpack: number %s does not fit 64 bits", v)
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f)), nil
	case string:
		return appendMsgpackStr(b, v), nil
	case []any:
		b = appendMsgpackLen(b, len(v), 0x90, 0xdc)
		for _, e := range v {
			var err error
			if b, err = appendMessagePack(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = appendMsgpackLen(b, len(v), 0x80, 0xde)
		for _, k := range keys {
			b = appendMsgpackStr(b, k)
			var err error
			if b, err = appendMessagePack(b, v[k]); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, errors.New("auth: msgpack: unsupported value") // not produced by encoding/json
}

// isIntegerLiteral reports whether a JSON number has no fraction or
// exponent, so that Ruby's JSON.parse reads it as an Integer.
func isIntegerLiteral(s string) bool { return !strings.ContainsAny(s, ".eE") }

// appendMsgpackInt writes i in its smallest form, as msgpack-ruby does.
func appendMsgpackInt(b []byte, i int64) []byte {
	switch {
	case i >= 0 && i < 128, i < 0 && i >= -32:
		return append(b, byte(i))
	case i >= 0:
		u := uint64(i)
		switch {
		case u <= math.MaxUint8:
			return append(b, 0xcc, byte(u))
		case u <= math.MaxUint16:
			return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(u))
		case u <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(u))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcf), u)
	case i >= math.MinInt8:
		return append(b, 0xd0, byte(i))
	case i >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(i))
	case i >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(i))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(i))
}

// appendMsgpackStr writes a UTF-8 string as str (fixstr, str 8/16/32).
func appendMsgpackStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// appendMsgpackLen writes an array or map header: fix (fix|n) below 16,
// then the 16- and 32-bit forms (code16, code16+1).
func appendMsgpackLen(b []byte, n int, fix, code16 byte) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, code16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, code16+1), uint32(n))
}
