package pgpubsub_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/pgpubsub"
)

// latencyRig is one PubSub with streams streams, each with one subscriber
// that records when each message arrived.
type latencyRig struct {
	p       *pgpubsub.PubSub
	streams int
	app     string // the listener's application_name

	mu   sync.Mutex
	sent map[int]time.Time
	lat  []time.Duration
	got  chan struct{}
}

func newLatencyRig(t testing.TB, streams int) *latencyRig {
	t.Helper()
	requirePostgres(t)
	prefix := uniquePrefix(t)
	r := &latencyRig{streams: streams, sent: make(map[int]time.Time), got: make(chan struct{}, 1<<16), app: "gocable-bench-" + prefix}
	r.p = newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix, ApplicationName: r.app,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range streams {
		unsub, err := r.p.Subscribe(ctx, "stream_"+strconv.Itoa(i), r.deliver)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(unsub)
	}
	return r
}

func (r *latencyRig) deliver(payload []byte) {
	now := time.Now()
	n, _ := strconv.Atoi(string(payload))
	r.mu.Lock()
	if s, ok := r.sent[n]; ok {
		r.lat = append(r.lat, now.Sub(s))
		delete(r.sent, n)
	}
	r.mu.Unlock()
	r.got <- struct{}{}
}

// run publishes n messages, each to the next stream, each once the one
// before was delivered (so a latency is a NOTIFY's trip, not time spent
// queued behind earlier ones), within timeout in all. It returns the
// delivery latencies (from the Publish call to deliver), sorted.
func (r *latencyRig) run(t testing.TB, n int, timeout time.Duration) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r.mu.Lock()
	r.lat = r.lat[:0]
	r.mu.Unlock()
	for i := range n {
		r.mu.Lock()
		r.sent[i] = time.Now()
		r.mu.Unlock()
		if err := r.p.Publish(ctx, "stream_"+strconv.Itoa(i%r.streams), []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		select {
		case <-r.got:
		case <-ctx.Done():
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("%d of %d messages delivered within %v", len(r.lat), n, timeout)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	lat := slices.Clone(r.lat)
	slices.Sort(lat)
	return lat
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// TestDeliveryLatency1000Streams: with 1,000 streams LISTENed on one node,
// 2,000 broadcasts are all delivered, with p95 latency within a generous
// bound for a loaded 2-core machine.
func TestDeliveryLatency1000Streams(t *testing.T) {
	start := time.Now()
	r := newLatencyRig(t, 1000)
	subscribed := time.Since(start)
	lat := r.run(t, 2000, 30*time.Second)
	p50, p95, p99 := percentile(lat, 0.50), percentile(lat, 0.95), percentile(lat, 0.99)
	t.Logf("1000 streams subscribed in %v; 2000 broadcasts: p50 %v, p95 %v, p99 %v, max %v",
		subscribed.Round(time.Millisecond), p50, p95, p99, lat[len(lat)-1])
	if len(lat) != 2000 {
		t.Errorf("%d latencies; want 2000", len(lat))
	}
	if p95 > 250*time.Millisecond {
		t.Errorf("p95 delivery latency %v; want under 250ms", p95)
	}
	if subscribed > 10*time.Second {
		t.Errorf("subscribing 1000 streams took %v; want under 10s", subscribed)
	}

	// The listener's backend is terminated: all 1,000 streams are
	// LISTENed again, and receive, within a bound.
	raw := rawConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start = time.Now()
	if _, err := raw.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", r.app); err != nil {
		t.Fatal(err)
	}
	for r.p.State() == pgpubsub.StateUp && time.Since(start) < 5*time.Second {
		time.Sleep(time.Millisecond)
	}
	waitState(t, r.p, pgpubsub.StateUp, 10*time.Second)
	relisten := time.Since(start)
	lat = r.run(t, 1000, 30*time.Second)
	t.Logf("backend terminated: 1000 streams listened again in %v; then p50 %v, p95 %v",
		relisten.Round(time.Millisecond), percentile(lat, 0.5), percentile(lat, 0.95))
	if relisten > 10*time.Second {
		t.Errorf("re-LISTEN of 1000 streams took %v; want under 10s", relisten)
	}
}

// BenchmarkDeliveryLatency reports the delivery latency of broadcasts to
// 1,000 streams on one node, each published once the one before was
// delivered (ns/op is then the round trip):
//
//	go test -run '^$' -bench DeliveryLatency -benchtime 5000x ./cable/pgpubsub/
func BenchmarkDeliveryLatency(b *testing.B) {
	r := newLatencyRig(b, 1000)
	b.ResetTimer()
	lat := r.run(b, b.N, 5*time.Minute)
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.95).Microseconds()), "p95-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
}
