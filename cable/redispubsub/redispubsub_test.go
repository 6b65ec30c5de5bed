package redispubsub_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/redispubsub"
	"github.com/redis/go-redis/v9"
)

// newPubSub returns a PubSub on a new client for url, both closed
// when the test ends, and that client.
func newPubSub(t testing.TB, url string, cfg redispubsub.Config) (*redispubsub.PubSub, *redis.Client) {
	t.Helper()
	c := newRedisClient(t, url)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := redispubsub.New(c, cfg)
	t.Cleanup(func() { _ = r.Close() })
	return r, c
}

// sink collects delivered payloads.
type sink chan []byte

func newSink() sink { return make(sink, 10000) }

// deliver copies payload into the sink; it never blocks (a full sink fails
// the receiving test by missing messages).
func (s sink) deliver(payload []byte) {
	select {
	case s <- bytes.Clone(payload):
	default:
	}
}

// next returns the next payload, or fails the test after timeout.
func (s sink) next(t testing.TB, timeout time.Duration) []byte {
	t.Helper()
	select {
	case p := <-s:
		return p
	case <-time.After(timeout):
		t.Fatalf("no message within %v", timeout)
		return nil
	}
}

// none fails the test if a payload arrives within d.
func (s sink) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case p := <-s:
		t.Fatalf("unexpected message %q", p)
	case <-time.After(d):
	}
}

func subscribe(t testing.TB, r *redispubsub.PubSub, stream string, deliver func([]byte)) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unsub, err := r.Subscribe(ctx, stream, deliver)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", stream, err)
	}
	return unsub
}

func TestRedisChannelNames(t *testing.T) {
	url := redisURL(t)
	base := uniquePrefix(t)
	tests := []struct {
		name   string
		prefix *string
		stream string
		want   string
	}{
		{"no prefix", nil, base + "chat_1", base + "chat_1"},
		{"prefix", new(base + "_production"), "chat_1", base + "_production:chat_1"},
		{"empty prefix is kept", new(""), base + "chat_1", ":" + base + "chat_1"},
		{"internal channel", new(base), "action_cable/Z2lkOi8vbXlhcHAvVXNlci83:acme", base + ":action_cable/Z2lkOi8vbXlhcHAvVXNlci83:acme"},
		{"prefix with colons", new(base + ":a:b"), "x", base + ":a:b:x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, c := newPubSub(t, url, redispubsub.Config{ChannelPrefix: tt.prefix})
			if got := r.Channel(tt.stream); got != tt.want {
				t.Errorf("Channel(%q) = %q; want %q", tt.stream, got, tt.want)
			}
			subscribe(t, r, tt.stream, func([]byte) {})
			if n := numSub(t, c, tt.want); n != 1 {
				t.Errorf("PUBSUB NUMSUB %q = %d after Subscribe(%q); want 1", tt.want, n, tt.stream)
			}
			// Publish goes to the same channel.
			raw := c.Subscribe(context.Background(), tt.want)
			defer raw.Close()
			if _, err := raw.Receive(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := r.Publish(context.Background(), tt.stream, []byte(`1`)); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			m, err := raw.ReceiveMessage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if m.Channel != tt.want {
				t.Errorf("Publish(%q) went to %q; want %q", tt.stream, m.Channel, tt.want)
			}
		})
	}
}

