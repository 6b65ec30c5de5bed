package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Soak caps: no flag can ask for more.
const (
	maxWaves     = 1000
	maxSoakConns = 1_000_000 // waves × connections per wave
)

// checkSoak validates the soak flags; u is the parsed -url.
func (o *options) checkSoak(u *url.URL) error {
	if o.waves < 1 || o.waves > maxWaves {
		return fmt.Errorf("cablebench: -waves %d: want 1 to %d", o.waves, maxWaves)
	}
	if o.waves*o.n > maxSoakConns {
		return fmt.Errorf("cablebench: -waves × -n = %d connections: at most %d", o.waves*o.n, maxSoakConns)
	}
	if err := inRange("every", o.every, 10*time.Millisecond, maxInterval); err != nil {
		return err
	}
	if o.tolerance <= 0 || o.tolerance > 1000 || math.IsNaN(o.tolerance) {
		return fmt.Errorf("cablebench: -tolerance %v: want more than 0 and at most 1000 (percent)", o.tolerance)
	}
	switch o.metricsURL {
	case "none":
		if o.pid == 0 {
			return fmt.Errorf("cablebench: -metrics-url none needs -pid")
		}
		return nil
	case "":
		o.metricsURL = defaultMetricsURL(u)
	}
	mu, err := url.Parse(o.metricsURL)
	if err != nil {
		return fmt.Errorf("cablebench: -metrics-url: %w", err)
	}
	if mu.Scheme != "http" && mu.Scheme != "https" {
		return fmt.Errorf("cablebench: -metrics-url %q: want http:// or https://", o.metricsURL)
	}
	if err := checkHost(mu, o.allowRemote); err != nil {
		return fmt.Errorf("cablebench: -metrics-url: %w", err)
	}
	return nil
}

// closeWait bounds how long a soak waits, after closing a wave, for the
// server's connection count to come back to the baseline.
const closeWait = 10 * time.Second

// SoakResult is the outcome of the soak mode.
type SoakResult struct {
	Waves        int          `json:"waves"`
	ConnsPerWave int          `json:"conns_per_wave"`
	Concurrency  int          `json:"concurrency"`
	Connected    int          `json:"connected"`
	Failed       int          `json:"failed"`
	Resets       int          `json:"resets"`       // connections ended by a TCP reset
	CleanCloses  int          `json:"clean_closes"` // connections ended by a close frame
	Errors       []ErrorCount `json:"errors,omitempty"`
	ChurnS       float64      `json:"churn_s"`
	Setup        Summary      `json:"setup"`
	CPU          *CPUUsage    `json:"cpu"` // while churning
	// Lingering is how many connections the server still counted, over
	// the baseline, closeWait after a wave was closed, summed over waves.
	Lingering int `json:"lingering"`
	// Samples are the server's figures: "before", each wave's "peak"
	// (all its connections open), "after" (the last wave closed) and
	// then one every -every until -settle has passed.
	Samples []ServerSample `json:"samples"`
	// TolerancePercent is the verdict's bound on RSS around the
	// baseline; ReturnedAfterS is the time from the end of the last wave
	// to the first sample within it (-1: never), FinalRSSPercent the
	// last sample's RSS against the baseline, MemoryReturned the verdict:
	// the last sample is within the bound.
	TolerancePercent float64 `json:"tolerance_percent"`
	SettleS          float64 `json:"settle_s"`
	ReturnedAfterS   float64 `json:"returned_after_s"`
	AfterRSSPercent  float64 `json:"after_rss_percent"`
	FinalRSSPercent  float64 `json:"final_rss_percent"`
	MemoryReturned   bool    `json:"memory_returned"`
}

// failures counts failed connections, and one for a verdict of memory
// not returned.
func (r *SoakResult) failures() int {
	f := r.Failed
	if !r.MemoryReturned {
		f++
	}
	return f
}

