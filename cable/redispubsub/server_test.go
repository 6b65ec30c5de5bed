package redispubsub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/redispubsub"
	"github.com/gorilla/websocket"
)

// These tests run a cable.Server on a PubSub, with real WebSocket clients,
// for what only shows through the server.

// TestBroadcastExceptThroughRedis: BroadcastExcept skips the sender when the
// message comes back from Redis, and only for that one message (moved here
// from cable's TestBroadcastExcept, which keeps the in-memory case).
func TestBroadcastExceptThroughRedis(t *testing.T) {
	url := startRedis(t).URL()
	ps, _ := newPubSub(t, url, redispubsub.Config{})
	ts := newCableServer(t, ps)
	a, b := ts.dial(t), ts.dial(t)
	for _, c := range []*wsClient{a, b} {
		c.expect(`{"type":"welcome"}`)
		c.send(subscribeFrame(echoID))
		c.expect(confirmFrame(echoID))
	}
	// A second subscription of a to the stream is skipped too.
	id2 := `{"channel":"EchoChannel","second":true}`
	a.send(subscribeFrame(id2))
	a.expect(confirmFrame(id2))
	if n := ts.srv.SubscriberCount("echo"); n != 2 {
		t.Errorf("SubscriberCount = %d; want 2 connections", n)
	}

	a.send(messageFrame(echoID, `{"action":"broadcast_others","n":1}`))
	b.expect(dataFrame(echoID, `{"action":"broadcast_others","n":1}`))
	a.expectNothing()

	// The same bytes broadcast normally reach everyone.
	b.send(messageFrame(echoID, `{"action":"broadcast","stream":"echo","message":{"action":"broadcast_others","n":1}}`))
	b.expect(dataFrame(echoID, `{"action":"broadcast_others","n":1}`))
	a.expect(dataFrame(echoID, `{"action":"broadcast_others","n":1}`))
	a.expect(dataFrame(id2, `{"action":"broadcast_others","n":1}`))

	b.send(messageFrame(echoID, `{"action":"broadcast_others","n":2}`))
	a.expect(dataFrame(echoID, `{"action":"broadcast_others","n":2}`))
	a.expect(dataFrame(id2, `{"action":"broadcast_others","n":2}`))
	b.expectNothing()
}

const echoID = `{"channel":"EchoChannel"}`

// echoChannel streams "echo"; its actions broadcast (to any stream) and
// broadcast_others (to "echo", skipping the sender's connection).
type echoChannel struct{ srv *cable.Server }

var _ cable.Channel = (*echoChannel)(nil)

func (c *echoChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	return s.StreamFrom(ctx, "echo")
}

func (c *echoChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}

func (c *echoChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	switch action {
	case "broadcast":
		var d struct {
			Stream  string          `json:"stream"`
			Message json.RawMessage `json:"message"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		return c.srv.Broadcast(ctx, d.Stream, d.Message)
	case "broadcast_others":
		return c.srv.BroadcastExcept(ctx, "echo", data, s.Conn())
	}
	return cable.ErrUnknownAction
}

// cableServer is a cable.Server with EchoChannel and SyncChannel behind
// httptest, shut down when the test ends.
type cableServer struct {
	srv  *cable.Server
	http *httptest.Server
}

func newCableServer(t testing.TB, ps cable.PubSub) *cableServer {
	t.Helper()
	srv := &cable.Server{
		PubSub:       ps,
		PingInterval: time.Hour,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	srv.Handle("EchoChannel", func() cable.Channel { return &echoChannel{srv: srv} })
	srv.Handle("SyncChannel", func() cable.Channel {
		return cable.ChannelFunc(func(context.Context, *cable.Subscription) error { return nil })
	})
	hs := httptest.NewServer(srv)
	// Registered after newPubSub's Cleanup, so it runs before the PubSub
	// is closed.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return &cableServer{srv: srv, http: hs}
}

// wsClient is an ActionCable client whose frames a goroutine reads into
// frames.
type wsClient struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan string
	done   chan struct{} // closed when the reader ends
	syncN  int
}

func (s *cableServer) dial(t testing.TB) *wsClient {
	t.Helper()
	h := http.Header{}
	h.Set("Origin", s.http.URL)
	h.Set("Sec-Websocket-Protocol", "actioncable-v1-json")
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(s.http.URL, "http"), h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &wsClient{t: t, ws: ws, frames: make(chan string, 1024), done: make(chan struct{})}
	go c.read() // owner: the client; ends when the socket closes (Cleanup closes it)
	t.Cleanup(func() {
		_ = ws.Close()
		<-c.done
	})
	return c
}

func (c *wsClient) read() {
	defer close(c.done)
	for {
		typ, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.TextMessage {
			select {
			case c.frames <- string(b):
			default: // the test stopped reading; drop
			}
		}
	}
}

func (c *wsClient) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send %s: %v", frame, err)
	}
}

func (c *wsClient) next(timeout time.Duration) (string, error) {
	select {
	case f := <-c.frames:
		return f, nil
	case <-c.done:
		select {
		case f := <-c.frames:
			return f, nil
		default:
		}
		return "", errors.New("socket closed")
	case <-time.After(timeout):
		return "", errors.New("timeout")
	}
}

func (c *wsClient) expect(want string) {
	c.t.Helper()
	got, err := c.next(5 * time.Second)
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", want, err)
	}
	if got != want {
		c.t.Fatalf("frame = %s\nwant    %s", got, want)
	}
}

// expectNothing checks that no frame arrives, by a round trip: the server
// runs a connection's commands in order, so all that the commands before a
// subscribe to SyncChannel caused is queued before its confirmation.
// Broadcasts come back through Redis, so the round trip alone proves
// nothing for them: the callers first wait for another client to receive
// the same broadcast.
func (c *wsClient) expectNothing() {
	c.t.Helper()
	c.syncN++
	id := fmt.Sprintf(`{"channel":"SyncChannel","n":%d}`, c.syncN)
	c.send(subscribeFrame(id))
	var frames []string
	for {
		f, err := c.next(5 * time.Second)
		if err != nil {
			c.t.Fatalf("sync: %v (frames so far %q)", err, frames)
		}
		if f == confirmFrame(id) {
			break
		}
		frames = append(frames, f)
	}
	if len(frames) > 0 {
		c.t.Fatalf("unexpected frames: %q", frames)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func subscribeFrame(id string) string {
	return fmt.Sprintf(`{"command":"subscribe","identifier":%s}`, jsonString(id))
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
