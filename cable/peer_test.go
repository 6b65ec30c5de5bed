package cable_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

// peerChannel counts its Unsubscribed calls.
type peerChannel struct{ unsubscribed *atomic.Int64 }

func (peerChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	return s.StreamFrom(ctx, "peer")
}
func (c peerChannel) Unsubscribed(context.Context, *cable.Subscription) { c.unsubscribed.Add(1) }
func (peerChannel) Perform(context.Context, *cable.Subscription, string, json.RawMessage) error {
	return nil
}

// A peer that vanished (it keeps its TCP connection but never reads again,
// so it never answers a WebSocket ping) is closed within PeerTimeout, and
// its Unsubscribed and Disconnected hooks run; a client that only answers
// pings, as a browser does, stays.
func TestDeadPeer(t *testing.T) {
	var unsubscribed, disconnected atomic.Int64
	const timeout = 500 * time.Millisecond
	ts := newTestServer(t, func(s *cable.Server) {
		s.PingInterval = 50 * time.Millisecond
		s.PeerPingInterval = 100 * time.Millisecond
		s.PeerTimeout = timeout
		s.Handle("PeerChannel", func() cable.Channel { return peerChannel{&unsubscribed} })
		s.Disconnected = func(context.Context, *cable.Conn) { disconnected.Add(1) }
	})
	const id = `{"channel":"PeerChannel"}`
	live := ts.dial(t, nil) // reads all the time, so gorilla answers pings
	live.expect(`{"type":"welcome"}`)
	live.send(subscribeFrame(id))
	if !waitFor(5*time.Second, func() bool { return ts.SubscriberCount("peer") == 1 }) {
		t.Fatal("the live client did not subscribe")
	}

	h := http.Header{"Origin": {ts.HTTP.URL}, "Sec-Websocket-Protocol": {"actioncable-v1-json"}}
	dead, _, err := websocket.DefaultDialer.Dial(ts.URL, h)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	if err := dead.WriteMessage(websocket.TextMessage, []byte(subscribeFrame(id))); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return ts.SubscriberCount("peer") == 2 }) {
		t.Fatal("the dead client did not subscribe")
	}
	start := time.Now() // the dead client's last frame was sent before this
	if !waitFor(5*time.Second, func() bool { return ts.Stats().Connections == 1 }) {
		t.Fatalf("a peer that answers nothing is still connected after 5s; PeerTimeout %v", timeout)
	}
	took := time.Since(start)
	t.Logf("a dead peer was closed %v after its last frame (PeerTimeout %v)", took.Round(time.Millisecond), timeout)
	if took > timeout+time.Second {
		t.Errorf("closed after %v; want within %v", took, timeout+time.Second)
	}
	if !waitFor(time.Second, func() bool { return unsubscribed.Load() == 1 && disconnected.Load() == 1 }) {
		t.Errorf("hooks ran: %d Unsubscribed, %d Disconnected; want 1 and 1", unsubscribed.Load(), disconnected.Load())
	}
	if got := ts.Stats().LimitHits.PeerTimeout; got != 1 {
		t.Errorf("LimitHits.PeerTimeout = %d; want 1", got)
	}
	if !strings.Contains(ts.Logs.String(), "within the peer timeout") {
		t.Errorf("no warn line for the dead peer:\n%.2000s", ts.Logs)
	}

	// The live client sent nothing since its subscribe, 4 timeouts ago;
	// its pongs keep it.
	time.Sleep(4 * timeout)
	if got := ts.Stats().Connections; got != 1 {
		t.Errorf("%d connections; the live client, which answers pings, was closed", got)
	}
	if n := ts.SubscriberCount("peer"); n != 1 {
		t.Errorf("SubscriberCount = %d; want 1", n)
	}
}
