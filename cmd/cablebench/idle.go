package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// IdleResult is the outcome of the idle mode.
type IdleResult struct {
	Conns       int          `json:"conns"`
	Concurrency int          `json:"concurrency"`
	Connected   int          `json:"connected"`
	Failed      int          `json:"failed"`
	Errors      []ErrorCount `json:"errors,omitempty"`
	ConnectS    float64      `json:"connect_s"`
	ConnectRate float64      `json:"connect_per_s"`
	Setup       Summary      `json:"setup"`
	CPU         *CPUUsage    `json:"cpu"` // while connecting
	SettleS     float64      `json:"settle_s"`
	// Alive is how many connections were still open when the server was
	// measured; Pings is how many pings they had received by then.
	Alive int   `json:"alive"`
	Pings int64 `json:"pings"`
	// Server and the per-connection figures need -pid. RSSPerConn uses
	// the RSS at the end of the settle time, RSSMinPerConn the lowest RSS
	// sampled during it.
	Server        *ServerStats `json:"server,omitempty"`
	RSSPerConn    float64      `json:"rss_per_conn_bytes,omitempty"`
	RSSMinPerConn float64      `json:"rss_min_per_conn_bytes,omitempty"`
	// RSSSamples is the server's RSS sampled every second while settling.
	RSSSamples []int64 `json:"rss_samples_bytes,omitempty"`
}

func (r *IdleResult) failures() int { return r.Failed + r.Connected - r.Alive }

func (r *IdleResult) rows() []row {
	rows := []row{
		{"connections", ""},
		{"requested", fmt.Sprintf("%d at concurrency %d", r.Conns, r.Concurrency)},
		{"connected", fmt.Sprintf("%d (%d failed)", r.Connected, r.Failed)},
		{"connect time", fmt.Sprintf("%.2fs (%.0f/s)", r.ConnectS, r.ConnectRate)},
		summaryRow("setup latency", r.Setup),
		r.CPU.row(),
		{"alive after settle", fmt.Sprintf("%d of %d (%d pings received)", r.Alive, r.Connected, r.Pings)},
	}
	rows = append(rows, errorRows(r.Errors)...)
	if s := r.Server; s != nil {
		rows = append(rows,
			row{fmt.Sprintf("server (pid %d), after %.0fs settle", s.PID, r.SettleS), ""},
			row{"RSS before", fmtBytes(float64(s.RSSBefore))},
			row{"RSS after", fmt.Sprintf("%s (lowest while settling %s, peak %s)", fmtBytes(float64(s.RSSAfter)), fmtBytes(float64(s.RSSMin)), fmtBytes(float64(s.RSSPeak)))},
			row{"RSS per connection", fmt.Sprintf("%s (%.0f B; lowest %.0f B)", fmtBytes(r.RSSPerConn), r.RSSPerConn, r.RSSMinPerConn)},
			row{"threads", fmt.Sprintf("%d -> %d", s.ThreadsBefore, s.ThreadsAfter)},
		)
	}
	return rows
}

// runIdle opens o.n subscribed connections, holds them for o.settle while
// sampling the server's RSS, then closes them.
func runIdle(ctx context.Context, o *options, prog *progress) (*IdleResult, error) {
	t := newTarget(o)
	res := &IdleResult{Conns: o.n, Concurrency: o.c, SettleS: o.settle.Seconds()}
	if o.pid > 0 {
		s := &ServerStats{PID: o.pid}
		var err error
		if s.RSSBefore, err = readRSS(o.pid); err != nil {
			return nil, err
		}
		s.ThreadsBefore, _ = readThreads(o.pid)
		res.Server = s
	}

	var connected atomic.Int64
	prog.phase(counterLine("connected", &connected, o.n))
	cpu := startCPU(o.pid)
	dr := connectAll(ctx, t, o.n, o.c, true, &connected)
	res.CPU = cpu.stop("connecting")
	res.Connected = dr.connected
	res.Failed = o.n - dr.connected
	res.ConnectS = dr.wall.Seconds()
	res.ConnectRate = rate(dr.connected, dr.wall)
	res.Setup = summarize(dr.setup)

	// Read every connection, as a real client does, counting pings.
	var alive, pings atomic.Int64
	alive.Store(int64(len(dr.clients)))
	var wg sync.WaitGroup
	for _, c := range dr.clients {
		wg.Go(func() {
			defer alive.Add(-1)
			for {
				f, err := c.next()
				if err != nil {
					return
				}
				if f.Type == typePing {
					pings.Add(1)
				}
			}
		})
	}
	defer func() {
		closeAll(dr.clients, o.c)
		wg.Wait()
	}()

	var rss atomic.Int64
	prog.phase(func(time.Duration) string {
		line := fmt.Sprintf("holding %d/%d connections, %d pings", alive.Load(), dr.connected, pings.Load())
		if v := rss.Load(); v > 0 {
			line += ", server RSS " + fmtBytes(float64(v))
		}
		return line
	})
	if err := settle(ctx, o, res, &rss); err != nil {
		return nil, err
	}
	res.Alive = int(alive.Load())
	res.Pings = pings.Load()
	res.Errors = dr.errors.top(5)
	if s := res.Server; s != nil && res.Connected > 0 {
		res.RSSPerConn = float64(s.RSSAfter-s.RSSBefore) / float64(res.Connected)
		res.RSSMinPerConn = float64(s.RSSMin-s.RSSBefore) / float64(res.Connected)
	}

	if o.hold > 0 {
		prog.phase(textLine("holding %d connections for %v", res.Alive, o.hold))
		select {
		case <-time.After(o.hold):
		case <-ctx.Done():
		}
	}
	prog.phase(textLine("closing %d connections", len(dr.clients)))
	return res, nil
}

// settle waits o.settle, sampling the server's RSS every second into res
// and the latest sample into rss.
func settle(ctx context.Context, o *options, res *IdleResult, rss *atomic.Int64) error {
	s := res.Server
	sample := func() error {
		if s == nil {
			return nil
		}
		v, err := readRSS(o.pid)
		if err != nil {
			return err
		}
		rss.Store(v)
		res.RSSSamples = append(res.RSSSamples, v)
		if s.RSSMin == 0 || v < s.RSSMin {
			s.RSSMin = v
		}
		s.RSSAfter = v
		return nil
	}
	if err := sample(); err != nil {
		return err
	}
	end := time.Now().Add(o.settle)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cablebench: settling: %w", context.Cause(ctx))
		case <-tick.C:
		case <-time.After(time.Until(end)):
		}
		if err := sample(); err != nil {
			return err
		}
	}
	if s != nil {
		st, err := procStatus(o.pid)
		if err != nil {
			return err
		}
		if hwm, err := statusField(st, "VmHWM"); err == nil {
			s.RSSPeak = hwm * 1024
		}
		s.ThreadsAfter, _ = statusField(st, "Threads")
	}
	return nil
}
