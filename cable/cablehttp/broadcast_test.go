package cablehttp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/cablehttp"
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

func newBroadcastHandler(b cablehttp.Broadcaster, maxBody int64) cablehttp.Broadcast {
	return cablehttp.Broadcast{
		Server:  b,
		Token:   testBroadcastSecret,
		MaxBody: maxBody,
		Logger:  discardLogger(),
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
				max = cablehttp.DefaultMaxBody
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
	h := newBroadcastHandler(fb, cablehttp.DefaultMaxBody)
	req := httptest.NewRequest("POST", "/_broadcast", strings.NewReader(`[{"stream":"a","data":1},{"stream":"b","data":2},{"stream":"c","data":3}]`))
	req.Header.Set("Authorization", "Bearer "+testBroadcastSecret)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"broadcasts":1`) {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

// post serves one POST with the given Authorization header ("" for none).
func post(h http.Handler, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/_broadcast", strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Without a Token the endpoint is closed to everyone, even to a request
// whose bearer token is empty too.
func TestBroadcastNoToken(t *testing.T) {
	fb := &fakeBroadcaster{}
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer  ", "bearer " + testBroadcastSecret} {
		rec := post(cablehttp.Broadcast{Server: fb, Logger: discardLogger()}, auth, `{"stream":"a","data":1}`)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d; want 401", auth, rec.Code)
		}
	}
	if len(fb.sent) != 0 {
		t.Errorf("sent %q; want nothing", fb.sent)
	}
}

// Without a Server a valid request fails as a pub/sub failure would.
func TestBroadcastNoServer(t *testing.T) {
	rec := post(cablehttp.Broadcast{Token: testBroadcastSecret, Logger: discardLogger()}, "Bearer "+testBroadcastSecret, `{"stream":"a","data":1}`)
	var got struct {
		Error      string `json:"error"`
		Broadcasts *int   `json:"broadcasts"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if rec.Code != http.StatusServiceUnavailable || got.Broadcasts == nil || *got.Broadcasts != 0 || !strings.HasPrefix(got.Error, "broadcast failed: cablehttp: ") {
		t.Errorf("got %d %s; want 503 with broadcasts 0 and a cablehttp error", rec.Code, rec.Body)
	}
}

// A MaxBody of zero or less means DefaultMaxBody.
func TestBroadcastDefaultMaxBody(t *testing.T) {
	// {"stream":"a","data":"xxx…"} of exactly n bytes.
	body := func(n int) string {
		const frame = `{"stream":"a","data":""}`
		return frame[:len(frame)-2] + strings.Repeat("x", n-len(frame)) + `"}`
	}
	for _, maxBody := range []int64{0, -1} {
		for _, tc := range []struct {
			size int
			want int
		}{
			{cablehttp.DefaultMaxBody, http.StatusAccepted},
			{cablehttp.DefaultMaxBody + 1, http.StatusRequestEntityTooLarge},
		} {
			b := body(tc.size)
			if len(b) != tc.size {
				t.Fatalf("body of %d bytes; want %d", len(b), tc.size)
			}
			h := cablehttp.Broadcast{Server: &fakeBroadcaster{}, Token: testBroadcastSecret, MaxBody: maxBody, Logger: discardLogger()}
			if rec := post(h, "Bearer "+testBroadcastSecret, b); rec.Code != tc.want {
				t.Errorf("MaxBody %d, body of %d bytes: status %d; want %d", maxBody, tc.size, rec.Code, tc.want)
			}
		}
	}
}

// The endpoint broadcasts through a real server to a real subscriber, the
// payload exactly as posted.
func TestBroadcastToServer(t *testing.T) {
	srv, url := startServer(t)
	c := dial(t, url)
	c.subscribe()
	h := cablehttp.Broadcast{Server: srv, Token: testBroadcastSecret, Logger: discardLogger()}
	rec := post(h, "Bearer "+testBroadcastSecret, `[{"stream":"echo","data":{"n":12345678901234567890}},{"stream":"elsewhere","data":1},{"stream":"echo","data":"<p>"}]`)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	for _, msg := range []string{`{"n":12345678901234567890}`, `"\u003cp\u003e"`} {
		c.expect(`{"identifier":` + quote(echoID) + `,"message":` + msg + `}`)
	}
}

// A body trickled slower than ReadTimeout gets 408 and its connection is
// closed; before, the handler read it for as long as the client kept it
// coming.
func TestBroadcastBodyReadTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	token := strings.Repeat("t", 32)
	hs := httptest.NewServer(cablehttp.Broadcast{Server: &fakeBroadcaster{}, Token: token, ReadTimeout: timeout})
	defer hs.Close()
	c, err := net.Dial("tcp", strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{", token)
	done := make(chan struct{})
	go func() { // owner: the test; ends when the socket closes
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
			if time.Since(start) > 5*time.Second {
				c.Close()
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	resp.Body.Close()
	if d := time.Since(start); resp.StatusCode != http.StatusRequestTimeout || d < timeout || d > timeout+2*time.Second {
		t.Errorf("%d after %v; want 408 after about %v", resp.StatusCode, d, timeout)
	}
	c.Close()
	<-done
}
