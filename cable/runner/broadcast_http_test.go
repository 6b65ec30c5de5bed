package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

// fakeBroadcaster records broadcasts; it fails the one numbered failAt
// (1-based) when set.
type fakeBroadcaster struct {
	mu     sync.Mutex
	sent   []string // stream + " " + payload
	failAt int
}

func (f *fakeBroadcaster) Broadcast(ctx context.Context, stream string, msg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAt > 0 && len(f.sent)+1 == f.failAt {
		return errors.New("redis: connection refused")
	}
	raw, ok := msg.(json.RawMessage)
	if !ok {
		return errors.New("not raw JSON")
	}
	f.sent = append(f.sent, stream+" "+string(raw))
	return nil
}

const testBroadcastSecret = "0123456789abcdef-test-secret"

func newBroadcastHandler(b broadcaster, maxBody int64) *broadcastHandler {
	return &broadcastHandler{
		broadcaster: b,
		secretHash:  sha256.Sum256([]byte(testBroadcastSecret)),
		maxBody:     maxBody,
		logger:      discardLogger(),
	}
}

func TestBroadcastHandler(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		auth       string
		body       string
		maxBody    int64
		wantStatus int
		wantBody   string // substring of the answer
		wantSent   []string
	}{
		{name: "one", body: `{"stream":"chat_lobby","data":{"user":"bot","message":"hi <b>"}}`,
			wantStatus: 202, wantBody: `{"broadcasts":1,"status":"accepted"}`,
			wantSent: []string{`chat_lobby {"user":"bot","message":"hi <b>"}`}},
		{name: "turbo html string", body: `{"stream":"messages","data":"<turbo-stream action=\"append\" target=\"messages\"><template><p>hi</p></template></turbo-stream>"}`,
			wantStatus: 202, wantSent: []string{`messages "<turbo-stream action=\"append\" target=\"messages\"><template><p>hi</p></template></turbo-stream>"`}},
		{name: "batch", body: ` [{"stream":"a","data":1},{"stream":"b","data":[1,2]},{"data":12345678901234567890,"stream":"a"}] `,
			wantStatus: 202, wantBody: `"broadcasts":3`,
			wantSent: []string{`a 1`, `b [1,2]`, `a 12345678901234567890`}},
		{name: "null data", body: `{"stream":"a","data":null}`, wantStatus: 202, wantSent: []string{`a null`}},
		{name: "lower-case scheme", auth: "bearer " + testBroadcastSecret, body: `{"stream":"a","data":1}`, wantStatus: 202, wantSent: []string{"a 1"}},

		{name: "GET", method: "GET", wantStatus: 405, wantBody: "use POST"},
		{name: "PUT", method: "PUT", body: `{"stream":"a","data":1}`, wantStatus: 405},
		{name: "no auth", auth: "-", body: `{"stream":"a","data":1}`, wantStatus: 401, wantBody: "bearer token"},
		{name: "wrong secret", auth: "Bearer nope", body: `{"stream":"a","data":1}`, wantStatus: 401},
		{name: "secret prefix", auth: "Bearer " + testBroadcastSecret[:10], body: `{"stream":"a","data":1}`, wantStatus: 401},
		{name: "basic scheme", auth: "Basic " + testBroadcastSecret, body: `{"stream":"a","data":1}`, wantStatus: 401},

		{name: "bad json", body: `{"stream":"a",`, wantStatus: 400, wantBody: "invalid JSON"},
		{name: "not an object", body: `"hello"`, wantStatus: 400, wantBody: "invalid JSON"},
		{name: "empty body", body: ``, wantStatus: 400, wantBody: "empty body"},
		{name: "trailing data", body: `{"stream":"a","data":1} {"stream":"b","data":2}`, wantStatus: 400, wantBody: "after the JSON value"},
		{name: "unknown field", body: `{"steam":"a","data":1}`, wantStatus: 400, wantBody: `unknown field \"steam\"`},
		{name: "no stream", body: `{"data":1}`, wantStatus: 400, wantBody: `\"stream\" is missing`},
		{name: "empty stream", body: `{"stream":"","data":1}`, wantStatus: 400, wantBody: `\"stream\" is empty`},
		{name: "stream not a string", body: `{"stream":5,"data":1}`, wantStatus: 400, wantBody: "invalid JSON"},
		{name: "no data", body: `{"stream":"a"}`, wantStatus: 400, wantBody: `\"data\" is missing`},
		{name: "empty batch", body: `[]`, wantStatus: 400, wantBody: "empty batch"},
		{name: "invalid UTF-8 sends nothing", body: "[{\"stream\":\"a\",\"data\":1},{\"stream\":\"b\",\"data\":\"caf\xe9\"}]", wantStatus: 400, wantBody: "invalid UTF-8"},
		{name: "bad entry in batch sends nothing", body: `[{"stream":"a","data":1},{"stream":"b"}]`, wantStatus: 400, wantBody: `broadcast 1: \"data\" is missing`},

		{name: "too large", maxBody: 64, body: `{"stream":"a","data":"` + strings.Repeat("x", 100) + `"}`, wantStatus: 413, wantBody: "larger than 64"},
		{name: "just fits", maxBody: 24, body: `{"stream":"a","data":12}`, wantStatus: 202, wantSent: []string{"a 12"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fb := &fakeBroadcaster{}
			max := tc.maxBody
			if max == 0 {
				max = defaultBroadcastMaxBody
			}
			h := newBroadcastHandler(fb, max)
			method := tc.method
			if method == "" {
				method = "POST"
			}
			req := httptest.NewRequest(method, "/_broadcast", strings.NewReader(tc.body))
			switch tc.auth {
			case "":
				req.Header.Set("Authorization", "Bearer "+testBroadcastSecret)
			case "-":
			default:
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d; want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var answer map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
				t.Errorf("answer is not a JSON object: %s", rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("body %s; want it to contain %s", rec.Body, tc.wantBody)
			}
			if got := strings.Join(fb.sent, "\n"); got != strings.Join(tc.wantSent, "\n") {
				t.Errorf("sent\n%s\nwant\n%s", got, strings.Join(tc.wantSent, "\n"))
			}
			switch tc.wantStatus {
			case 405:
				if rec.Header().Get("Allow") != "POST" {
					t.Errorf("Allow %q", rec.Header().Get("Allow"))
				}
			case 401:
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}
}

// A pub/sub failure answers 503 and says how many broadcasts went out.
func TestBroadcastHandlerPubSubFailure(t *testing.T) {
	fb := &fakeBroadcaster{failAt: 2}
	h := newBroadcastHandler(fb, defaultBroadcastMaxBody)
	req := httptest.NewRequest("POST", "/_broadcast", strings.NewReader(`[{"stream":"a","data":1},{"stream":"b","data":2},{"stream":"c","data":3}]`))
	req.Header.Set("Authorization", "Bearer "+testBroadcastSecret)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"broadcasts":1`) {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

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