func TestRedisPublishIsVerbatim(t *testing.T) {
	url := redisURL(t)
	prefix := uniquePrefix(t)
	r, c := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix})
	s := newSink()
	subscribe(t, r, "echo", s.deliver)

	// A subscriber that is not a PubSub, as redis-cli SUBSCRIBE would be.
	raw := c.Subscribe(context.Background(), prefix+":echo")
	defer raw.Close()
	if _, err := raw.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}

	payloads := [][]byte{
		[]byte(`"hi\u003c\u003e"`),                              // broadcast("echo", "hi<>") in Rails
		[]byte(`{"a":1,"b":[true,null]}`),                       // broadcast("echo", {a: 1, b: [true, nil]})
		[]byte(`{"type":"disconnect"}`),                         // remote_connections ... disconnect, Rails 6.1
		[]byte(`{"id":12345678901234567890}`),                   // beyond float64
		[]byte("{\"s\":\"caf\u00e9 \u2028 \xf0\x9f\x98\x80\"}"), // UTF-8 as is
		[]byte(`{ "spaces" :  true }`),                          // not normalised
		bytes.Repeat([]byte("x"), 1<<20),                        // 1 MiB; not JSON, still verbatim
		{},                                                      // empty
	}
	for _, p := range payloads {
		if err := r.Publish(context.Background(), "echo", p); err != nil {
			t.Fatalf("Publish(%.40q): %v", p, err)
		}
	}
	for i, want := range payloads {
		m, err := raw.ReceiveMessage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if m.Payload != string(want) {
			t.Errorf("payload %d on the wire = %.60q; want %.60q", i, m.Payload, want)
		}
		if got := s.next(t, 5*time.Second); !bytes.Equal(got, want) {
			t.Errorf("payload %d delivered = %.60q; want %.60q", i, got, want)
		}
	}

	// And a foreign publisher's bytes reach deliver unchanged.
	foreign := `{"z":1, "a" : 2}`
	if err := c.Publish(context.Background(), prefix+":echo", foreign).Err(); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t, 5*time.Second); string(got) != foreign {
		t.Errorf("foreign payload delivered = %q; want %q", got, foreign)
	}
}

func TestRedisSubscribeIsRefcounted(t *testing.T) {
	url := redisURL(t)
	prefix := uniquePrefix(t)
	r, c := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix})
	channel := prefix + ":room"

	a, b := newSink(), newSink()
	unsubA := subscribe(t, r, "room", a.deliver)
	unsubB := subscribe(t, r, "room", b.deliver)
	subscribe(t, r, "other", func([]byte) {})
	if n := numSub(t, c, channel); n != 1 {
		t.Fatalf("PUBSUB NUMSUB = %d with two local subscribers; want 1 (one connection per process)", n)
	}
	clients, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Each CLIENT LIST line has sub=<channels> for its connection.
	var subscribers int
	for _, line := range strings.Split(clients, "\n") {
		if strings.Contains(line, " sub=2 ") {
			subscribers++
		}
	}
	if subscribers != 1 {
		t.Errorf("%d connections subscribe to 2 channels; want 1 (one subscriber connection)\n%s", subscribers, clients)
	}

	if err := r.Publish(context.Background(), "room", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	a.next(t, 5*time.Second)
	b.next(t, 5*time.Second)

	unsubA()
	unsubA() // idempotent
	if n := numSub(t, c, channel); n != 1 {
		t.Fatalf("PUBSUB NUMSUB = %d with one local subscriber left; want 1", n)
	}
	if err := r.Publish(context.Background(), "room", []byte(`2`)); err != nil {
		t.Fatal(err)
	}
	if got := b.next(t, 5*time.Second); string(got) != "2" {
		t.Fatalf("b got %q; want 2", got)
	}
	a.none(t, 50*time.Millisecond)

	unsubB()
	if !waitFor(5*time.Second, func() bool { return numSub(t, c, channel) == 0 }) {
		t.Fatalf("PUBSUB NUMSUB = %d after the last unsubscribe; want 0", numSub(t, c, channel))
	}
	if n := numSub(t, c, prefix+":other"); n != 1 {
		t.Errorf("PUBSUB NUMSUB other = %d; want 1", n)
	}

	// Subscribing again subscribes again.
	unsubC := subscribe(t, r, "room", b.deliver)
	if n := numSub(t, c, channel); n != 1 {
		t.Fatalf("PUBSUB NUMSUB = %d after subscribing again; want 1", n)
	}
	unsubC()
}

// TestRedisSubscribeReturnsAfterAck checks, by the receiver count that
// PUBLISH returns, that Redis has the subscription as soon as Subscribe
// returns, including right after the previous subscriber of the stream left
// (the UNSUBSCRIBE may still be unanswered then).
func TestRedisSubscribeReturnsAfterAck(t *testing.T) {
	url := redisURL(t)
	prefix := uniquePrefix(t)
	r, c := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix})
	for i := range 200 {
		// Mostly the same stream, so that Subscribe often follows the
		// unsubscribe just before it.
		stream := fmt.Sprintf("s%d", i%3/2)
		unsub := subscribe(t, r, stream, func([]byte) {})
		n, err := c.Publish(context.Background(), r.Channel(stream), "0").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("iteration %d: PUBLISH right after Subscribe returned reached %d subscribers; want 1", i, n)
		}
		unsub()
	}
}

