package cable

import (
	"encoding/json"
	"testing"
)

func TestKeysExact(t *testing.T) {
	names := []string{"command", "identifier", "data"}
	tests := []struct {
		in   string
		want bool
	}{
		{`{"command":"subscribe","identifier":"{\"channel\":\"X\"}"}`, true},
		{`{"COMMAND":"subscribe"}`, false},
		{`{"command":"x","Data":"{}"}`, false},
		{`{"comm\u0061nd":"x"}`, false},                                     // an escape: decoded the slow way
		{`{"other":{"Command":1,"data":[{"DATA":2}]},"command":"x"}`, true}, // nested keys do not count
		{`{"s":"a \"Command\": b","command":"x"}`, true},
		{`{"s":"\\","Identifier":1}`, false},
		{` { "command" : "x" , "IDENTIFIER" : "y" } `, false},
		{`[1,2]`, true}, {`"str"`, true}, {`{}`, true}, {`not json`, true}, {`{"command"`, true}, {``, true},
	}
	for _, tt := range tests {
		if got := keysExact([]byte(tt.in), names...); got != tt.want {
			t.Errorf("keysExact(%s) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestActionOf(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{``, "receive", false}, {`null`, "receive", false}, {`false`, "receive", false},
		{`""`, "receive", false}, {`"  "`, "receive", false}, {`[]`, "receive", false}, {`{}`, "receive", false},
		{`"speak"`, "speak", false}, {`" speak"`, " speak", false},
		{`true`, "", true}, {`0`, "", true}, {`[1]`, "", true}, {`{"a":1}`, "", true},
	}
	for _, tt := range tests {
		got, err := actionOf([]byte(tt.in))
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("actionOf(%s) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// appendJSONString writes what json.Marshal writes (HTML escaping on),
// byte for byte: every ASCII byte, invalid UTF-8, U+2028/U+2029 and
// other runes.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	ins := []string{"", `{"channel":"ChatChannel","room":"<a&b>"}`, "\u2028\u2029é日本\U0001F600", "\xff\xfe x \xc3", "a\x00b\x1fc\x7f"}
	for b := 0; b < 256; b++ {
		ins = append(ins, "x"+string([]byte{byte(b)})+"y")
	}
	for _, in := range ins {
		want, _ := json.Marshal(in)
		if got := appendJSONString(nil, in); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("<\u2028\xff\"\\")
	f.Fuzz(func(t *testing.T, in string) {
		want, _ := json.Marshal(in)
		if got := appendJSONString(nil, in); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", in, got, want)
		}
	})
}
