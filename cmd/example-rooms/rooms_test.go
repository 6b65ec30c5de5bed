package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

// client is one user's connection to the example's channels.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

// connect logs in as user through an Authenticator that stands for
// --identify current_user=encrypted:user_id@User --gid-app myapp.
func connect(t *testing.T, url, user string) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url+"?user="+user, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &client{t, ws}
	c.next() // welcome
	return c
}

func (c *client) send(cmd, room string, data any) {
	c.t.Helper()
	id, _ := json.Marshal(map[string]string{"channel": "RoomChannel", "room": room})
	m := map[string]string{"command": cmd, "identifier": string(id)}
	if data != nil {
		b, _ := json.Marshal(data)
		m["data"] = string(b)
	}
	if err := c.ws.WriteJSON(m); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame that is not a ping.
func (c *client) next() map[string]any {
	c.t.Helper()
	for {
		c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f map[string]any
		if err := c.ws.ReadJSON(&f); err != nil {
			c.t.Fatal(err)
		}
		if f["type"] != "ping" {
			return f
		}
	}
}

// message returns the next frame's message, failing on anything else.
func (c *client) message() map[string]any {
	c.t.Helper()
	f := c.next()
	m, ok := f["message"].(map[string]any)
	if !ok {
		c.t.Fatalf("got %v; want a message", f)
	}
	return m
}

func TestRoomChannel(t *testing.T) {
	db := openDB()
	srv := &cable.Server{
		CheckOrigin: func(*http.Request) bool { return true },
		Authenticator: cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			return cable.Identity{"current_user": cable.GlobalIDParam("myapp", "User", r.URL.Query().Get("user"))}, nil
		}),
	}
	srv.Handle("RoomChannel", func() cable.Channel { return &RoomChannel{db: db} })
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(ts.URL, "http")

	alice, bob := connect(t, url, "42"), connect(t, url, "7")
	for _, tt := range []struct {
		c        *client
		room     string
		wantType string
	}{
		{alice, "1", "confirm_subscription"},
		{bob, "1", "confirm_subscription"},
		{bob, "2", "reject_subscription"}, // not a member
		{bob, "3", "reject_subscription"}, // no such room
		{bob, "", "reject_subscription"},  // no room
	} {
		tt.c.send("subscribe", tt.room, nil)
		if f := tt.c.next(); f["type"] != tt.wantType {
			t.Errorf("subscribe to room %q: %v; want %s", tt.room, f, tt.wantType)
		}
	}

	alice.send("message", "1", map[string]any{"action": "speak", "body": "hi"})
	m := alice.message()
	if m["body"] != "hi" || m["user_id"] != 42.0 {
		t.Fatalf("alice got %v; want her message, by user 42", m)
	}
	if got := bob.message(); got["id"] != m["id"] {
		t.Errorf("bob got %v; want %v", got, m)
	}

	// Only the author deletes: bob is refused, and alone to know it.
	bob.send("message", "1", map[string]any{"action": "delete", "id": m["id"]})
	if got := bob.message(); got["error"] != "not_yours" {
		t.Errorf("bob deleting alice's message: %v; want not_yours", got)
	}
	alice.send("message", "1", map[string]any{"action": "delete", "id": m["id"]})
	for _, c := range []*client{alice, bob} {
		if got := c.message(); got["deleted"] != m["id"] {
			t.Errorf("after alice's delete: %v; want deleted %v", got, m["id"])
		}
	}
}