func TestRedisUnsubscribeStopsDelivery(t *testing.T) {
	url := redisURL(t)
	prefix := uniquePrefix(t)
	r, _ := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix})

	var after atomic.Bool
	var late atomic.Int64
	keep := newSink()
	subscribe(t, r, "flood", keep.deliver) // keeps the channel subscribed
	unsub := subscribe(t, r, "flood", func([]byte) {
		if after.Load() {
			late.Add(1)
		}
		time.Sleep(time.Millisecond) // widen the race window
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			_ = r.Publish(ctx, "flood", []byte(`0`))
		}
	})
	keep.next(t, 5*time.Second)
	unsub()
	after.Store(true)
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	if n := late.Load(); n != 0 {
		t.Errorf("deliver called %d times after unsubscribe returned", n)
	}
}

// TestRedisConcurrentSubscribers runs many goroutines that subscribe and
// unsubscribe a few streams while messages flow, then checks that every
// subscription was acknowledged when Subscribe returned and that Redis is
// left with no subscription.
func TestRedisConcurrentSubscribers(t *testing.T) {
	url := redisURL(t)
	prefix := uniquePrefix(t)
	r, c := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix})
	const workers, rounds, streams = 16, 40, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				stream := fmt.Sprintf("s%d", (w+i)%streams)
				unsub, err := r.Subscribe(context.Background(), stream, func([]byte) {})
				if err != nil {
					errs <- err
					return
				}
				n, err := c.Publish(context.Background(), r.Channel(stream), "0").Result()
				if err != nil || n != 1 {
					errs <- fmt.Errorf("worker %d round %d: PUBLISH after Subscribe reached %d subscribers, err %v; want 1", w, i, n, err)
					unsub()
					return
				}
				unsub()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !waitFor(5*time.Second, func() bool {
		chans, err := c.PubSubChannels(context.Background(), prefix+":*").Result()
		return err == nil && len(chans) == 0
	}) {
		chans, _ := c.PubSubChannels(context.Background(), prefix+":*").Result()
		t.Errorf("PUBSUB CHANNELS after every unsubscribe = %q; want none", chans)
	}
}

func TestRedisDeliverPanicIsRecovered(t *testing.T) {
	url := redisURL(t)
	prefix := uniquePrefix(t)
	logs := new(syncBuffer)
	r, _ := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	s := newSink()
	subscribe(t, r, "p", func([]byte) { panic("boom") })
	subscribe(t, r, "p", s.deliver)
	for range 2 {
		if err := r.Publish(context.Background(), "p", []byte(`1`)); err != nil {
			t.Fatal(err)
		}
		s.next(t, 5*time.Second)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("the panic was not logged:\n%s", logs)
	}
	if !r.Healthy() {
		t.Error("a panicking deliver broke the connection")
	}
}

// TestRedisSubscribeGivenUp gives up Subscribe calls at random moments
// before Redis answers, so that the answer to their SUBSCRIBE arrives after
// a new Subscribe of the same stream was sent, and checks that the new one
// still returns only once Redis has its subscription, and that nothing stays
// subscribed at the end.
func TestRedisSubscribeGivenUp(t *testing.T) {
	url := redisURL(t)
	prefix := uniquePrefix(t)
	r, c := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix})
	channel := r.Channel("s")
	var givenUp int
	for i := range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%40)*5*time.Microsecond)
		unsub, err := r.Subscribe(ctx, "s", func([]byte) {})
		cancel()
		if err != nil {
			givenUp++
		} else {
			unsub()
		}
		unsub = subscribe(t, r, "s", func([]byte) {})
		if n, err := c.Publish(context.Background(), channel, "0").Result(); err != nil || n != 1 {
			t.Fatalf("iteration %d: PUBLISH after Subscribe reached %d subscribers (%v); want 1", i, n, err)
		}
		unsub()
	}
	t.Logf("%d of 300 Subscribe calls given up", givenUp)
	if givenUp == 0 {
		t.Error("no Subscribe was given up; the test proves nothing")
	}
	if !waitFor(5*time.Second, func() bool { return numSub(t, c, channel) == 0 }) {
		t.Errorf("PUBSUB NUMSUB = %d after every unsubscribe; want 0", numSub(t, c, channel))
	}
}
