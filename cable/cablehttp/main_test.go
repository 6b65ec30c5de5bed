package cablehttp_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/internal/leaktest"
	"github.com/gorilla/websocket"
)

// TestMain fails the run if goroutines outlive the tests: every server a
// test starts must be shut down (as cable's own TestMain checks).
func TestMain(m *testing.M) { leaktest.Main(m, nil) }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// echoID identifies a subscription to the test server's EchoChannel,
// which streams "echo" and knows no action.
const echoID = `{"channel":"EchoChannel"}`

// startServer serves a real cable.Server at /cable until the test ends;
// a connection whose URL has ?reject=1 is refused by its authenticator.
func startServer(t *testing.T) (*cable.Server, string) {
	t.Helper()
	srv := &cable.Server{
		CheckOrigin: func(*http.Request) bool { return true },
		Logger:      discardLogger(),
		Authenticator: cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			if r.URL.Query().Get("reject") == "1" {
				return nil, cable.ErrUnauthorized
			}
			return nil, nil
		}),
	}
	srv.Handle("EchoChannel", func() cable.Channel {
		return cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error {
			return s.StreamFrom(ctx, "echo")
		})
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http")
}

// client is a test WebSocket client of a real server.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return &client{t, ws}
}

func (c *client) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads frames, skipping pings, until one contains want.
func (c *client) expect(want string) {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", want, err)
		}
		if strings.Contains(string(b), want) {
			return
		}
	}
}

// subscribe reads the welcome and subscribes to EchoChannel.
func (c *client) subscribe() {
	c.t.Helper()
	c.expect(`{"type":"welcome"}`)
	c.send(`{"command":"subscribe","identifier":` + quote(echoID) + `}`)
	c.expect(`"type":"confirm_subscription"`)
}

// quote is s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
