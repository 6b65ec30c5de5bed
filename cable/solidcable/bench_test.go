package solidcable_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/solidcable"
)

// latencyRun is the result of measureDelivery.
type latencyRun struct {
	p50, p95, max time.Duration
	queriesPerSec float64
}

// measureDelivery subscribes streams streams on one PubSub polling every
// interval, writes msgs messages to random streams as Rails does (through
// another connection pool), one every gap, and measures the time from each
// write to its delivery, and the PubSub's queries per second.
func measureDelivery(tb testing.TB, d solidcable.Dialect, streams, msgs int, interval, gap time.Duration) latencyRun {
	tdb := newTestDB(tb, d)
	db := tdb.open(tb)
	rails := tdb.open(tb)
	ps := newPubSub(tb, db, d, solidcable.Config{PollingInterval: interval, NoAutotrim: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var mu sync.Mutex
	lat := make([]time.Duration, 0, msgs)
	done := make(chan struct{})
	deliver := func(p []byte) {
		sent, err := strconv.ParseInt(string(p), 10, 64)
		if err != nil {
			return
		}
		mu.Lock()
		lat = append(lat, time.Since(time.Unix(0, sent)))
		if len(lat) == msgs {
			close(done)
		}
		mu.Unlock()
	}
	for i := range streams {
		unsub, err := ps.Subscribe(ctx, fmt.Sprintf("bench_%d", i), deliver)
		if err != nil {
			tb.Fatal(err)
		}
		defer unsub()
	}
	stmt := insertText(d)
	start, polls0 := time.Now(), ps.Polls()
	for i := range msgs {
		channel := fmt.Sprintf("bench_%d", rand.IntN(streams))
		now := time.Now()
		_, err := rails.ExecContext(ctx, stmt, solidcable.CreatedAt(now), []byte(channel), []byte(strconv.FormatInt(now.UnixNano(), 10)), solidcable.ChannelHash(channel))
		if err != nil {
			tb.Fatal(err)
		}
		if i < msgs-1 {
			time.Sleep(gap)
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		tb.Fatalf("%d of %d messages delivered after 30s", n, msgs)
	}
	elapsed, polls := time.Since(start), ps.Polls()-polls0
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	return latencyRun{
		p50: lat[len(lat)/2], p95: lat[len(lat)*95/100], max: lat[len(lat)-1],
		queriesPerSec: float64(polls) / elapsed.Seconds(),
	}
}

// TestDeliveryLatency: with 1,000 streams on one node and the gem's default
// polling interval of 100ms, a message is delivered within about half the
// interval plus the query's time (bounds generous for a loaded 2-core
// machine), and the node runs about 10 queries a second.
func TestDeliveryLatency(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			r := measureDelivery(t, d, 1000, 40, 100*time.Millisecond, 17*time.Millisecond)
			t.Logf("1000 streams, 100ms interval: p50 %v p95 %v max %v, %.1f queries/s", r.p50, r.p95, r.max, r.queriesPerSec)
			if r.p50 > 500*time.Millisecond || r.p95 > time.Second {
				t.Errorf("latency p50 %v p95 %v; want under 500ms and 1s", r.p50, r.p95)
			}
			if r.queriesPerSec > 12 {
				t.Errorf("%.1f queries/s; want at most one per 100ms interval", r.queriesPerSec)
			}
		})
	}
}

// BenchmarkDelivery1000Streams measures delivery latency and queries per
// second with 1,000 streams on one node, per database, at the gem's
// default 100ms polling interval; b.N is the number of messages:
//
//	go test -run '^$' -bench Delivery -benchtime 200x ./cable/solidcable/
func BenchmarkDelivery1000Streams(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.String(), func(b *testing.B) {
			r := measureDelivery(b, d, 1000, max(b.N, 2), 100*time.Millisecond, 10*time.Millisecond)
			b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(r.p95.Microseconds())/1000, "p95-ms")
			b.ReportMetric(r.queriesPerSec, "queries/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
