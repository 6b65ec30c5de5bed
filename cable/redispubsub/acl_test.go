package redispubsub_test

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/redispubsub"
	"github.com/redis/go-redis/v9"
)

// TestRedisSubscribeRefusedByACL: a Redis ACL that forbids a channel makes
// Redis answer its SUBSCRIBE with NOPERM. That Subscribe fails at once with
// the reason, instead of waiting forever; other channels, before and after,
// and on a new session after a reconnect, are not affected.
func TestRedisSubscribeRefusedByACL(t *testing.T) {
	url, admin := aclUser(t, "resetchannels", "&allowed:*", "+@all", "~*")
	logs := new(syncBuffer)
	r, _ := newPubSub(t, url, redispubsub.Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxBackoff: 200 * time.Millisecond})

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
	r, _ := newPubSub(t, url, redispubsub.Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxBackoff: 100 * time.Millisecond})
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
	if !waitFor(5*time.Second, func() bool { return r.State() == redispubsub.StateDown }) {
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
	r, _ := newPubSub(t, url, redispubsub.Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxBackoff: 100 * time.Millisecond})
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
	r, _ := newPubSub(t, url, redispubsub.Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), MaxBackoff: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err := r.Subscribe(ctx, "a", func([]byte) {})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, redispubsub.ErrUnavailable) {
		t.Errorf("Subscribe = %v; want a deadline while Redis is unavailable", err)
	}
	if got := r.State(); got != redispubsub.StateDown {
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
