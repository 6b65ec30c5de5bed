package cable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

// logBuffer collects a server's logs for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testServer is a cable.Server with the protocol.md §9 test channels,
// behind httptest.
type testServer struct {
	*cable.Server
	HTTP *httptest.Server
	Logs *logBuffer
	URL  string // ws://127.0.0.1:port/cable
}

func newTestServer(t testing.TB, configure func(*cable.Server)) *testServer {
	t.Helper()
	logs := &logBuffer{}
	srv := &cable.Server{
		PingInterval: time.Hour, // tests that need pings set it
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	registerTestChannels(srv)
	if configure != nil {
		configure(srv)
	}
	hs := httptest.NewServer(srv)
	ts := &testServer{Server: srv, HTTP: hs, Logs: logs, URL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/cable"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return ts
}

type testClient struct {
	t      testing.TB
	ws     *websocket.Conn
	resp   *http.Response
	frames chan []byte
	quit   chan struct{} // closed by stopReading: stop delivering frames
	qonce  sync.Once
	done   chan struct{}
	err    error // read error, valid after done is closed
	syncN  int
}

func (ts *testServer) dial(t testing.TB, header http.Header) *testClient {
	t.Helper()
	c, err := ts.tryDial(t, header)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func (ts *testServer) tryDial(t testing.TB, header http.Header) (*testClient, error) {
	t.Helper()
	if header == nil {
		header = http.Header{}
	}
	if _, ok := header["Origin"]; !ok {
		header.Set("Origin", ts.HTTP.URL)
	}
	if _, ok := header["Sec-Websocket-Protocol"]; !ok {
		header.Set("Sec-Websocket-Protocol", "actioncable-v1-json, actioncable-unsupported")
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(ts.URL, header)
	if err != nil {
		return nil, fmt.Errorf("%w (response %v)", err, resp)
	}
	c := &testClient{t: t, ws: ws, resp: resp, frames: make(chan []byte, 1024), quit: make(chan struct{}), done: make(chan struct{})}
	go c.readLoop() // owner: the client; ends when the socket closes (Cleanup closes it)
	t.Cleanup(func() {
		c.stopReading()
		ws.Close()
		<-c.done
	})
	return c, nil
}

// stopReading makes the client stop reading its socket, like a client
// too slow to keep up.
func (c *testClient) stopReading() { c.qonce.Do(func() { close(c.quit) }) }

func (c *testClient) readLoop() {
	defer close(c.done)
	for {
		typ, b, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		if typ == websocket.TextMessage {
			select {
			case c.frames <- b:
			case <-c.quit:
				return
			}
		}
	}
}

func (c *testClient) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send %s: %v", frame, err)
	}
}

func (c *testClient) sendJSON(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(string(b))
}

// next returns the next frame, skipping pings unless wantPings.
func (c *testClient) next(timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case f := <-c.frames:
			return string(f), nil
		case <-c.done:
			select {
			case f := <-c.frames:
				return string(f), nil
			default:
			}
			return "", fmt.Errorf("closed: %w", c.err)
		case <-deadline:
			return "", errors.New("timeout")
		}
	}
}

func (c *testClient) expect(want string) {
	c.t.Helper()
	got, err := c.next(5 * time.Second)
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", want, err)
	}
	if got != want {
		c.t.Fatalf("frame = %s\nwant    %s", got, want)
	}
}

// expectNothing checks that no frame arrives, by a sync round trip: the
// server runs a connection's commands in order, so everything the
// commands before it caused has been queued before the sync confirmation.
func (c *testClient) expectNothing() {
	c.t.Helper()
	if frames := c.sync(); len(frames) > 0 {
		c.t.Fatalf("unexpected frames: %q", frames)
	}
}

// sync subscribes to SyncChannel with a fresh identifier and returns the
// frames received before its confirmation.
func (c *testClient) sync() []string {
	c.t.Helper()
	c.syncN++
	id := fmt.Sprintf(`{"channel":"SyncChannel","n":%d}`, c.syncN)
	c.sendJSON(map[string]string{"command": "subscribe", "identifier": id})
	confirm := fmt.Sprintf(`{"identifier":%s,"type":"confirm_subscription"}`, jsonString(id))
	var frames []string
	for {
		f, err := c.next(5 * time.Second)
		if err != nil {
			c.t.Fatalf("sync: %v (frames so far %q)", err, frames)
		}
		if f == confirm {
			return frames
		}
		frames = append(frames, f)
	}
}

// closed waits for the server to close the socket and returns the close
// error the client saw.
func (c *testClient) closed(timeout time.Duration) error {
	c.t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(timeout):
		c.t.Fatalf("socket still open after %v", timeout)
		return nil
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func subscribeFrame(id string) string {
	return fmt.Sprintf(`{"command":"subscribe","identifier":%s}`, jsonString(id))
}

func unsubscribeFrame(id string) string {
	return fmt.Sprintf(`{"command":"unsubscribe","identifier":%s}`, jsonString(id))
}

func messageFrame(id, data string) string {
	return fmt.Sprintf(`{"command":"message","identifier":%s,"data":%s}`, jsonString(id), jsonString(data))
}

func confirmFrame(id string) string {
	return fmt.Sprintf(`{"identifier":%s,"type":"confirm_subscription"}`, jsonString(id))
}

func dataFrame(id, msg string) string {
	return fmt.Sprintf(`{"identifier":%s,"message":%s}`, jsonString(id), msg)
}

func httpGet(t testing.TB, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// watchedPubSub is a MemoryPubSub that counts the live subscriptions of
// each stream, so that a test can wait for a connection's internal channel
// (subscribed asynchronously, as in Rails) before a remote disconnect.
type watchedPubSub struct {
	cable.MemoryPubSub
	mu   sync.Mutex
	subs map[string]int
}

func (w *watchedPubSub) Subscribe(ctx context.Context, stream string, deliver func([]byte)) (func(), error) {
	unsub, err := w.MemoryPubSub.Subscribe(ctx, stream, deliver)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	if w.subs == nil {
		w.subs = make(map[string]int)
	}
	w.subs[stream]++
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			unsub()
			w.mu.Lock()
			w.subs[stream]--
			w.mu.Unlock()
		})
	}, nil
}

// waitSubscribed waits until stream has at least n subscriptions.
func (w *watchedPubSub) waitSubscribed(t testing.TB, stream string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		w.mu.Lock()
		got := w.subs[stream]
		w.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d subscriptions after 5s; want %d", stream, got, n)
		}
	}
}

// waitFor polls cond every 10ms until it holds or timeout passes, and
// reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