func (r *SoakResult) rows() []row {
	rows := []row{
		{"churn", ""},
		{"waves", fmt.Sprintf("%d × %d connections at concurrency %d, each subscribed", r.Waves, r.ConnsPerWave, r.Concurrency)},
		{"connected", fmt.Sprintf("%d (%d failed)", r.Connected, r.Failed)},
		{"ended", fmt.Sprintf("%d by TCP reset, %d by close frame", r.Resets, r.CleanCloses)},
		{"churn time", fmt.Sprintf("%.1fs", r.ChurnS)},
		summaryRow("setup latency", r.Setup),
		r.CPU.row(),
	}
	if r.Lingering > 0 {
		rows = append(rows, row{"lingering", fmt.Sprintf("%d connections still counted %v after their wave closed", r.Lingering, closeWait)})
	}
	rows = append(rows, errorRows(r.Errors)...)
	rows = append(rows, row{"server", ""})
	for _, s := range r.Samples {
		rows = append(rows, row{fmt.Sprintf("%s (%.1fs)", s.Label, s.AtS), s.String()})
	}
	verdict := fmt.Sprintf("NOT within ±%.0f%% of the baseline by %.0fs (right after %+.1f%%, final %+.1f%%)",
		r.TolerancePercent, r.SettleS, r.AfterRSSPercent, r.FinalRSSPercent)
	if r.MemoryReturned {
		verdict = fmt.Sprintf("within ±%.0f%% of the baseline %.1fs after the last wave (right after %+.1f%%, final %+.1f%%)",
			r.TolerancePercent, r.ReturnedAfterS, r.AfterRSSPercent, r.FinalRSSPercent)
	}
	return append(rows, row{"memory", verdict})
}

// runSoak churns o.waves waves of o.n subscribed connections, each wave
// ended half by TCP reset and half by a close frame, and follows the
// server's resources until o.settle after the last wave.
func runSoak(ctx context.Context, o *options, prog *progress) (*SoakResult, error) {
	start := time.Now()
	p, err := newProbe(ctx, o)
	if err != nil {
		return nil, err
	}
	t := newTarget(o)
	res := &SoakResult{Waves: o.waves, ConnsPerWave: o.n, Concurrency: o.c, TolerancePercent: o.tolerance,
		SettleS: o.settle.Seconds(), ReturnedAfterS: -1}
	before, err := p.sample(ctx, "before", start)
	if err != nil {
		return nil, err
	}
	res.Samples = append(res.Samples, before)

	var setup []time.Duration
	var wave, connected atomic.Int64
	prog.phase(func(dt time.Duration) string {
		return fmt.Sprintf("wave %d/%d, connected %d/%d", wave.Load(), o.waves, connected.Load(), o.n)
	})
	cpu := startCPU(o.pid)
	var errs errorTally
	for w := 1; w <= o.waves && ctx.Err() == nil; w++ {
		wave.Store(int64(w))
		connected.Store(0)
		dr := connectAll(ctx, t, o.n, o.c, true, &connected)
		res.Connected += dr.connected
		res.Failed += o.n - dr.connected
		setup = append(setup, dr.setup...)
		errs.merge(&dr.errors)
		peak, err := p.sample(ctx, fmt.Sprintf("wave %d peak", w), start)
		if err != nil {
			closeAll(dr.clients, o.c)
			return nil, err
		}
		res.Samples = append(res.Samples, peak)
		resets := endAll(dr.clients, o.c)
		res.Resets += resets
		res.CleanCloses += len(dr.clients) - resets
		res.Lingering += p.waitConns(ctx, before.Connections, before.Streams)
	}
	res.CPU = cpu.stop("churning")
	res.ChurnS = time.Since(start).Seconds()
	res.Setup = summarize(setup)
	res.Errors = errs.top(5)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("cablebench: soak: %w", context.Cause(ctx))
	}

	end := time.Now()
	after, err := p.sample(ctx, "after", start)
	if err != nil {
		return nil, err
	}
	res.Samples = append(res.Samples, after)
	first := len(res.Samples) - 1
	var lastRSS atomic.Int64
	lastRSS.Store(after.RSS)
	prog.phase(func(time.Duration) string {
		return fmt.Sprintf("settling %.1fs/%.1fs, server RSS %s", time.Since(end).Seconds(), o.settle.Seconds(), fmtBytes(float64(lastRSS.Load())))
	})
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	deadline := end.Add(o.settle)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cablebench: settling: %w", context.Cause(ctx))
		case <-tick.C:
		case <-time.After(time.Until(deadline)):
		}
		s, err := p.sample(ctx, fmt.Sprintf("+%.1fs", time.Since(end).Seconds()), start)
		if err != nil {
			return nil, err
		}
		res.Samples = append(res.Samples, s)
		lastRSS.Store(s.RSS)
	}
	res.judge(first)
	return res, nil
}

