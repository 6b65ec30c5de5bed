package solidcable_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/solidcable"
	"github.com/gorilla/websocket"
)

// TestRemoteDisconnect: remote_connections.where(current_user:).disconnect
// in Rails writes {"type":"disconnect",...} to the internal channel
// "action_cable/<connection identifier>" (actioncable/lib/action_cable/
// remote_connections.rb); through Solid Cable's table it closes exactly
// that user's sockets on a gocable node.
func TestRemoteDisconnect(t *testing.T) {
	tdb := newTestDB(t, solidcable.SQLite)
	db := tdb.open(t)
	rails := tdb.open(t)
	ps := newPubSub(t, db, tdb.dialect, solidcable.Config{ChannelPrefix: new("myapp_production")})
	srv := &cable.Server{
		PubSub: ps, PingInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Authenticator: cable.AuthenticatorFunc(func(_ context.Context, r *http.Request) (cable.Identity, error) {
			return cable.Identity{"current_user": r.URL.Query().Get("user")}, nil
		}),
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { // before the PubSub is closed
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	dial := func(user string) *websocket.Conn {
		h := http.Header{}
		h.Set("Origin", hs.URL)
		h.Set("Sec-Websocket-Protocol", "actioncable-v1-json")
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/?user="+user, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"type":"welcome"}` {
			t.Fatalf("welcome: %s %v", msg, err)
		}
		return ws
	}
	alice, bob := dial("alice"), dial("bob")
	channel := "myapp_production:action_cable/" + cable.Identity{"current_user": "alice"}.ConnectionIdentifier()
	// Let the connections' internal streams be subscribed (a row written
	// before that would be, rightly, not delivered).
	time.Sleep(200 * time.Millisecond)
	gemInsert(t, rails, tdb.dialect, channel, `{"type":"disconnect","reconnect":true}`, time.Now())

	alice.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The socket gets a disconnect frame, then ends.
	var frames []string
	for {
		_, msg, err := alice.ReadMessage()
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatalf("alice's socket is still open after the remote disconnect (frames %q)", frames)
			}
			break
		}
		frames = append(frames, string(msg))
	}
	if len(frames) == 0 || !strings.Contains(frames[len(frames)-1], `"type":"disconnect"`) {
		t.Errorf("alice's last frames %q; want a disconnect", frames)
	}
	// bob stays connected: a ping-less read times out rather than ending.
	bob.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, msg, err := bob.ReadMessage(); err == nil {
		t.Errorf("bob got %s; want nothing", msg)
	} else if ne, ok := err.(interface{ Timeout() bool }); !ok || !ne.Timeout() {
		t.Errorf("bob's socket ended: %v", err)
	}
}
