package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress prints a status line to w at a fixed period while a run goes
// on. The line comes from the current phase's function, which is called
// only from progress's own goroutine.
type progress struct {
	w     io.Writer
	start time.Time

	mu   sync.Mutex
	line func(dt time.Duration) string

	stop chan struct{}
	done chan struct{}
}

// startProgress starts printing every period; a period of zero or less
// prints nothing. The caller must call stop.
func startProgress(w io.Writer, period time.Duration) *progress {
	p := &progress{w: w, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	if period <= 0 {
		close(p.done)
		return p
	}
	go p.loop(period) // owner: stop, which waits for it
	return p
}

func (p *progress) loop(period time.Duration) {
	defer close(p.done)
	t := time.NewTicker(period)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			line := p.line
			p.mu.Unlock()
			if line != nil {
				fmt.Fprintf(p.w, "[%5.1fs] %s\n", now.Sub(p.start).Seconds(), line(now.Sub(last)))
			}
			last = now
		}
	}
}

// phase sets the function that makes the status line.
func (p *progress) phase(line func(dt time.Duration) string) {
	p.mu.Lock()
	p.line = line
	p.mu.Unlock()
}

// close stops printing and waits for the printer to exit.
func (p *progress) close() {
	select {
	case <-p.done:
	default:
		close(p.stop)
		<-p.done
	}
}

// counterLine makes lines like "connected 4200/10000 (3900/s)".
func counterLine(label string, n *atomic.Int64, total int) func(time.Duration) string {
	var prev int64
	return func(dt time.Duration) string {
		cur := n.Load()
		r := float64(cur-prev) / dt.Seconds()
		prev = cur
		return fmt.Sprintf("%s %d/%d (%.0f/s)", label, cur, total, r)
	}
}

// textLine makes a fixed line.
func textLine(format string, args ...any) func(time.Duration) string {
	s := fmt.Sprintf(format, args...)
	return func(time.Duration) string { return s }
}
