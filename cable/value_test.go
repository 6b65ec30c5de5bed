package cable_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"os/exec"
	"strings"
	"testing"

	"github.com/gocable/gocable/cable"
)

// rubyValueScript decodes each case as Rails decodes identifiers and
// data (ActiveSupport::JSON.decode), looks the key up when the case has
// one (with_indifferent_access, as params), and prints what present?,
// to_s and to_i give.
const rubyValueScript = `
require "json"
require "active_support"
require "active_support/json"
require "active_support/core_ext/object/blank"
require "active_support/core_ext/hash/indifferent_access"
out = JSON.parse(STDIN.read).map do |c|
  v = ActiveSupport::JSON.decode(c["json"])
  exists = true
  if c.key?("key")
    h = v.with_indifferent_access
    exists = h.key?(c["key"])
    v = h[c["key"]]
  end
  to_i = begin
    v.to_i.to_s
  rescue NoMethodError, FloatDomainError => e
    "raise " + e.class.name
  end
  { "exists" => exists, "present" => v.present?, "to_s" => v.to_s, "to_i" => to_i,
    "class" => v.class.name }
end
puts JSON.generate(out)
`

type rubyValue struct {
	Exists  bool   `json:"exists"`
	Present bool   `json:"present"`
	ToS     string `json:"to_s"`
	ToI     string `json:"to_i"`
	Class   string `json:"class"`
}

// valueCases are JSON texts, each alone or with a key to look up in it.
var valueCases = []struct {
	JSON string `json:"json"`
	Key  string `json:"key,omitempty"`
}{
	{JSON: `null`}, {JSON: `true`}, {JSON: `false`},
	{JSON: `""`}, {JSON: `" "`}, {JSON: `"\t\n\r\u000b\f"`}, {JSON: `"\u00a0"`}, {JSON: `"\u3000\u2028\u1680"`},
	{JSON: `"\u200b"`}, {JSON: `"\ufeff"`}, {JSON: `"\u0085"`}, {JSON: `"x"`}, {JSON: `" x "`},
	{JSON: `"12abc"`}, {JSON: `"abc"`}, {JSON: `" -3"`}, {JSON: `"\u000b+7"`}, {JSON: `"- 5"`}, {JSON: `"1_000"`},
	{JSON: `"1__0"`}, {JSON: `"_1"`}, {JSON: `"1_"`}, {JSON: `"0d12"`}, {JSON: `"0x1A"`}, {JSON: `"007"`},
	{JSON: `"3.9"`}, {JSON: `"1e3"`}, {JSON: `"99999999999999999999"`}, {JSON: `"-99999999999999999999"`},
	{JSON: `"９"`}, {JSON: `"\u00a012"`}, {JSON: `"café"`},
	{JSON: `0`}, {JSON: `-0`}, {JSON: `7`}, {JSON: `-12`}, {JSON: `12345678901234567890123`},
	{JSON: `-9223372036854775809`}, {JSON: `9223372036854775807`},
	{JSON: `3.9`}, {JSON: `-3.9`}, {JSON: `0.0`}, {JSON: `-0.0`}, {JSON: `1.0`}, {JSON: `1E2`}, {JSON: `1e-2`},
	{JSON: `0.1`}, {JSON: `0.001`}, {JSON: `0.0001`}, {JSON: `0.00001`}, {JSON: `1.5e-7`}, {JSON: `123.456`},
	{JSON: `1e14`}, {JSON: `1e15`}, {JSON: `1e16`}, {JSON: `1.5e15`}, {JSON: `100000000000000.5`},
	{JSON: `1234567890123456.0`}, {JSON: `1234567890123456.7`}, {JSON: `12345678901234567.0`},
	{JSON: `1e22`}, {JSON: `1.7976931348623157e308`}, {JSON: `5e-324`}, {JSON: `1e400`}, {JSON: `-1e400`},
	{JSON: `9.3e18`}, {JSON: `-9.3e18`},
	{JSON: `[]`}, {JSON: `[1, "a", null]`}, {JSON: `[""]`}, {JSON: `{}`}, {JSON: `{"a": [1, {"b": null}]}`},

	{JSON: `{"channel":"RoomChannel","room":"lobby"}`, Key: "room"},
	{JSON: `{"channel":"RoomChannel","Room":"lobby"}`, Key: "room"},
	{JSON: `{"channel":"RoomChannel","ROOM":"lobby","room":"x"}`, Key: "room"},
	{JSON: `{"channel":"RoomChannel","room":null}`, Key: "room"},
	{JSON: `{"channel":"RoomChannel","room":"a","room":"b"}`, Key: "room"},
	{JSON: `{"channel":"RoomChannel","room":42}`, Key: "room"},
	{JSON: `{"channel":"RoomChannel","room":"  "}`, Key: "room"},
	{JSON: `{"channel":"RoomChannel"}`, Key: "channel"},
	{JSON: `{"action":"speak","body":"hi","n":"12 apples"}`, Key: "n"},
	{JSON: `{"action":"speak","body":{}}`, Key: "body"},
}

