package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// EchoResult is the outcome of the echo mode.
type EchoResult struct {
	Conns        int          `json:"conns"`
	Connected    int          `json:"connected"`
	RoundTrips   int          `json:"round_trips"`
	Completed    int          `json:"completed"`
	Failed       int          `json:"failed"`
	Errors       []ErrorCount `json:"errors,omitempty"`
	PayloadBytes int          `json:"payload_bytes"`
	WallS        float64      `json:"wall_s"`
	Rate         float64      `json:"per_s"`
	// RTT is perform (the message command written) to the echo's
	// transmit read.
	RTT Summary `json:"rtt"`
	// CPU is measured over the round trips.
	CPU *CPUUsage `json:"cpu,omitempty"`
}

func (r *EchoResult) failures() int { return r.Failed + r.Conns - r.Connected }

func (r *EchoResult) rows() []row {
	rows := []row{
		{"round trips", ""},
		{"connections", fmt.Sprintf("%d (%d connected)", r.Conns, r.Connected)},
		{"completed", fmt.Sprintf("%d of %d (%d failed), %d-byte payload", r.Completed, r.RoundTrips, r.Failed, r.PayloadBytes)},
		{"rate", fmt.Sprintf("%.0f round trips/s (%.2fs)", r.Rate, r.WallS)},
		summaryRow("perform -> transmit", r.RTT),
	}
	if r.CPU != nil {
		rows = append(rows, r.CPU.row())
	}
	return append(rows, errorRows(r.Errors)...)
}

// runEcho performs o.k echo actions over o.c connections, each waiting for
// its reply before sending the next.
func runEcho(ctx context.Context, o *options, prog *progress) (*EchoResult, error) {
	epoch := time.Now()
	t := newTarget(o)
	run := newRunToken()
	res := &EchoResult{
		Conns:        o.c,
		RoundTrips:   o.k,
		PayloadBytes: len(appendPayload(nil, actionEcho, run, int64(o.k), int64(time.Hour), o.pad)),
	}
	var connected atomic.Int64
	prog.phase(counterLine("connected", &connected, o.c))
	dr := connectAll(ctx, t, o.c, o.c, true, &connected)
	defer closeAll(dr.clients, o.c)
	res.Connected = dr.connected
	conns := dr.clients
	if len(conns) == 0 {
		res.Errors = dr.errors.top(5)
		res.Failed = o.k
		return res, nil
	}

	// A round trip waits up to -dial-timeout for its echo; closing the
	// sockets when ctx ends (-timeout) ends those waits at once.
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.ws.Close()
		}
	})
	defer stop()

	var done atomic.Int64
	prog.phase(counterLine("round trips", &done, o.k))
	rtts := make([][]time.Duration, len(conns))
	var errs errorTally
	var wg sync.WaitGroup
	start := time.Now()
	cpu := startCPU(o.pid)
	for i, c := range conns {
		share := o.k / len(conns)
		if i < o.k%len(conns) {
			share++
		}
		wg.Go(func() {
			rt := make([]time.Duration, 0, share)
			defer func() { rtts[i] = rt }()
			var buf []byte
			for seq := range share {
				if ctx.Err() != nil {
					errs.add(fmt.Errorf("cablebench: echo: %w", context.Cause(ctx)))
					return
				}
				sent := int64(time.Since(epoch))
				buf = appendPayload(buf[:0], actionEcho, run, int64(seq), sent, o.pad)
				if err := c.perform(t, buf); err != nil {
					errs.add(fmt.Errorf("cablebench: perform echo: %w", err))
					return
				}
				c.ws.SetReadDeadline(time.Now().Add(o.dialTimeout))
				for {
					f, err := c.next()
					if err != nil {
						errs.add(fmt.Errorf("cablebench: waiting for the echo: %w", err))
						return
					}
					if f.Type != "" {
						continue
					}
					recv := int64(time.Since(epoch))
					p, ok := parsePayload(f.Message)
					if ok && p.Action == actionEcho && p.Seq == int64(seq) && bytes.Equal(p.Run, run) {
						rt = append(rt, time.Duration(recv-p.Sent))
						done.Add(1)
						break
					}
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	res.CPU = cpu.stop("round-tripping")
	var all []time.Duration
	for _, rt := range rtts {
		all = append(all, rt...)
	}
	res.Completed = len(all)
	res.Failed = o.k - res.Completed
	res.WallS = wall.Seconds()
	res.Rate = rate(res.Completed, wall)
	res.RTT = summarize(all)
	res.Errors = append(dr.errors.top(5), errs.top(5)...)
	return res, nil
}
