package cablehttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/cablehttp"
)

// lossyPubSub is a MemoryPubSub whose publishes can be made to vanish, as
// they do in a Redis that hangs.
type lossyPubSub struct {
	cable.MemoryPubSub
	drop atomic.Bool
}

func (p *lossyPubSub) Publish(ctx context.Context, stream string, payload []byte) error {
	if p.drop.Load() {
		return nil
	}
	return p.MemoryPubSub.Publish(ctx, stream, payload)
}

// lockedLog is a log sink safe for the canary's goroutine and the test.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runCanary runs c until the test ends, and checks that Run then returns
// nil.
func runCanary(t *testing.T, c *cablehttp.Canary) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }() // owner: this test's cleanup, which waits on done
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if st := c.Status(); st.OK || st.Reason != "stopped" {
			t.Errorf("Status after Run = %+v; want not OK, stopped", st)
		}
	})
}

// decodeBody decodes a JSON response body.
func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	return m
}

// Probes that stop coming back fail the canary within Interval + Timeout:
// /health says pubsub "stalled" with 503, /health/ready 503 and why,
// /health/live stays 200, the metrics show it, and one Warn line is
// logged. When probes come back, everything is green again.
func TestCanaryDetectsLoss(t *testing.T) {
	ps := &lossyPubSub{}
	logs := new(lockedLog)
	const interval, timeout = 20 * time.Millisecond, 100 * time.Millisecond
	c := &cablehttp.Canary{PubSub: ps, Interval: interval, Timeout: timeout, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	if st := c.Status(); !st.OK {
		t.Errorf("Status before Run = %+v; want OK", st)
	}
	runCanary(t, c)
	h := cablehttp.Health{PubSubState: func() string { return "ok" }, Canary: c}
	m := cablehttp.Metrics{PubSubState: func() string { return "ok" }, Canary: c}
	waitFor(t, "a probe to come back", func() bool { return c.Status().RoundTrip > 0 })
	if rec := get(h, "/health"); rec.Code != 200 {
		t.Fatalf("/health with the canary OK: %d %s", rec.Code, rec.Body)
	}

	ps.drop.Store(true)
	lost := time.Now()
	waitFor(t, "the canary to fail", func() bool { return !c.Status().OK })
	took := time.Since(lost)
	if limit := interval + timeout + time.Second; took > limit {
		t.Errorf("canary failed %v after probes were lost; want within %v", took, limit)
	}
	t.Logf("probes lost: canary failed after %v (interval %v + timeout %v)", took, interval, timeout)
	if st := c.Status(); st.Reason != "overdue" {
		t.Errorf("Status = %+v; want reason overdue", st)
	}
	rec := get(h, "/health")
	if body := decodeBody(t, rec); rec.Code != 503 || body["pubsub"] != "stalled" || len(body) != 3 {
		t.Errorf("/health: %d %v; want 503 with pubsub stalled and three keys", rec.Code, body)
	}
	rec = get(h.Ready(), "/health/ready")
	if body := decodeBody(t, rec); rec.Code != 503 || body["canary"] != "overdue" || body["draining"] != false {
		t.Errorf("/health/ready: %d %v; want 503, canary overdue, not draining", rec.Code, body)
	}
	if rec := get(h.Live(), "/health/live"); rec.Code != 200 || rec.Body.String() != `{"status":"OK"}`+"\n" {
		t.Errorf("/health/live: %d %s; want 200", rec.Code, rec.Body)
	}
	waitFor(t, "the failure to be counted", func() bool { return c.Status().Failures == 1 })
	got, _ := parseMetrics(t, get(m, "/metrics").Body.String())
	if got["gocable_canary_up"].value != 0 || got["gocable_canary_failures_total"].value != 1 {
		t.Errorf("metrics: canary_up %g, failures_total %g; want 0 and 1", got["gocable_canary_up"].value, got["gocable_canary_failures_total"].value)
	}

	ps.drop.Store(false)
	waitFor(t, "the canary to recover", func() bool { return c.Status().OK })
	if rec := get(h.Ready(), "/health/ready"); rec.Code != 200 {
		t.Errorf("/health/ready after recovery: %d %s", rec.Code, rec.Body)
	}
	got, _ = parseMetrics(t, get(m, "/metrics").Body.String())
	if rtt := got["gocable_canary_round_trip_seconds"].value; got["gocable_canary_up"].value != 1 || rtt <= 0 || rtt > 1 {
		t.Errorf("metrics: canary_up %g, round trip %gs; want 1 and a round trip in (0, 1s]", got["gocable_canary_up"].value, rtt)
	}
	waitFor(t, "the recovery to be logged", func() bool { return strings.Contains(logs.String(), "canary recovered") })
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d Warn lines; want 1:\n%s", n, logs)
	}

	// A second failure within a minute is counted but not logged.
	ps.drop.Store(true)
	waitFor(t, "the second failure to be counted", func() bool { return c.Status().Failures == 2 })
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d Warn lines after a second failure within a minute; want 1:\n%s", n, logs)
	}
}

