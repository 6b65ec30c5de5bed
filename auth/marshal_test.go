package auth

import (
	"encoding/hex"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

func bigInt(s string) *big.Int {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return b
}

// The inputs were produced by Ruby 3.1's Marshal.dump of the expression
// named in each case.
var marshalTests = []struct {
	name, ruby, hex string
	want            any
}{
	{"nil", `nil`, "040830", nil},
	{"integers",
		`[-1, -123, -256, -65536, 2**30-1, 2**30, -2**30-1, 2**62, 2**64, -(2**70)]`,
		"04085b0f69fa698069ff0069fe00006904ffffff3f6c2b07000000406c2d07010000406c2b0900000000000000406c2b0a000000000000000001006c2d0a00000000000000004000",
		[]any{int64(-1), int64(-123), int64(-256), int64(-65536), int64(1<<30 - 1), int64(1 << 30), int64(-(1 << 30) - 1),
			int64(1 << 62), bigInt("18446744073709551616"), bigInt("-1180591620717411303424")}},
	{"big", `2**100`, "04086c2b0c0000000000000000000000001000", bigInt("1267650600228229401496703205376")},
	{"floats", `[1.5, -0.0, Float::INFINITY, -Float::INFINITY, 1e100, 3.0]`,
		"04085b0b6608312e3566072d306608696e6666092d696e66660a3165313030660633",
		[]any{1.5, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), 1e100, 3.0}},
	{"symbols and encodings", `[:a, :a, :b, "é", "x".b, "x".force_encoding("Shift_JIS")]`,
		"04085b0b3a06613b003a0662492207c3a9063a06455422067849220678063a0d656e636f64696e67220e53686966745f4a4953",
		[]any{"a", "a", "b", "é", "x", "x"}},
	{"object link", `s = "shared"; [s, s]`, "04085b0749220b736861726564063a0645544006", []any{"shared", "shared"}},
	{"hash", `{"a" => 1, :b => [1,2], 3 => nil, 1.5 => true}`,
		"04087b0949220661063a06455469063a06625b07690669076908306608312e3554",
		map[string]any{"a": int64(1), "b": []any{int64(1), int64(2)}, "3": nil, "1.5": true}},
	{"hash with default", `Hash.new(5).merge!("k" => "v")`, "04087d064922066b063a06455449220676063b0054690a",
		map[string]any{"k": "v"}},
	{"struct", `Struct.new(:a, :b) named S; S.new(1, "two")`, "0408533a0653073a066169063a066249220874776f063a064554",
		map[string]any{"_class": "S", "a": int64(1), "b": "two"}},
	{"object", `Foo with @x = 1, @y = "s"`, "04086f3a08466f6f073a07407869063a07407949220673063a064554",
		map[string]any{"_class": "Foo", "x": int64(1), "y": "s"}},
	{"time utc", `Time.at(1700000000, 123456789, :nsec).utc`,
		"040849753a0954696d650dd6e91ec040e24135093a0d6e616e6f5f6e756d690215033a0d6e616e6f5f64656e69063a0d7375626d6963726f220778903a097a6f6e65492208555443063a064546",
		"2023-11-14T22:13:20.123Z"},
	{"time with offset", `Time.at(1700000000, in: "+09:00")`,
		"040849753a0954696d650dd6e91e8000004035073a097a6f6e65303a0b6f66667365746902907e",
		"2023-11-15T07:13:20.000+09:00"},
	{"regexp", `/ab+c/i`, "0408492f0961622b6301063a064546", "ab+c"},
	{"class and module", `[String, Kernel]`, "04085b07630b537472696e676d0b4b65726e656c", []any{"String", "Kernel"}},
	{"date", `Date.new(2024, 2, 29)`, "0408553a09446174655b0b69006903d28a25690069006900660c32323939313631", "2024-02-29"},
	{"bigdecimal", `BigDecimal("1.5")`, "0408753a0f426967446563696d616c0e31383a302e31356531", "0.15e1"},
	{"hash subclass", `MyHash < Hash; MyHash["a" => 1]`, "0408433a0b4d79486173687b0649220661063a0645546906",
		map[string]any{"a": int64(1)}},
	{"rational", `Rational(1, 3)`, "0408553a0d526174696f6e616c5b0769066908",
		map[string]any{"_class": "Rational", "_data": []any{int64(1), int64(3)}}},
	{"set", `Set[1, 2]`, "04086f3a08536574063a0a40686173687d0769065469075446",
		map[string]any{"_class": "Set", "hash": map[string]any{"1": true, "2": true}}},
	{"trailing bytes ignored", `42 + "xyz"`, "0408692f78797a", int64(42)},
}

func TestDecodeMarshal(t *testing.T) {
	for _, tt := range marshalTests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeMarshal(b)
			if err != nil {
				t.Fatalf("DecodeMarshal(%s) error: %v", tt.ruby, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DecodeMarshal(%s) = %#v; want %#v", tt.ruby, got, tt.want)
			}
		})
	}
}

func TestDecodeMarshalErrors(t *testing.T) {
	// A billion-laughs chain: each array holds two links to the previous one.
	laughs := []byte{4, 8, '[', 6 + 5, '[', 0 + 5}
	for i := 0; i < 40; i++ {
		laughs = append(laughs, '[', 2+5, '@', byte(i+1+5), '@', byte(i+1+5))
	}
	laughs[3] = 40 + 1 + 5 // outer array length 41
	tests := []struct {
		name, hex string
		raw       []byte
		want      string
	}{
		{name: "empty", hex: "", want: "not a Marshal"},
		{name: "wrong version", hex: "0409 30", want: "not a Marshal"},
		{name: "truncated string", hex: "0408 22 0a 6162", want: "bad length"},
		{name: "huge array", hex: "0408 5b 04 ffffff7f", want: "bad length"},
		{name: "cycle", hex: "04085b064000", want: "recursive"},
		{name: "bad link", hex: "0408 5b 06 40 0a", want: "bad object link"},
		{name: "bad symlink", hex: "0408 3b 00", want: "bad symbol link"},
		{name: "unknown type", hex: "0408 21", want: "unsupported type"},
		{name: "array hash key", hex: "0408 7b 06 5b 00 30", want: "unsupported hash key"},
		{name: "bad float", hex: "0408 66 06 78", want: "bad float"},
		{name: "deep", raw: append([]byte{4, 8}, []byte(strings.Repeat("[\x06", 200)+"0")...), want: "nesting"},
		{name: "billion laughs", raw: laughs, want: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.raw
			if b == nil {
				var err error
				if b, err = hex.DecodeString(strings.ReplaceAll(tt.hex, " ", "")); err != nil {
					t.Fatal(err)
				}
			}
			got, err := DecodeMarshal(b)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeMarshal(%x) = %#v, %v; want error containing %q", b, got, err, tt.want)
			}
		})
	}
}
