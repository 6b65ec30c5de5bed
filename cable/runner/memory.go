package runner

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// Returning memory after churn.
//
// The Go runtime keeps heap it has freed for reuse, and its background
// scavenger hands it back to the OS only slowly, so after a crowd of
// connections leaves (a deploy's reconnect storm, a load test, an attack)
// the process stays as large as at the peak for minutes: +306% right
// after a 10 × 2,000 connection soak, +62% five minutes later. An idle
// server also goes up to two minutes without a garbage collection, so the
// departed connections' memory is not even freed. When the connection
// count has fallen well below its recent peak, the runner calls
// debug.FreeOSMemory, which collects and returns every free page at once,
// and does so at most once per --return-memory-interval. A full
// collection costs a few milliseconds of CPU on a heap the size of an
// idle server; it runs on the returner's goroutine, and the world stops
// only for the collector's usual brief pauses.

// memoryPoll is how often the returner looks at the connection count.
const memoryPoll = time.Second

// minMemoryDrop is the smallest fall in connections, from the recent peak,
// worth a full collection: a hundred connections hold a few MiB.
const minMemoryDrop = 100

// memoryConfig is the flag of the memory returner.
type memoryConfig struct {
	interval time.Duration
}

func (c *memoryConfig) register(fs *flag.FlagSet) {
	fs.DurationVar(&c.interval, "return-memory-interval", envDuration("GOCABLE_RETURN_MEMORY_INTERVAL", 10*time.Second),
		"once connections have fallen to half their recent peak or less, return freed memory to the OS, at most this often; 0 never (env GOCABLE_RETURN_MEMORY_INTERVAL)")
}

func (c *memoryConfig) check() error {
	if c.interval < 0 {
		return fmt.Errorf("--return-memory-interval %v: must not be negative (0 turns it off)", c.interval)
	}
	return nil
}

// memoryReturner calls free when the connection count has fallen to half
// its peak since the last call, or less, and by at least minMemoryDrop, at
// most once per interval. Polls may miss a short peak, so the peak counted
// between two polls is the open connections at the first plus those
// accepted in between: a wave that comes and goes within one poll is
// still seen.
type memoryReturner struct {
	// conns returns the open connections and the total ever accepted.
	conns    func() (open int, accepted uint64)
	free     func()
	interval time.Duration
	poll     time.Duration
	logger   *slog.Logger
}

// start runs the returner until ctx ends; the returned function waits for
// it to stop. With a zero interval nothing runs.
func (m *memoryReturner) start(ctx context.Context) (wait func()) {
	if m.interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() { // owner: serve, which cancels ctx on shutdown and calls wait
		defer close(done)
		m.run(ctx)
	}()
	return func() { <-done }
}

func (m *memoryReturner) run(ctx context.Context) {
	t := time.NewTicker(m.poll)
	defer t.Stop()
	prevOpen, prevAccepted := m.conns()
	peak := prevOpen
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, accepted := m.conns()
		peak = max(peak, n, prevOpen+int(accepted-prevAccepted))
		prevOpen, prevAccepted = n, accepted
		if peak-n < minMemoryDrop || n > peak/2 || time.Since(last) < m.interval {
			continue
		}
		start := time.Now()
		m.free()
		last = time.Now()
		m.logger.Debug("returned freed memory to the OS", "conns", n, "peak", peak, "took", last.Sub(start))
		peak = n
	}
}

// newMemoryReturner returns the runner's returner for the server's
// connection count.
func newMemoryReturner(c memoryConfig, conns func() (int, uint64), logger *slog.Logger) *memoryReturner {
	return &memoryReturner{conns: conns, free: debug.FreeOSMemory, interval: c.interval, poll: memoryPoll, logger: logger}
}