// judge sets the verdict from the samples: the first is the baseline,
// and those from index after on follow the end of the last wave.
func (r *SoakResult) judge(after int) {
	r.ReturnedAfterS, r.MemoryReturned = -1, false
	if len(r.Samples) == 0 || after < 1 || after >= len(r.Samples) {
		return
	}
	base := r.Samples[0].RSS
	if base <= 0 {
		return // no RSS: no verdict
	}
	pct := func(s ServerSample) float64 { return 100 * float64(s.RSS-base) / float64(base) }
	within := func(s ServerSample) bool { return s.RSS >= 0 && math.Abs(pct(s)) <= r.TolerancePercent }
	end := r.Samples[after].AtS
	for _, s := range r.Samples[after:] {
		if within(s) {
			r.ReturnedAfterS = s.AtS - end
			break
		}
	}
	last := r.Samples[len(r.Samples)-1]
	r.AfterRSSPercent = pct(r.Samples[after])
	r.FinalRSSPercent = pct(last)
	r.MemoryReturned = within(last)
}

// endAll ends clients, conc at a time: every other one by a TCP reset
// (SO_LINGER 0, then close: the peer vanishes without a close frame), the
// rest by a close frame. It returns how many were reset.
func endAll(clients []*client, conc int) int {
	var next, resets atomic.Int64
	var wg sync.WaitGroup
	for range min(conc, len(clients)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(clients) {
					return
				}
				if i%2 == 0 && clients[i].reset() {
					resets.Add(1)
					continue
				}
				clients[i].close()
			}
		})
	}
	wg.Wait()
	return int(resets.Load())
}

// reset ends the connection with a TCP RST; it reports false, having
// done nothing, if the socket is not TCP.
func (c *client) reset() bool {
	tc, ok := c.ws.NetConn().(*net.TCPConn)
	if !ok || tc.SetLinger(0) != nil {
		return false
	}
	c.ws.Close()
	return true
}

// waitConns waits up to closeWait for the server to count at most base
// connections and baseStreams streams (a stream is let go just after its
// last connection), and returns how many more connections it still counts
// (0 without /metrics, after a short pause).
func (p *probe) waitConns(ctx context.Context, base, baseStreams int64) int {
	if p.metricsURL == "" || base < 0 {
		time.Sleep(500 * time.Millisecond)
		return 0
	}
	deadline := time.Now().Add(closeWait)
	for {
		m, err := p.scrape(ctx)
		if err != nil {
			return 0
		}
		n := int64(m["gocable_connections"])
		if n <= base && (baseStreams < 0 || int64(m["gocable_streams"]) <= baseStreams) {
			return 0
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return int(max(n-base, 0))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// merge adds the counts of o to t.
func (t *errorTally) merge(o *errorTally) {
	o.mu.Lock()
	counts := make(map[string]int, len(o.counts))
	for msg, n := range o.counts {
		counts[msg] = n
	}
	o.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = make(map[string]int)
	}
	for msg, n := range counts {
		if _, ok := t.counts[msg]; !ok && len(t.counts) >= 100 {
			msg = "(other errors)"
		}
		t.counts[msg] += n
		t.total += n
	}
}
