package main

import (
	"context"
	"fmt"
	"sync/atomic"
)

// ConnectResult is the outcome of the connect mode.
type ConnectResult struct {
	Conns       int          `json:"conns"`
	Concurrency int          `json:"concurrency"`
	Keep        bool         `json:"keep"`
	Connected   int          `json:"connected"`
	Failed      int          `json:"failed"`
	Aborted     bool         `json:"aborted,omitempty"`
	Errors      []ErrorCount `json:"errors,omitempty"`
	WallS       float64      `json:"wall_s"`
	Rate        float64      `json:"per_s"`
	// Setup is dial to confirm_subscription; Handshake dial to the 101
	// response; Subscribe the subscribe command to its confirmation.
	Setup     Summary `json:"setup"`
	Handshake Summary `json:"handshake"`
	Subscribe Summary `json:"subscribe"`
	// CPU is measured while connecting; ServerCPUPerConnUS needs -pid.
	CPU                *CPUUsage `json:"cpu"`
	ServerCPUPerConnUS float64   `json:"server_cpu_per_conn_us,omitempty"`
}

func (r *ConnectResult) failures() int { return r.Failed }

func (r *ConnectResult) rows() []row {
	mode := "each closed once confirmed"
	if r.Keep {
		mode = "all kept open until the end"
	}
	rows := []row{
		{"connections", ""},
		{"requested", fmt.Sprintf("%d at concurrency %d, %s", r.Conns, r.Concurrency, mode)},
		{"connected", fmt.Sprintf("%d (%d failed)", r.Connected, r.Failed)},
		{"rate", fmt.Sprintf("%.0f connect+subscribe/s (%.2fs)", r.Rate, r.WallS)},
		summaryRow("setup (dial to confirm)", r.Setup),
		summaryRow("handshake (dial to 101)", r.Handshake),
		summaryRow("subscribe (to confirm)", r.Subscribe),
	}
	rows = append(rows, r.CPU.row())
	if r.ServerCPUPerConnUS > 0 {
		rows = append(rows, row{"server CPU per connection", fmt.Sprintf("%.0f µs", r.ServerCPUPerConnUS)})
	}
	if r.Aborted {
		rows = append(rows, row{"aborted", "too many failures"})
	}
	return append(rows, errorRows(r.Errors)...)
}

// runConnect opens o.n connections, o.c at a time, each subscribing and
// then closing (or staying open with o.keep).
func runConnect(ctx context.Context, o *options, prog *progress) (*ConnectResult, error) {
	t := newTarget(o)
	var connected atomic.Int64
	prog.phase(counterLine("connected", &connected, o.n))
	cpu := startCPU(o.pid)
	dr := connectAll(ctx, t, o.n, o.c, o.keep, &connected)
	usage := cpu.stop("connecting")
	if o.keep {
		prog.phase(textLine("closing %d connections", len(dr.clients)))
		closeAll(dr.clients, o.c)
	}
	r := &ConnectResult{
		Conns:       o.n,
		Concurrency: o.c,
		Keep:        o.keep,
		Connected:   dr.connected,
		Failed:      o.n - dr.connected,
		Aborted:     dr.aborted,
		Errors:      dr.errors.top(5),
		WallS:       dr.wall.Seconds(),
		Rate:        rate(dr.connected, dr.wall),
		Setup:       summarize(dr.setup),
		Handshake:   summarize(dr.handshake),
		Subscribe:   summarize(dr.subscribe),
		CPU:         usage,
	}
	if dr.connected > 0 && usage.ServerS > 0 {
		r.ServerCPUPerConnUS = usage.ServerS * 1e6 / float64(dr.connected)
	}
	return r, nil
}
