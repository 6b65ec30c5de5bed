package redispubsub_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/redispubsub"
	"github.com/redis/go-redis/v9"
)

// TestRedisOutageSubscribeAndPublish checks what callers see while Redis is
// down: Publish fails within its ctx, Subscribe waits until its ctx ends, a
// Subscribe still waiting when Redis returns succeeds, and deliveries
// resume.
func TestRedisOutageSubscribeAndPublish(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	r, c := newPubSub(t, srv.URL(), redispubsub.Config{ChannelPrefix: &prefix, MaxBackoff: 200 * time.Millisecond})
	before := newSink()
	subscribe(t, r, "before", before.deliver)

	srv.Kill()
	if !waitFor(5*time.Second, func() bool { return !r.Healthy() }) {
		t.Fatal("Healthy() still true 5s after redis-server was killed")
	}
	if got := r.State(); got != redispubsub.StateDown {
		t.Errorf("State() = %v during the outage; want down", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	start := time.Now()
	err := r.Publish(ctx, "before", []byte(`1`))
	cancel()
	if !errors.Is(err, redispubsub.ErrUnavailable) {
		t.Errorf("Publish during the outage = %v; want an error wrapping ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Publish during the outage took %v; want it bounded by its ctx", d)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "redispubsub: ") {
		t.Errorf("error %q lacks the redispubsub: prefix", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err = r.Subscribe(ctx, "short", func([]byte) {})
	cancel()
	if !errors.Is(err, redispubsub.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Subscribe during the outage = %v; want ErrUnavailable and context.DeadlineExceeded", err)
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
	r := redispubsub.New(c, redispubsub.Config{ChannelPrefix: &prefix, Logger: logger})
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
	// PubSub itself, so Publish is exercised during the outage.
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
	if n := strings.Count(out, "msg=\"redispubsub: reconnected\""); n != 1 {
		t.Errorf("recovery logged %d times; want once:\n%s", n, out)
	}
	if n := strings.Count(out, "level=ERROR"); n != 0 {
		t.Errorf("%d errors logged:\n%s", n, out)
	}
	t.Logf("reconnection attempts (debug): %d", strings.Count(out, "reconnection failed"))

	r.Close()
	if got := r.State(); got != redispubsub.StateClosed {
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
	r := redispubsub.New(c, redispubsub.Config{
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
	r, c := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix})
	unsub := subscribe(t, r, "x", func([]byte) {})
	if err := r.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	unsub() // after Close: no effect, no panic
	if err := r.Publish(context.Background(), "x", []byte(`1`)); !errors.Is(err, redispubsub.ErrClosed) {
		t.Errorf("Publish after Close = %v; want ErrClosed", err)
	}
	if _, err := r.Subscribe(context.Background(), "x", func([]byte) {}); !errors.Is(err, redispubsub.ErrClosed) {
		t.Errorf("Subscribe after Close = %v; want ErrClosed", err)
	}
	if !waitFor(5*time.Second, func() bool { return numSub(t, c, r.Channel("x")) == 0 }) {
		t.Error("the subscriber connection is still subscribed after Close")
	}
	checkNoRedisGoroutines(t)
}

// TestRedisCloseWhileDown closes a PubSub that never reached Redis,
// with a Subscribe waiting.
func TestRedisCloseWhileDown(t *testing.T) {
	url := fmt.Sprintf("redis://127.0.0.1:%d", freePort(t)) // nothing listens
	logs := new(syncBuffer)
	r, _ := newPubSub(t, url, redispubsub.Config{
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	})
	errc := make(chan error, 1)
	go func() {
		_, err := r.Subscribe(context.Background(), "x", func([]byte) {})
		errc <- err
	}()
	if !waitFor(5*time.Second, func() bool { return r.State() == redispubsub.StateDown }) {
		t.Errorf("State() = %v 5s into failed attempts; want down", r.State())
	}
	time.Sleep(100 * time.Millisecond) // several more failed attempts
	r.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, redispubsub.ErrClosed) {
			t.Errorf("waiting Subscribe = %v after Close; want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting Subscribe did not return after Close")
	}
	if n := strings.Count(logs.String(), "cannot connect"); n != 1 {
		t.Errorf("the failure to connect was logged %d times; want once:\n%s", n, logs)
	}
	checkNoRedisGoroutines(t)
}
