package cable

import (
	"context"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzHandleFrame feeds arbitrary client frames to a connection: no input
// may panic the server (a panic in channel code is recovered, but the
// protocol layer must not need that), and the connection keeps working.
func FuzzHandleFrame(f *testing.F) {
	for _, seed := range []string{
		`{"command":"subscribe","identifier":"{\"channel\":\"StreamChannel\"}"}`,
		`{"command":"message","identifier":"{\"channel\":\"StreamChannel\"}","data":"{\"action\":\"echo\",\"x\":1}"}`,
		`{"command":"unsubscribe","identifier":"{\"channel\":\"StreamChannel\"}"}`,
		`{"command":"subscribe","identifier":"{\"channel\":\"Nope\"}"}`,
		`{"command":"message","identifier":"{\"channel\":\"StreamChannel\"}","data":"{\"action\":123}"}`,
		`not json`, `[1,2]`, `"str"`, `{}`, `{"command":"bogus"}`, `{"command":"subscribe","identifier":{"a":1}}`,
		`{"command":"message","identifier":"{\"channel\":\"StreamChannel\"}","data":"null"}`,
	} {
		f.Add([]byte(seed))
	}
	srv := quietServer()
	srv.Handle("StreamChannel", func() Channel { return streamChannel{} })
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, sink := newSinkConn(srv, Identity{})
		defer c.finish()
		ctx := context.Background()
		panicked := c.safely("fuzz", func() {
			c.handleFrame(ctx, frame)
			c.handleFrame(ctx, []byte(`{"command":"subscribe","identifier":"{\"channel\":\"StreamChannel\",\"probe\":1}"}`))
		})
		if panicked {
			t.Fatalf("handleFrame(%q) panicked", frame)
		}
		if c.sub(`{"channel":"StreamChannel","probe":1}`) == nil {
			t.Fatalf("after %q the connection no longer subscribes", frame)
		}
		_ = sink
	})
}

// FuzzNormalizeJSON: a broadcast payload from a foreign publisher is
// either refused or turned into valid JSON; never a panic.
func FuzzNormalizeJSON(f *testing.F) {
	for _, seed := range []string{`{"a":1}`, `"x<y"`, `{"z":1, "a" : 2}`, `not json`, `[1,2,3]`, "\"\u2028\"", `12345678901234567890123`, "\"caf\xe9\""} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		out, err := normalizeJSON(p)
		if err != nil {
			return
		}
		if !jsonValid(out) {
			t.Fatalf("normalizeJSON(%q) = %q, not valid JSON", p, out)
		}
		if !utf8.Valid(out) {
			t.Fatalf("normalizeJSON(%q) = %q, not valid UTF-8", p, out)
		}
	})
}

func jsonValid(b []byte) bool { return json.Valid(b) }
