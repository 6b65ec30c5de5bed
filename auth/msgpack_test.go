package auth

import (
	"encoding/hex"
	"math"
	"reflect"
	"strings"
	"testing"
)

// Inputs are the signature cc80 followed by hand-assembled msgpack, built
// from the msgpack spec and ActiveSupport's extensions.rb; the Bigint
// bytes are the "stable format" cases of msgpack-ruby's spec/bigint_spec.rb.
var msgpackTests = []struct {
	name, hex string
	want      any
}{
	{"fixint", "2a", int64(42)},
	{"fixstr", "a23432", "42"},
	{"uints", "94 ccff cd0100 ce00010000 cfffffffffffffffff",
		[]any{int64(255), int64(256), int64(65536), bigInt("18446744073709551615")}},
	{"ints", "95 d080 d1ff00 d2ffff0000 d38000000000000000 e0",
		[]any{int64(-128), int64(-256), int64(-65536), int64(math.MinInt64), int64(-32)}},
	{"floats", "92 cb3ff8000000000000 ca3fc00000", []any{1.5, 1.5}},
	{"nil bool", "93 c0 c2 c3", []any{nil, false, true}},
	{"map", "82 a161 01 01 a178", map[string]any{"a": int64(1), "1": "x"}},
	{"bin and str8", "92 c4026869 d90568656c6c6f", []any{"hi", "hello"}},
	{"array16 map16", "92 dc0001 01 de0001 a162 02", []any{[]any{int64(1)}, map[string]any{"b": int64(2)}}},
	{"symbol", "92 d40061 c703006162 63", []any{"a", "abc"}},
	{"bigint", "c70d01 009ff4555911929a3f0000199c", bigInt("120938120391283122132313")},
	{"negative bigint", "c71101 012fb2bd47bddeaaeb74cc8ac100000114", bigInt("-21903120391203912391023920332103")},
	{"time", "c70d07 ce6553f100 ce0754d4c0 cd7e90", "2023-11-15T07:13:20.123+09:00"},
	{"time with zone", "c71208 ce6553f100 00 00 aa5061636966696320546d", "2023-11-14T22:13:20.000Z"},
	{"date", "c70506 ce00258ad2", "2024-02-29"},
	{"datetime", "c70c05 ce00258ad2 0a 14 1e 01 02 03 08", "2024-02-29T10:20:30.500+09:00"},
	{"rational", "d50301 03", "1/3"},
	{"hash with indifferent access", "c70411 81a16101", map[string]any{"a": int64(1)}},
	{"set", "c7030c 920102", []any{int64(1), int64(2)}},
	{"safe buffer", "c70312 a27869", "xi"},
	{"duration", "c70b0a cd0e10 97c0c0c0c001c0c0", int64(3600)},
	{"range", "c7030b 01 05 c2", map[string]any{"_class": "Range", "begin": int64(1), "end": int64(5), "exclude_end": false}},
	{"devise session", "81 b4 77617264656e2e757365722e757365722e6b6579 92 91 2a a473616c74",
		map[string]any{"warden.user.user.key": []any{[]any{int64(42)}, "salt"}}},
}

func TestDecodeMessagePack(t *testing.T) {
	for _, tt := range msgpackTests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString("cc80" + strings.ReplaceAll(tt.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMessagePack(b)
			if err != nil {
				t.Fatalf("DecodeMessagePack(%x) error: %v", b, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DecodeMessagePack(%x) = %#v; want %#v", b, got, tt.want)
			}
		})
	}
}

func TestDecodeMessagePackErrors(t *testing.T) {
	tests := []struct {
		name, hex string
		want      string
	}{
		{"no signature", "2a", "signature"},
		{"empty", "cc80", "end of data"},
		{"extra bytes", "cc80 2a 2a", "extra bytes"},
		{"reserved byte", "cc80 c1", "invalid type byte"},
		{"huge array", "cc80 ddffffffff", "bad length"},
		{"huge str", "cc80 dbffffffff", "bad length"},
		{"truncated", "cc80 a5 6869", "bad length"},
		{"object ext", "cc80 d47f00", "unsupported extension type 127"},
		{"timestamp ext", "cc80 d6ff00000000", "unsupported extension type -1"},
		{"array key", "cc80 81 90 01", "unsupported map key"},
		{"deep", "cc80" + strings.Repeat("91", 150) + "c0", "nesting"},
		{"bad bigint", "cc80 d50100 00", "bad Bigint"},
		{"bad time", "cc80 d50701 02", "end of data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMessagePack(b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeMessagePack(%x) = %#v, %v; want error containing %q", b, got, err, tt.want)
			}
		})
	}
}
