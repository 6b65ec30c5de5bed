package channels

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

// demoRoomServer serves DemoRoom on /cable, registered as gocable -demo
// registers it.
func demoRoomServer(t *testing.T) (*cable.Server, *httptest.Server) {
	t.Helper()
	srv := &cable.Server{Logger: slog.New(slog.DiscardHandler)}
	srv.Handle(demoRoomChannel, func() cable.Channel { return &DemoRoom{} })
	mux := http.NewServeMux()
	mux.Handle("/cable", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		hs.Close()
	})
	return srv, hs
}

// roomClient is a raw ActionCable client for the room channel.
type roomClient struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

func dialRoom(t *testing.T, hs *httptest.Server, room, user string) *roomClient {
	t.Helper()
	h := http.Header{"Origin": {hs.URL}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/cable", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	id, _ := json.Marshal(map[string]string{"channel": demoRoomChannel, "room": room, "user": user})
	c := &roomClient{t: t, ws: ws, id: string(id)}
	c.expectType("welcome")
	c.send("subscribe", "")
	return c
}

func (c *roomClient) send(command, data string) {
	c.t.Helper()
	m := map[string]string{"command": command, "identifier": c.id}
	if data != "" {
		m["data"] = data
	}
	if err := c.ws.WriteJSON(m); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame that is not a ping.
func (c *roomClient) next() map[string]json.RawMessage {
	c.t.Helper()
	for {
		c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatal(err)
		}
		var f map[string]json.RawMessage
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Fatal(err)
		}
		if string(f["type"]) != `"ping"` {
			return f
		}
	}
}

func (c *roomClient) expectType(typ string) {
	c.t.Helper()
	if f := c.next(); string(f["type"]) != `"`+typ+`"` {
		c.t.Fatalf("got %v; want type %s", f, typ)
	}
}

// expectMessages reads frames until it has seen every broadcast in want,
// in order; confirmations in between are skipped.
func (c *roomClient) expectMessages(want ...string) {
	c.t.Helper()
	for _, w := range want {
		for {
			f := c.next()
			if _, ok := f["message"]; !ok {
				continue
			}
			if string(f["message"]) != w {
				c.t.Fatalf("got %s; want %s", f["message"], w)
			}
			break
		}
	}
}

func TestDemoRoomChannel(t *testing.T) {
	srv, hs := demoRoomServer(t)

	alice := dialRoom(t, hs, "lobby", " alice ")
	alice.expectMessages(`{"type":"join","user":"alice","online":1}`)
	bob := dialRoom(t, hs, "lobby", "bob")
	bob.expectMessages(`{"type":"join","user":"bob","online":2}`)
	alice.expectMessages(`{"type":"join","user":"bob","online":2}`)
	other := dialRoom(t, hs, "other", "carol")
	other.expectMessages(`{"type":"join","user":"carol","online":1}`)

	bob.send("message", `{"action":"speak","message":"hi <alice> & all"}`)
	want := `{"type":"message","user":"bob","message":"hi \u003calice\u003e \u0026 all"}`
	alice.expectMessages(want)
	bob.expectMessages(want)
	// Invalid messages are dropped; the next one arrives.
	bob.send("message", `{"action":"speak","message":"   "}`)
	bob.send("message", `{"action":"speak","message":"`+strings.Repeat("x", maxMessageRunes+1)+`"}`)
	bob.send("message", `{"action":"shout","message":"x"}`)
	alice.send("message", `{"action":"speak","message":"hello bob"}`)
	bob.expectMessages(`{"type":"message","user":"alice","message":"hello bob"}`)
	alice.expectMessages(`{"type":"message","user":"alice","message":"hello bob"}`)

	// Closing bob's socket announces the leave with the new count.
	bob.ws.Close()
	alice.expectMessages(`{"type":"leave","user":"bob","online":1}`)
	if n := srv.SubscriberCount("room_lobby"); n != 1 {
		t.Errorf("SubscriberCount = %d; want 1", n)
	}
	// An explicit unsubscribe too.
	dave := dialRoom(t, hs, "lobby", "dave")
	dave.expectMessages(`{"type":"join","user":"dave","online":2}`)
	alice.expectMessages(`{"type":"join","user":"dave","online":2}`)
	dave.send("unsubscribe", "")
	alice.expectMessages(`{"type":"leave","user":"dave","online":1}`)

	// carol's room heard none of it.
	other.send("message", `{"action":"speak","message":"anyone?"}`)
	other.expectMessages(`{"type":"message","user":"carol","message":"anyone?"}`)
}

func TestDemoRoomChannelRejects(t *testing.T) {
	_, hs := demoRoomServer(t)
	watcher := dialRoom(t, hs, "lobby", "watcher")
	watcher.expectMessages(`{"type":"join","user":"watcher","online":1}`)
	for _, tc := range []struct{ room, user string }{
		{"lobby", ""}, {"lobby", "   "}, {"lobby", strings.Repeat("u", maxUserRunes+1)}, {"lobby", "a\x00b"},
		{"", "x"}, {"bad room", "x"}, {"..", "x"},
	} {
		c := dialRoom(t, hs, tc.room, tc.user)
		c.expectType("reject_subscription")
	}
	// No join or leave was announced for them.
	watcher.send("message", `{"action":"speak","message":"still alone"}`)
	watcher.expectMessages(`{"type":"message","user":"watcher","message":"still alone"}`)
}

// The params are read as Rails' params[:room] reads them: the key is
// exact, and a value is taken as Ruby's to_s gives it.
func TestDemoRoomParamsAsRails(t *testing.T) {
	_, hs := demoRoomServer(t)
	for _, tc := range []struct {
		id   string
		want string // the first frame after welcome
	}{
		{`{"channel":"DemoRoomChannel","Room":"lobby","user":"x"}`, "reject_subscription"},
		{`{"channel":"DemoRoomChannel","room":"lobby","User":"x"}`, "reject_subscription"},
		{`{"channel":"DemoRoomChannel","room":"lobby","user":"x","room":"a b"}`, "reject_subscription"},
		{`{"channel":"DemoRoomChannel","room":7,"user":42}`, `{"type":"join","user":"42","online":1}`},
	} {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/cable", http.Header{"Origin": {hs.URL}})
		if err != nil {
			t.Fatal(err)
		}
		c := &roomClient{t: t, ws: ws, id: tc.id}
		c.expectType("welcome")
		c.send("subscribe", "")
		f := c.next()
		got := string(f["message"])
		if typ, ok := f["type"]; ok {
			got = strings.Trim(string(typ), `"`)
		}
		if got != tc.want {
			t.Errorf("%s: got %s; want %s", tc.id, got, tc.want)
		}
		ws.Close()
	}
}
