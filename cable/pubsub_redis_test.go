package cable_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/redis/go-redis/v9"
)

// newRedisPubSub returns a RedisPubSub on a new client for url, both closed
// when the test ends, and that client.
func newRedisPubSub(t testing.TB, url string, cfg cable.RedisConfig) (*cable.RedisPubSub, *redis.Client) {
	t.Helper()
	c := newRedisClient(t, url)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := cable.NewRedisPubSub(c, cfg)
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

func subscribe(t testing.TB, r *cable.RedisPubSub, stream string, deliver func([]byte)) func() {
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
			r, c := newRedisPubSub(t, url, cable.RedisConfig{ChannelPrefix: tt.prefix})
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
	r, c := newRedisPubSub(t, url, cable.RedisConfig{ChannelPrefix: &prefix})
	s := newSink()
	subscribe(t, r, "echo", s.deliver)

	// A subscriber that is not a RedisPubSub, as redis-cli SUBSCRIBE would be.
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
	r, c := newRedisPubSub(t, url, cable.RedisConfig{ChannelPrefix: &prefix})
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
	r, c := newRedisPubSub(t, url, cable.RedisConfig{ChannelPrefix: &prefix})
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
	r, _ := newRedisPubSub(t, url, cable.RedisConfig{ChannelPrefix: &prefix})

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
	r, c := newRedisPubSub(t, url, cable.RedisConfig{ChannelPrefix: &prefix})
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

// TestRedisOutageSubscribeAndPublish checks what callers see while Redis is
// down: Publish fails within its ctx, Subscribe waits until its ctx ends, a
// Subscribe still waiting when Redis returns succeeds, and deliveries
// resume.
func TestRedisOutageSubscribeAndPublish(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	r, c := newRedisPubSub(t, srv.URL(), cable.RedisConfig{ChannelPrefix: &prefix, MaxBackoff: 200 * time.Millisecond})
	before := newSink()
	subscribe(t, r, "before", before.deliver)

	srv.Kill()
	if !waitFor(5*time.Second, func() bool { return !r.Healthy() }) {
		t.Fatal("Healthy() still true 5s after redis-server was killed")
	}
	if got := r.State(); got != cable.RedisDown {
		t.Errorf("State() = %v during the outage; want down", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	start := time.Now()
	err := r.Publish(ctx, "before", []byte(`1`))
	cancel()
	if !errors.Is(err, cable.ErrRedisUnavailable) {
		t.Errorf("Publish during the outage = %v; want an error wrapping ErrRedisUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Publish during the outage took %v; want it bounded by its ctx", d)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "cable: ") {
		t.Errorf("error %q lacks the cable: prefix", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err = r.Subscribe(ctx, "short", func([]byte) {})
	cancel()
	if !errors.Is(err, cable.ErrRedisUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Subscribe during the outage = %v; want ErrRedisUnavailable and context.DeadlineExceeded", err)
	}

	during := newSink()
	type result struct {
		unsub func()
		err   error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		unsub, err := r.Subscribe(ctx, "during", during.deliver)
		done <- result{unsub, err}
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case res := <-done:
		t.Fatalf("Subscribe returned during the outage: %v", res.err)
	default:
	}

	srv.Restart()
	res := <-done
	if res.err != nil {
		t.Fatalf("Subscribe waiting across the outage: %v", res.err)
	}
	defer res.unsub()
	if !waitFor(5*time.Second, r.Healthy) {
		t.Fatal("Healthy() false 5s after redis-server restarted")
	}
	for _, s := range []struct {
		stream string
		sink   sink
	}{{"before", before}, {"during", during}} {
		if n := numSub(t, c, r.Channel(s.stream)); n != 1 {
			t.Errorf("PUBSUB NUMSUB %s = %d after the restart; want 1", s.stream, n)
		}
		if err := r.Publish(context.Background(), s.stream, []byte(`"after"`)); err != nil {
			t.Fatalf("Publish after the restart: %v", err)
		}
		if got := s.sink.next(t, 5*time.Second); string(got) != `"after"` {
			t.Errorf("%s got %q; want \"after\"", s.stream, got)
		}
	}
	if n := numSub(t, c, r.Channel("short")); n != 0 {
		t.Errorf("PUBSUB NUMSUB short = %d; the failed Subscribe must not stay subscribed", n)
	}
}

// TestRedisChaos kills redis-server with SIGKILL in the middle of traffic,
// keeps it down for 10s, restarts it on the same port, and checks that the
// node recovers by itself: every stream subscribed again, deliveries back
// within 2s, the outage logged once and the recovery once, Healthy false
// then true, and no goroutine left after Close.
func TestRedisChaos(t *testing.T) {
	if testing.Short() {
		t.Log("-short: the outage lasts 1s instead of 10s")
	}
	down := 10 * time.Second
	if testing.Short() {
		down = time.Second
	}
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	logs := new(syncBuffer)
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newRedisClient(t, srv.URL())
	r := cable.NewRedisPubSub(c, cable.RedisConfig{ChannelPrefix: &prefix, Logger: logger})
	defer r.Close()

	const streams = 20
	sinks := make([]sink, streams)
	for i := range sinks {
		sinks[i] = newSink()
		subscribe(t, r, fmt.Sprintf("chaos_%d", i), sinks[i].deliver)
	}
	if !r.Healthy() {
		t.Fatalf("State() = %v after subscribing; want up", r.State())
	}

	// Traffic: every stream gets a message every 20ms, through the
	// RedisPubSub itself, so Publish is exercised during the outage.
	var published, failed atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			for i := range streams {
				pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				if err := r.Publish(pctx, fmt.Sprintf("chaos_%d", i), []byte(`{"n":1}`)); err != nil {
					failed.Add(1)
				} else {
					published.Add(1)
				}
				cancel()
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	defer func() { stop(); wg.Wait() }()
	for _, s := range sinks {
		s.next(t, 5*time.Second)
	}

	// Health transitions, sampled every 5ms.
	var sawDown atomic.Bool
	wg.Go(func() {
		for ctx.Err() == nil {
			if !r.Healthy() {
				sawDown.Store(true)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	srv.Kill()
	killed := time.Now()
	if !waitFor(5*time.Second, func() bool { return !r.Healthy() }) {
		t.Fatal("Healthy() still true 5s after SIGKILL")
	}
	t.Logf("outage detected after %v", time.Since(killed).Round(time.Millisecond))
	time.Sleep(down - time.Since(killed))
	for _, s := range sinks { // forget what was delivered before and during
		for len(s) > 0 {
			<-s
		}
	}
	failedDuring := failed.Load()

	srv.Restart()
	back := time.Now()
	var worst time.Duration
	for i, s := range sinks {
		select {
		case <-s:
			if d := time.Since(back); d > worst {
				worst = d
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("stream chaos_%d: no delivery within 5s of redis-server returning", i)
		}
	}
	t.Logf("deliveries resumed on all %d streams %v after redis-server returned; %d publishes failed during the %v outage",
		streams, worst.Round(time.Millisecond), failedDuring, down)
	// Retries are at most 1s apart (MaxBackoff); the rest is slack for a
	// loaded machine.
	if worst > 4*time.Second {
		t.Errorf("deliveries resumed %v after redis-server returned; want within 4s", worst)
	}
	if !waitFor(5*time.Second, r.Healthy) {
		t.Errorf("Healthy() = false after recovery; State() = %v", r.State())
	}
	if !sawDown.Load() {
		t.Error("Healthy() never reported false during the outage")
	}
	if failedDuring == 0 {
		t.Error("no Publish failed during the outage")
	}
	for i := range streams {
		if n := numSub(t, c, r.Channel(fmt.Sprintf("chaos_%d", i))); n != 1 {
			t.Errorf("PUBSUB NUMSUB chaos_%d = %d after recovery; want 1", i, n)
		}
	}

	stop()
	wg.Wait()
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("%d warnings logged; want the outage logged once:\n%s", n, out)
	}
	if n := strings.Count(out, "connection lost"); n != 1 {
		t.Errorf("outage logged %d times; want once:\n%s", n, out)
	}
	if n := strings.Count(out, "msg=\"cable: redis pubsub reconnected\""); n != 1 {
		t.Errorf("recovery logged %d times; want once:\n%s", n, out)
	}
	if n := strings.Count(out, "level=ERROR"); n != 0 {
		t.Errorf("%d errors logged:\n%s", n, out)
	}
	t.Logf("reconnection attempts (debug): %d", strings.Count(out, "reconnection failed"))

	r.Close()
	if got := r.State(); got != cable.RedisClosed {
		t.Errorf("State() after Close = %v; want closed", got)
	}
	checkNoRedisGoroutines(t)
}

// TestRedisHealthCheck freezes redis-server with SIGSTOP, so that the
// connection stays open but silent, and checks that the PING health check
// notices and that the node recovers after SIGCONT.
func TestRedisHealthCheck(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	opt, _ := redis.ParseURL(srv.URL())
	opt.ReadTimeout = 300 * time.Millisecond // bounds the handshake of a reconnection
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	r := cable.NewRedisPubSub(c, cable.RedisConfig{
		ChannelPrefix:       &prefix,
		HealthCheckInterval: 200 * time.Millisecond,
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer r.Close()
	s := newSink()
	subscribe(t, r, "hc", s.deliver)

	srv.Signal(syscall.SIGSTOP)
	stopped := time.Now()
	defer srv.Signal(syscall.SIGCONT)
	if !waitFor(3*time.Second, func() bool { return !r.Healthy() }) {
		t.Fatal("Healthy() still true 3s after redis-server froze")
	}
	t.Logf("silent connection detected after %v", time.Since(stopped).Round(time.Millisecond))
	srv.Signal(syscall.SIGCONT)
	if !waitFor(5*time.Second, r.Healthy) {
		t.Fatalf("Healthy() false 5s after redis-server resumed; State() = %v", r.State())
	}
	if err := r.Publish(context.Background(), "hc", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	s.next(t, 5*time.Second)
}

func TestRedisClose(t *testing.T) {
	url := redisURL(t)
	prefix := uniquePrefix(t)
	r, c := newRedisPubSub(t, url, cable.RedisConfig{ChannelPrefix: &prefix})
	unsub := subscribe(t, r, "x", func([]byte) {})
	if err := r.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	unsub() // after Close: no effect, no panic
	if err := r.Publish(context.Background(), "x", []byte(`1`)); !errors.Is(err, cable.ErrRedisClosed) {
		t.Errorf("Publish after Close = %v; want ErrRedisClosed", err)
	}
	if _, err := r.Subscribe(context.Background(), "x", func([]byte) {}); !errors.Is(err, cable.ErrRedisClosed) {
		t.Errorf("Subscribe after Close = %v; want ErrRedisClosed", err)
	}
	if !waitFor(5*time.Second, func() bool { return numSub(t, c, r.Channel("x")) == 0 }) {
		t.Error("the subscriber connection is still subscribed after Close")
	}
	checkNoRedisGoroutines(t)
}

// TestRedisCloseWhileDown closes a RedisPubSub that never reached Redis,
// with a Subscribe waiting.
func TestRedisCloseWhileDown(t *testing.T) {
	url := fmt.Sprintf("redis://127.0.0.1:%d", freePort(t)) // nothing listens
	logs := new(syncBuffer)
	r, _ := newRedisPubSub(t, url, cable.RedisConfig{
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	})
	errc := make(chan error, 1)
	go func() {
		_, err := r.Subscribe(context.Background(), "x", func([]byte) {})
		errc <- err
	}()
	if !waitFor(5*time.Second, func() bool { return r.State() == cable.RedisDown }) {
		t.Errorf("State() = %v 5s into failed attempts; want down", r.State())
	}
	time.Sleep(100 * time.Millisecond) // several more failed attempts
	r.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, cable.ErrRedisClosed) {
			t.Errorf("waiting Subscribe = %v after Close; want ErrRedisClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting Subscribe did not return after Close")
	}
	if n := strings.Count(logs.String(), "cannot connect"); n != 1 {
		t.Errorf("the failure to connect was logged %d times; want once:\n%s", n, logs)
	}
	checkNoRedisGoroutines(t)
}

func TestRedisDeliverPanicIsRecovered(t *testing.T) {
	url := redisURL(t)
	prefix := uniquePrefix(t)
	logs := new(syncBuffer)
	r, _ := newRedisPubSub(t, url, cable.RedisConfig{ChannelPrefix: &prefix, Logger: slog.New(slog.NewTextHandler(logs, nil))})
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

// ExampleNewRedisPubSub connects a cable server to the Redis that a Rails
// app's config/cable.yml names, with the same channel_prefix, so that
// ActionCable.server.broadcast in the Rails app reaches it. It needs a Redis
// server, so it is compiled but not run.
func ExampleNewRedisPubSub() {
	opt, err := redis.ParseURL("redis://localhost:6379/1")
	if err != nil {
		panic(err)
	}
	client := redis.NewClient(opt)
	defer client.Close()
	ps := cable.NewRedisPubSub(client, cable.RedisConfig{ChannelPrefix: new("myapp_production")})
	defer ps.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Subscribes to "myapp_production:chat_1".
	unsubscribe, err := ps.Subscribe(ctx, "chat_1", func(payload []byte) {
		fmt.Printf("%s\n", payload)
	})
	if err != nil {
		panic(err)
	}
	defer unsubscribe()
	// What ActionCable.server.broadcast("chat_1", {body: "hi"}) publishes.
	if err := ps.Publish(ctx, "chat_1", []byte(`{"body":"hi"}`)); err != nil {
		panic(err)
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
	r, c := newRedisPubSub(t, url, cable.RedisConfig{ChannelPrefix: &prefix})
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

// TestRedisSubscribeRefusedByACL: a Redis ACL that forbids a channel makes
// Redis answer its SUBSCRIBE with NOPERM. That Subscribe fails at once with
// the reason, instead of waiting forever; other channels, before and after,
// and on a new session after a reconnect, are not affected.
func TestRedisSubscribeRefusedByACL(t *testing.T) {
	url, admin := aclUser(t, "resetchannels", "&allowed:*", "+@all", "~*")
	logs := new(syncBuffer)
	r, _ := newRedisPubSub(t, url, cable.RedisConfig{Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxBackoff: 200 * time.Millisecond})

	a := newSink()
	subscribe(t, r, "allowed:a", a.deliver)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	start := time.Now()
	_, err := r.Subscribe(ctx, "forbidden:b", func([]byte) { t.Error("delivery on a refused channel") })
	cancel()
	var rerr redis.Error
	if err == nil || !errors.As(err, &rerr) || !strings.Contains(err.Error(), "NOPERM") || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe(forbidden) = %v; want the NOPERM error reply", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refused Subscribe took %v", d)
	}
	if !strings.Contains(logs.String(), "redis refused SUBSCRIBE") || !strings.Contains(logs.String(), "forbidden:b") {
		t.Errorf("the refusal was not logged with its channel:\n%s", logs)
	}
	if !r.Healthy() {
		t.Errorf("State() = %v after a refused SUBSCRIBE; want up", r.State())
	}

	c := newSink()
	subscribe(t, r, "allowed:c", c.deliver)
	for _, ch := range []string{"allowed:a", "allowed:c"} {
		if err := r.Publish(context.Background(), ch, []byte(`"`+ch+`"`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(a.next(t, 5*time.Second)); got != `"allowed:a"` {
		t.Errorf("allowed:a got %s", got)
	}
	if got := string(c.next(t, 5*time.Second)); got != `"allowed:c"` {
		t.Errorf("allowed:c got %s", got)
	}

	// Asking again is refused again; and a new session resubscribes the
	// allowed channels.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	_, err = r.Subscribe(ctx, "forbidden:b", func([]byte) {})
	cancel()
	if !errors.As(err, &rerr) {
		t.Fatalf("second Subscribe(forbidden) = %v; want the error reply", err)
	}
	if err := admin.Do(context.Background(), "CLIENT", "KILL", "USER", "cable").Err(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool {
		return r.Publish(context.Background(), "allowed:c", []byte(`2`)) == nil && len(c) > 0
	}) {
		t.Fatalf("no delivery after the session was killed; State() = %v\n%s", r.State(), logs)
	}
	if got := string(c.next(t, time.Second)); got != `2` {
		t.Errorf("allowed:c got %s after the reconnect", got)
	}
}

// TestRedisRefusedChannelInResubscription: a forbidden channel asked for
// while the connection is down lands in the new session's SUBSCRIBE of every
// channel, which Redis refuses whole. The allowed channels must still be
// subscribed (one by one) and only the forbidden one fail.
func TestRedisRefusedChannelInResubscription(t *testing.T) {
	url, admin := aclUser(t, "resetchannels", "&allowed:*", "+@all", "~*")
	ctx := context.Background()
	logs := new(syncBuffer)
	r, _ := newRedisPubSub(t, url, cable.RedisConfig{Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxBackoff: 100 * time.Millisecond})
	a := newSink()
	subscribe(t, r, "allowed:a", a.deliver)
	if !waitFor(5*time.Second, r.Healthy) {
		t.Fatal("not up")
	}

	// Down: the user is disabled, so reconnection attempts fail.
	if err := admin.Do(ctx, "ACL", "SETUSER", "cable", "off").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "CLIENT", "KILL", "USER", "cable").Err(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return r.State() == cable.RedisDown }) {
		t.Fatalf("State() = %v after the session was killed; want down", r.State())
	}
	type result struct {
		stream string
		err    error
	}
	results := make(chan result, 2)
	b := newSink()
	for _, st := range []string{"allowed:b", "forbidden:f"} {
		go func() {
			sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			deliver := b.deliver
			if st == "forbidden:f" {
				deliver = func([]byte) { t.Error("delivery on a refused channel") }
			}
			_, err := r.Subscribe(sctx, st, deliver)
			results <- result{st, err}
		}()
	}
	time.Sleep(200 * time.Millisecond) // both wait for the next session
	if err := admin.Do(ctx, "ACL", "SETUSER", "cable", "on").Err(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res := <-results
		var rerr redis.Error
		switch res.stream {
		case "allowed:b":
			if res.err != nil {
				t.Errorf("Subscribe(allowed:b) = %v; want nil", res.err)
			}
		case "forbidden:f":
			if !errors.As(res.err, &rerr) || !strings.Contains(res.err.Error(), "NOPERM") {
				t.Errorf("Subscribe(forbidden:f) = %v; want the NOPERM error reply", res.err)
			}
		}
	}
	if !waitFor(5*time.Second, r.Healthy) {
		t.Fatalf("State() = %v after the user was enabled; want up", r.State())
	}
	for _, ch := range []string{"allowed:a", "allowed:b"} {
		if err := r.Publish(ctx, ch, []byte(`"`+ch+`"`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(a.next(t, 5*time.Second)); got != `"allowed:a"` {
		t.Errorf("allowed:a got %s after the resubscription", got)
	}
	if got := string(b.next(t, 5*time.Second)); got != `"allowed:b"` {
		t.Errorf("allowed:b got %s", got)
	}
	if !strings.Contains(logs.String(), "subscribing them one by one") {
		t.Errorf("the refused batch was not logged:\n%s", logs)
	}
}

// TestRedisRecoversFromLoading: a restarted Redis answers -LOADING to the
// new session's PINGs while it loads its dataset. That error reply must end
// the session, to be retried, not leave it half up (State down forever,
// Subscribe waiting, Publish refused) once loading is done.
func TestRedisRecoversFromLoading(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found in PATH: %v", err)
	}
	dir, port := t.TempDir(), freePort(t)
	url := "redis://127.0.0.1:" + strconv.Itoa(port)
	start := func(extra ...string) *exec.Cmd {
		args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--enable-debug-command", "yes"}, extra...)
		c := exec.Command("redis-server", args...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
		return c
	}
	srv := start()
	admin := newRedisClient(t, url)
	ctx := context.Background()
	if !waitFor(5*time.Second, func() bool { return admin.Ping(ctx).Err() == nil }) {
		t.Fatal("redis-server did not start")
	}
	// 20,000 keys at 100 µs each: about 2 s of LOADING after a restart.
	if err := admin.Do(ctx, "DEBUG", "POPULATE", "20000", "key", "10").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	logs := new(syncBuffer)
	r, _ := newRedisPubSub(t, url, cable.RedisConfig{Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxBackoff: 100 * time.Millisecond})
	a := newSink()
	subscribe(t, r, "a", a.deliver)

	_ = srv.Process.Kill()
	_ = srv.Wait()
	start("--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024")
	sawLoading := false
	if !waitFor(30*time.Second, func() bool {
		err := admin.Ping(ctx).Err()
		if err != nil && strings.HasPrefix(err.Error(), "LOADING") {
			sawLoading = true
		}
		return err == nil
	}) {
		t.Fatal("redis-server did not finish loading in 30s")
	}
	if !sawLoading {
		t.Fatal("redis-server never answered LOADING: the test proves nothing")
	}
	if !waitFor(5*time.Second, r.Healthy) {
		t.Fatalf("State() = %v 5s after Redis finished loading; want up\n%s", r.State(), logs)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := r.Subscribe(sctx, "b", func([]byte) {})
	cancel()
	if err != nil {
		t.Fatalf("Subscribe after loading = %v", err)
	}
	if err := r.Publish(ctx, "a", []byte(`1`)); err != nil {
		t.Fatalf("Publish after loading = %v", err)
	}
	if got := string(a.next(t, 5*time.Second)); got != `1` {
		t.Errorf("a got %s", got)
	}
	if strings.Contains(logs.String(), "refused SUBSCRIBE") {
		t.Errorf("LOADING was taken for a refused SUBSCRIBE:\n%s", logs)
	}
}

// TestRedisPingForbidden: with an ACL user that may not PING, no session can
// be made healthy; that is reported (State down, the reason logged), not
// mistaken for a refused SUBSCRIBE.
func TestRedisPingForbidden(t *testing.T) {
	url, _ := aclUser(t, "allchannels", "+@all", "-ping", "~*")
	logs := new(syncBuffer)
	r, _ := newRedisPubSub(t, url, cable.RedisConfig{Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxBackoff: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := r.Subscribe(ctx, "a", func([]byte) {})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, cable.ErrRedisUnavailable) {
		t.Errorf("Subscribe = %v; want a deadline while Redis is unavailable", err)
	}
	if got := r.State(); got != cable.RedisDown {
		t.Errorf("State() = %v; want down", got)
	}
	if !strings.Contains(logs.String(), "NOPERM") || strings.Contains(logs.String(), "refused SUBSCRIBE") {
		t.Errorf("want the NOPERM for PING logged, not a refused SUBSCRIBE:\n%s", logs)
	}
}

// aclUser starts a redis-server with an ACL user "cable" (password "pw")
// that has rules, and returns the URL that logs in as that user and an
// admin client.
func aclUser(t *testing.T, rules ...string) (string, *redis.Client) {
	t.Helper()
	srv := startRedis(t)
	admin := newRedisClient(t, srv.URL())
	args := append([]any{"ACL", "SETUSER", "cable", "on", ">pw"}, toAny(rules)...)
	if err := admin.Do(context.Background(), args...).Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(srv.URL(), "redis://", "redis://cable:pw@", 1), admin
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
