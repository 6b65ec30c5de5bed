package cable_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
)

// gatedPubSub blocks Subscribe to "room" until gate is closed or ctx ends,
// as redispubsub.PubSub does during an outage.
type gatedPubSub struct {
	cable.MemoryPubSub
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (g *gatedPubSub) Subscribe(ctx context.Context, stream string, deliver func([]byte)) (func(), error) {
	if stream == "room" {
		g.once.Do(func() { close(g.entered) })
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.MemoryPubSub.Subscribe(ctx, stream, deliver)
}

// The first subscriber of a stream leaving while the pub/sub is slow must
// not fail the others' subscriptions.
func TestFirstSubscriberLeavingFailsNobodyElse(t *testing.T) {
	ps := &gatedPubSub{gate: make(chan struct{}), entered: make(chan struct{})}
	ts := newTestServer(t, func(s *cable.Server) {
		s.PubSub = ps
		s.Handle("RoomChannel", func() cable.Channel {
			return cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error { return s.StreamFrom(ctx, "room") })
		})
	})
	id := `{"channel":"RoomChannel"}`
	a := ts.dial(t, nil)
	a.expect(`{"type":"welcome"}`)
	a.send(subscribeFrame(id))
	<-ps.entered
	b := ts.dial(t, nil)
	b.expect(`{"type":"welcome"}`)
	b.send(subscribeFrame(id))
	time.Sleep(100 * time.Millisecond) // b waits for the stream
	a.ws.Close()
	a.closed(2 * time.Second)
	time.Sleep(100 * time.Millisecond)
	close(ps.gate)
	b.expect(confirmFrame(id))
	if err := ts.Broadcast(context.Background(), "room", 1); err != nil {
		t.Fatal(err)
	}
	b.expect(dataFrame(id, "1"))
}

// A panicking tick is logged and the timer goes on, as each Rails tick is
// a job of its own.
func TestPanicInTickKeepsTimer(t *testing.T) {
	var ticks atomic.Int32
	ts := newTestServer(t, func(s *cable.Server) {
		s.Handle("PanickyTimerChannel", func() cable.Channel {
			return cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error {
				return s.Periodically(20*time.Millisecond, func(ctx context.Context) {
					if ticks.Add(1) == 1 {
						panic("first tick fails")
					}
				})
			})
		})
	})
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(subscribeFrame(`{"channel":"PanickyTimerChannel"}`))
	c.expect(confirmFrame(`{"channel":"PanickyTimerChannel"}`))
	deadline := time.Now().Add(5 * time.Second)
	for ticks.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ticks.Load(); n < 4 {
		t.Fatalf("%d ticks; the panic stopped the timer", n)
	}
}

// After the server sent disconnect, the client's late commands are not run.
func TestNoCommandsAfterDisconnect(t *testing.T) {
	var subscribed atomic.Int32
	ps := &watchedPubSub{}
	ts := newTestServer(t, func(s *cable.Server) {
		s.PubSub = ps
		s.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			return cable.Identity{"user": "7"}, nil
		})
		s.Handle("CountChannel", func() cable.Channel {
			return cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error { subscribed.Add(1); return nil })
		})
	})
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	ps.waitSubscribed(t, "action_cable/7", 1)
	if err := ts.Disconnect(context.Background(), cable.Identity{"user": "7"}, true); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"type":"disconnect","reason":"remote","reconnect":true}`)
	_ = c.ws.WriteMessage(1, []byte(subscribeFrame(`{"channel":"CountChannel"}`)))
	c.closed(3 * time.Second)
	if n := subscribed.Load(); n != 0 {
		t.Fatalf("Subscribed ran %d times after the disconnect", n)
	}
}

// Shutdown keeps its deadline while an Authenticator is still running: the
// Authenticator's context is cancelled.
func TestShutdownCancelsAuthentication(t *testing.T) {
	entered := make(chan struct{})
	ts := newTestServer(t, func(s *cable.Server) {
		s.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			close(entered)
			<-ctx.Done() // a session store that hangs until cancelled
			return nil, ctx.Err()
		})
	})
	go ts.tryDial(t, nil)
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := ts.Shutdown(ctx); err == nil {
		t.Error("Shutdown = nil; want the deadline error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v with a 200ms deadline", d)
	}
}

// A payload with invalid UTF-8 from the pub/sub (any publisher) is dropped
// and logged: forwarded in a text frame it would make every subscriber's
// client fail its connection (RFC 6455 §8.1). Rails' encode raises on it.
func TestInvalidUTF8BroadcastDropped(t *testing.T) {
	ps := &cable.MemoryPubSub{}
	ts := newTestServer(t, func(s *cable.Server) { s.PubSub = ps })
	id := `{"channel":"EchoChannel"}`
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(subscribeFrame(id))
	c.expect(confirmFrame(id))

	if err := ps.Publish(context.Background(), "echo", []byte("{\"body\":\"caf\xe9\"}")); err != nil {
		t.Fatal(err)
	}
	err := ts.Broadcast(context.Background(), "echo", json.RawMessage("\"caf\xe9\""))
	if !errors.Is(err, cable.ErrInvalidJSON) {
		t.Errorf("Broadcast(invalid UTF-8) = %v; want ErrInvalidJSON", err)
	}
	if err := ts.Broadcast(context.Background(), "echo", map[string]string{"body": "café"}); err != nil {
		t.Fatal(err)
	}
	c.expect(dataFrame(id, `{"body":"café"}`))
	c.expectNothing()
	if !strings.Contains(ts.Logs.String(), "dropping a broadcast that is not valid JSON in UTF-8") {
		t.Errorf("the dropped payload was not logged:\n%s", ts.Logs.String())
	}
}
