package channels_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/channels"
	"github.com/gorilla/websocket"
)

func newServer(t *testing.T) (*cable.Server, string) {
	t.Helper()
	srv := &cable.Server{
		CheckOrigin: func(*http.Request) bool { return true },
		Authenticator: cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			return cable.Identity{"current_user": r.URL.Query().Get("user")}, nil
		}),
	}
	srv.Handle("ChatChannel", func() cable.Channel { return &channels.Chat{Broadcaster: srv} })
	srv.Handle("BenchmarkChannel", func() cable.Channel { return &channels.Benchmark{Broadcaster: srv} })
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		hs.Close()
	})
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http")
}

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
	c := &client{t: t, ws: ws}
	c.expect(`{"type":"welcome"}`)
	return c
}

func (c *client) send(cmd, id, data string) {
	c.t.Helper()
	m := map[string]string{"command": cmd, "identifier": id}
	if data != "" {
		m["data"] = data
	}
	if err := c.ws.WriteJSON(m); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) expect(want string) {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", want, err)
	}
	if string(b) != want {
		c.t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func frame(id, msg string) string {
	b, _ := json.Marshal(id)
	return `{"identifier":` + string(b) + `,"message":` + msg + `}`
}

func confirm(id string) string {
	b, _ := json.Marshal(id)
	return `{"identifier":` + string(b) + `,"type":"confirm_subscription"}`
}

func reject(id string) string {
	b, _ := json.Marshal(id)
	return `{"identifier":` + string(b) + `,"type":"reject_subscription"}`
}

func TestChat(t *testing.T) {
	_, url := newServer(t)
	lobby := `{"channel":"ChatChannel","room":"lobby"}`
	anon1, anon2 := dial(t, url+"/cable"), dial(t, url+"/cable")
	alice := dial(t, url+"/cable?user=alice")
	other := dial(t, url+"/cable")
	for _, c := range []*client{anon1, anon2, alice} {
		c.send("subscribe", lobby, "")
		c.expect(confirm(lobby))
	}
	otherID := `{"channel":"ChatChannel","room":7}`
	other.send("subscribe", otherID, "")
	other.expect(confirm(otherID))

	// The user the client sends is used when the connection has no identifier,
	// passed through as JSON like Rails' data["user"].
	anon1.send("message", lobby, `{"user":5,"message":{"text":"<hi>"},"action":"speak"}`)
	want := frame(lobby, `{"user":5,"message":{"text":"\u003chi\u003e"}}`)
	for _, c := range []*client{anon1, anon2, alice} {
		c.expect(want)
	}
	// An identified connection speaks as itself, whatever it sends.
	alice.send("message", lobby, `{"user":"mallory","message":"hello","action":"speak"}`)
	want = frame(lobby, `{"user":"alice","message":"hello"}`)
	for _, c := range []*client{anon1, anon2, alice} {
		c.expect(want)
	}
	anon2.send("message", lobby, `{"action":"speak"}`)
	for _, c := range []*client{anon1, anon2, alice} {
		c.expect(frame(lobby, `{"user":null,"message":null}`))
	}
	// The other room heard nothing; a numeric room is streamed as chat_7.
	other.send("message", otherID, `{"user":"o","message":"in 7","action":"speak"}`)
	other.expect(frame(otherID, `{"user":"o","message":"in 7"}`))

	for _, id := range []string{`{"channel":"ChatChannel"}`, `{"channel":"ChatChannel","room":""}`, `{"channel":"ChatChannel","room":{}}`} {
		anon1.send("subscribe", id, "")
		anon1.expect(reject(id))
	}
}

func TestBenchmark(t *testing.T) {
	_, url := newServer(t)
	id := `{"channel":"BenchmarkChannel"}`
	a, b := dial(t, url+"/cable"), dial(t, url+"/cable")
	for _, c := range []*client{a, b} {
		c.send("subscribe", id, "")
		c.expect(confirm(id))
	}
	a.send("message", id, `{"action":"echo","payload":{"n":1,"big":12345678901234567890}}`)
	a.expect(frame(id, `{"action":"echo","payload":{"n":1,"big":12345678901234567890}}`))

	a.send("message", id, `{"action":"broadcast","payload":{"sendTime":1}}`)
	// The broadcast reaches every subscriber, the sender included, before
	// the sender's broadcastResult, with the action key kept in place.
	a.expect(frame(id, `{"action":"broadcast","payload":{"sendTime":1}}`))
	a.expect(frame(id, `{"action":"broadcastResult","payload":{"sendTime":1}}`))
	b.expect(frame(id, `{"action":"broadcast","payload":{"sendTime":1}}`))

	a.send("message", id, `{"payload":1,"action":"broadcast"}`)
	a.expect(frame(id, `{"payload":1,"action":"broadcast"}`))
	a.expect(frame(id, `{"payload":1,"action":"broadcastResult"}`))
	b.expect(frame(id, `{"payload":1,"action":"broadcast"}`))
}
