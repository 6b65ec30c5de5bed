package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

const testBroadcastSecret = "0123456789abcdef-test-secret"

func newBroadcastConfig(t *testing.T, env map[string]string, args ...string) *broadcastConfig {
	t.Helper()
	for _, n := range []string{"GOCABLE_BROADCAST_PATH", "GOCABLE_BROADCAST_SECRET", "GOCABLE_BROADCAST_MAX_BODY"} {
		t.Setenv(n, "") // restored after the test
		os.Unsetenv(n)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c broadcastConfig
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &c
}

// Without a secret nothing is served; the path, size and secret come from
// flags or the environment.
func TestBroadcastInstall(t *testing.T) {
	mux := http.NewServeMux()
	if err := newBroadcastConfig(t, nil).install(mux, &cable.Server{}, discardLogger()); err != nil {
		t.Fatal(err)
	}
	if _, pattern := mux.Handler(httptest.NewRequest("POST", "/_broadcast", nil)); pattern != "" {
		t.Fatalf("endpoint served without a secret: %q", pattern)
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		path string
	}{
		{"flag secret", nil, []string{"-broadcast-secret", testBroadcastSecret}, "/_broadcast"},
		{"env secret", map[string]string{"GOCABLE_BROADCAST_SECRET": testBroadcastSecret}, nil, "/_broadcast"},
		{"env path", map[string]string{"GOCABLE_BROADCAST_SECRET": testBroadcastSecret, "GOCABLE_BROADCAST_PATH": "/api/cable/broadcast"}, nil, "/api/cable/broadcast"},
		{"flag path", nil, []string{"-broadcast-secret", testBroadcastSecret, "-broadcast-path", "/x"}, "/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			if err := newBroadcastConfig(t, tc.env, tc.args...).install(mux, &cable.Server{}, discardLogger()); err != nil {
				t.Fatal(err)
			}
			if _, pattern := mux.Handler(httptest.NewRequest("POST", tc.path, nil)); pattern != tc.path {
				t.Fatalf("pattern %q; want %q", pattern, tc.path)
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"relative path", []string{"-broadcast-secret", "s", "-broadcast-path", "x"}, "must start with /"},
		{"bad size", []string{"-broadcast-secret", "s", "-broadcast-max-body", "0"}, "must be positive"},
		{"taken path", []string{"-broadcast-secret", "s", "-broadcast-path", "/cable"}, "conflicts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle("/cable", http.NotFoundHandler())
			err := newBroadcastConfig(t, nil, tc.args...).install(mux, &cable.Server{}, discardLogger())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("install: %v; want %q", err, tc.want)
			}
		})
	}
}

// End to end: a broadcast through the endpoint reaches a subscriber of a
// real server, the payload exactly as posted.
func TestBroadcastEndToEnd(t *testing.T) {
	srv := &cable.Server{CheckOrigin: func(*http.Request) bool { return true }, Logger: discardLogger()}
	srv.Handle("StreamChannel", func() cable.Channel {
		return cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error {
			return s.StreamFrom(ctx, "chat_lobby")
		})
	})
	mux := http.NewServeMux()
	mux.Handle("/cable", srv)
	c := newBroadcastConfig(t, map[string]string{"GOCABLE_BROADCAST_SECRET": testBroadcastSecret})
	if err := c.install(mux, srv, discardLogger()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	defer func() {
		srv.Shutdown(context.Background())
		hs.Close()
	}()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	id := `{"channel":"StreamChannel"}`
	ws.WriteJSON(map[string]string{"command": "subscribe", "identifier": id})
	read := func() string {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	read() // welcome
	if got := read(); !strings.Contains(got, "confirm_subscription") {
		t.Fatalf("got %s", got)
	}

	post := func(body string) *http.Response {
		req, _ := http.NewRequest("POST", hs.URL+"/_broadcast", bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+testBroadcastSecret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := post(`[{"stream":"chat_lobby","data":{"big":12345678901234567890,"s":"<&>"}},{"stream":"elsewhere","data":1},{"stream":"chat_lobby","data":"two"}]`); res.StatusCode != 202 {
		t.Fatalf("status %d", res.StatusCode)
	}
	idJSON, _ := json.Marshal(id)
	for _, msg := range []string{`{"big":12345678901234567890,"s":"\u003c\u0026\u003e"}`, `"two"`} {
		want := `{"identifier":` + string(idJSON) + `,"message":` + msg + `}`
		if got := read(); got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