// The canary's probes never reach a client, even one whose channel
// streams from the canary's very stream: they are not JSON, and the
// server drops them as Rails drops a broadcast it cannot decode.
func TestCanaryNeverReachesClients(t *testing.T) {
	ps := &cable.MemoryPubSub{}
	srv := &cable.Server{PubSub: ps, CheckOrigin: func(*http.Request) bool { return true }, Logger: discardLogger()}
	srv.Handle("StreamChannel", func() cable.Channel {
		return cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error {
			return s.StreamFrom(ctx, s.Param("stream").String())
		})
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	c := &cablehttp.Canary{PubSub: ps, Interval: 10 * time.Millisecond, Logger: discardLogger()}
	if !strings.HasPrefix(c.StreamName(), "_gocable_canary/") {
		t.Errorf("StreamName() = %q; want _gocable_canary/<node>", c.StreamName())
	}
	id := `{"channel":"StreamChannel","stream":` + quote(c.StreamName()) + `}`
	cl := dial(t, "ws"+strings.TrimPrefix(hs.URL, "http"))
	cl.expect(`{"type":"welcome"}`)
	cl.send(`{"command":"subscribe","identifier":` + quote(id) + `}`)
	cl.expect(`"type":"confirm_subscription"`)

	runCanary(t, c)
	waitFor(t, "probes to pass the server's stream", func() bool { return srv.Stats().BroadcastsTotal >= 10 })
	if !c.Status().OK || c.Status().RoundTrip <= 0 {
		t.Errorf("Status = %+v; want OK with a round trip", c.Status())
	}
	// A real broadcast on the stream comes after the probes: any probe
	// passed on would be read before it.
	if err := srv.Broadcast(context.Background(), c.StreamName(), "after"); err != nil {
		t.Fatal(err)
	}
	cl.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := cl.ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for the broadcast: %v", err)
		}
		f := string(b)
		if strings.Contains(f, `"type":"ping"`) {
			continue
		}
		if f != `{"identifier":`+quote(id)+`,"message":"after"}` {
			t.Fatalf("client got %s; want only the broadcast", f)
		}
		break
	}
}

// Ready answers 503 while draining, and Live 200, with the zero value
// ready and alive.
func TestReadyAndLive(t *testing.T) {
	if rec := get(cablehttp.Health{}.Ready(), "/health/ready"); rec.Code != 200 {
		t.Errorf("zero Health, Ready: %d; want 200", rec.Code)
	}
	if rec := get(cablehttp.Health{}.Live(), "/health/live"); rec.Code != 200 {
		t.Errorf("zero Health, Live: %d; want 200", rec.Code)
	}
	draining := cablehttp.Health{Draining: func() bool { return true }}
	rec := get(draining.Ready(), "/health/ready")
	if body := decodeBody(t, rec); rec.Code != 503 || body["draining"] != true || body["pubsub"] != "memory" {
		t.Errorf("draining, Ready: %d %v; want 503, draining", rec.Code, body)
	}
	if rec := get(draining, "/health"); rec.Code != 200 {
		t.Errorf("draining, /health: %d; want 200 (its meaning is unchanged)", rec.Code)
	}
	down := cablehttp.Health{PubSubState: func() string { return "down" }}
	if rec := get(down.Ready(), "/health/ready"); rec.Code != 503 {
		t.Errorf("pub/sub down, Ready: %d; want 503", rec.Code)
	}
	if rec := get(down.Live(), "/health/live"); rec.Code != 200 {
		t.Errorf("pub/sub down, Live: %d; want 200", rec.Code)
	}
}

// Run refuses to start without a PubSub, or twice at once.
func TestCanaryRunErrors(t *testing.T) {
	if err := (&cablehttp.Canary{}).Run(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "cablehttp: ") {
		t.Errorf("Run without PubSub = %v; want a cablehttp error", err)
	}
	c := &cablehttp.Canary{PubSub: &cable.MemoryPubSub{}, Interval: 10 * time.Millisecond}
	runCanary(t, c)
	waitFor(t, "the canary to run", func() bool { return c.Status().RoundTrip > 0 })
	if err := c.Run(context.Background()); err == nil {
		t.Error("second Run while running = nil; want an error")
	}
}