func runRubyValues(t *testing.T) []rubyValue {
	t.Helper()
	if _, err := exec.LookPath("ruby"); err != nil {
		t.Fatalf("ruby not found in PATH (%v): install ruby, ruby-activesupport", err)
	}
	in, err := json.Marshal(valueCases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ruby", "-e", rubyValueScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ruby: %v\n%s", err, stderr.String())
	}
	var got []rubyValue
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("ruby printed %s: %v", out, err)
	}
	if len(got) != len(valueCases) {
		t.Fatalf("ruby answered %d cases; want %d", len(got), len(valueCases))
	}
	return got
}

// TestValueMatchesRuby compares Value with what Ruby and ActiveSupport
// make of the same JSON: present?, to_s and to_i, and the key lookup of
// params.
func TestValueMatchesRuby(t *testing.T) {
	ruby := runRubyValues(t)
	for i, tc := range valueCases {
		want := ruby[i]
		name := tc.JSON
		v := cable.Data(json.RawMessage(tc.JSON))
		if tc.Key != "" {
			name += "[" + tc.Key + "]"
			v = v.Get(tc.Key)
		}
		t.Run(name, func(t *testing.T) {
			if got := v.Exists(); got != want.Exists {
				t.Errorf("Exists() = %v; Ruby's key? is %v", got, want.Exists)
			}
			if got := v.Present(); got != want.Present {
				t.Errorf("Present() = %v; Ruby's present? is %v", got, want.Present)
			}
			switch want.Class {
			case "Array", "Hash", "ActiveSupport::HashWithIndifferentAccess":
				// Documented: compact JSON instead of Ruby's inspect.
				var b bytes.Buffer
				if err := json.Compact(&b, v.Raw()); err != nil {
					t.Fatal(err)
				}
				if got := v.String(); got != b.String() {
					t.Errorf("String() = %q; want the compact JSON %q", got, b.String())
				}
			default:
				if got := v.String(); got != want.ToS {
					t.Errorf("String() = %q; Ruby's to_s is %q", got, want.ToS)
				}
			}
			if got, w := v.Int(), wantInt(t, want); got != w {
				t.Errorf("Int() = %d; want %d (Ruby's to_i: %s)", got, w, want.ToI)
			}
		})
	}
}

// wantInt is what Int should return given Ruby's to_i: the same number
// saturated to int64, 0 where Ruby has no to_i, and the bound of the
// sign where Ruby cannot convert an infinity.
func wantInt(t *testing.T, r rubyValue) int64 {
	t.Helper()
	switch {
	case r.ToI == "raise NoMethodError":
		return 0
	case r.ToI == "raise FloatDomainError" && strings.HasPrefix(r.ToS, "-"):
		return math.MinInt64
	case r.ToI == "raise FloatDomainError":
		return math.MaxInt64
	}
	n, ok := new(big.Int).SetString(r.ToI, 10)
	if !ok {
		t.Fatalf("Ruby's to_i printed %q", r.ToI)
	}
	switch {
	case n.IsInt64():
		return n.Int64()
	case n.Sign() > 0:
		return math.MaxInt64
	}
	return math.MinInt64
}

// The missing Value reads as Ruby's nil, and Get on anything but an
// object finds nothing.
func TestValueMissing(t *testing.T) {
	for _, v := range []cable.Value{
		{}, cable.Data(nil), cable.Data(json.RawMessage(`{"a":1}`)).Get("b"),
		cable.Data(json.RawMessage(`"abc"`)).Get("a"), cable.Data(json.RawMessage(`[1]`)).Get("0"),
		cable.Data(json.RawMessage(`{"a":{"b":1}}`)).Get("a").Get("c"),
	} {
		if v.Exists() || v.Present() || v.String() != "" || v.Int() != 0 || v.Raw() != nil {
			t.Errorf("%s: Exists %v, Present %v, String %q, Int %d; want a missing value",
				v.Raw(), v.Exists(), v.Present(), v.String(), v.Int())
		}
	}
	if got := cable.Data(json.RawMessage(`{"a":{"b":" 12 "}}`)).Get("a").Get("b").Int(); got != 12 {
		t.Errorf(`nested Get("a").Get("b").Int() = %d; want 12`, got)
	}
}
