package cable

import (
	"encoding/json"
	"testing"
)

// FuzzValue reads arbitrary client JSON (params and action data) the ways
// a channel does: none may panic, and a string is present exactly when
// its to_s is not blank, as ActiveSupport's String#present? says.
func FuzzValue(f *testing.F) {
	for _, seed := range []string{`{"room":"1"}`, `{"a":{"b":[1,2]}}`, `"12abc"`, `1e400`, `-0`, `null`, `[]`, `{"x":1,"x":2}`, `"\ud800"`, `{`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v := Data(json.RawMessage(raw))
		for _, x := range []Value{v, v.Get("room"), v.Get("a").Get("b")} {
			_ = x.Exists()
			_ = x.Int()
			var dst map[string]any
			_ = x.Decode(&dst)
			if isStringLit(x.Raw()) && json.Valid(x.Raw()) && x.Present() == isBlank(x.String()) {
				t.Fatalf("%s: Present() = %v but String() = %q", x.Raw(), x.Present(), x.String())
			}
		}
	})
}

// isStringLit reports whether raw is a JSON string literal.
func isStringLit(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }
