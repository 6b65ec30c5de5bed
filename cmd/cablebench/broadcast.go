package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BroadcastResult is the outcome of the broadcast mode.
type BroadcastResult struct {
	Subscribers int          `json:"subscribers"`
	Concurrency int          `json:"concurrency"`
	Connected   int          `json:"connected"`
	Failed      int          `json:"failed"`
	Errors      []ErrorCount `json:"errors,omitempty"`
	ConnectS    float64      `json:"connect_s"`
	// Via is "action" (the channel's broadcast action, performed by one
	// extra connection) or the publish URL.
	Via          string  `json:"via"`
	Messages     int     `json:"messages"`
	Sent         int     `json:"sent"`
	SendErrors   int     `json:"send_errors"`
	IntervalMS   float64 `json:"interval_ms"`
	PayloadBytes int     `json:"payload_bytes"`
	// Acks counts the broadcastResult transmits the sender got back.
	Acks int64 `json:"acks,omitempty"`

	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Missing    int64 `json:"missing"`
	Duplicates int64 `json:"duplicates"`
	Stray      int64 `json:"stray"`
	// Dropped counts subscribers the server disconnected during the run.
	Dropped int64 `json:"dropped"`

	// Delivery is per delivered message: send to receipt. FanOut is per
	// message: send to receipt by the last subscriber that got it.
	Delivery Summary `json:"delivery"`
	FanOut   Summary `json:"fanout"`

	// WindowS is the time from the first send to the last delivery (or
	// the end of -drain), over which the server's CPU is measured.
	WindowS float64      `json:"window_s"`
	Server  *ServerStats `json:"server,omitempty"`
	// CPUPerDeliveryUS is the server's CPU time over the window divided
	// by the deliveries; NetCPUPerDeliveryUS first subtracts the CPU the
	// idle server used at the rate measured by -baseline (heartbeats).
	CPUPerDeliveryUS    float64 `json:"cpu_per_delivery_us,omitempty"`
	NetCPUPerDeliveryUS float64 `json:"net_cpu_per_delivery_us,omitempty"`
	// CPU is the server's and cablebench's CPU over the window.
	CPU *CPUUsage `json:"cpu,omitempty"`
}

func (r *BroadcastResult) failures() int {
	return r.Failed + r.SendErrors + int(r.Missing) + int(r.Dropped)
}

func (r *BroadcastResult) rows() []row {
	rows := []row{
		{"subscribers", ""},
		{"requested", fmt.Sprintf("%d at concurrency %d", r.Subscribers, r.Concurrency)},
		{"connected", fmt.Sprintf("%d (%d failed) in %.2fs", r.Connected, r.Failed, r.ConnectS)},
		{"broadcasts", ""},
		{"via", r.Via},
		{"sent", fmt.Sprintf("%d of %d, %.0f ms apart, %d-byte payload (%d send errors)", r.Sent, r.Messages, r.IntervalMS, r.PayloadBytes, r.SendErrors)},
		{"deliveries", ""},
		{"delivered", fmt.Sprintf("%d of %d", r.Delivered, r.Expected)},
		{"missing", strconv.FormatInt(r.Missing, 10)},
		{"duplicates / stray", fmt.Sprintf("%d / %d", r.Duplicates, r.Stray)},
		{"subscribers dropped", strconv.FormatInt(r.Dropped, 10)},
		summaryRow("delivery latency", r.Delivery),
		summaryRow("fan-out time", r.FanOut),
	}
	if r.Via == "action" {
		rows = append(rows, row{"broadcastResult acks", strconv.FormatInt(r.Acks, 10)})
	}
	if r.CPU != nil {
		rows = append(rows, r.CPU.row())
	}
	rows = append(rows, errorRows(r.Errors)...)
	if s := r.Server; s != nil {
		rows = append(rows,
			row{fmt.Sprintf("server (pid %d), over %.2fs", s.PID, r.WindowS), ""},
			row{"CPU", fmt.Sprintf("%.2fs (idle rate %.2f%% of a core)", s.CPUSeconds, s.IdleCPUPercent)},
			row{"CPU per delivered message", fmt.Sprintf("%.2f µs (%.2f µs net of idle)", r.CPUPerDeliveryUS, r.NetCPUPerDeliveryUS)},
			row{"RSS", fmt.Sprintf("%s -> %s", fmtBytes(float64(s.RSSBefore)), fmtBytes(float64(s.RSSAfter)))},
		)
	}
	return rows
}

// newRunToken returns a random JSON string token that marks this run's
// payloads.
func newRunToken() []byte {
	var b [4]byte
	rand.Read(b[:])
	return []byte(`"` + hex.EncodeToString(b[:]) + `"`)
}

// publisher sends one broadcast.
type publisher interface {
	publish(ctx context.Context, seq int, data []byte) error
	close()
}

// actionPublisher performs the channel's broadcast action on its own
// connection and counts the broadcastResult replies.
type actionPublisher struct {
	t    *target
	c    *client
	acks atomic.Int64
	wg   sync.WaitGroup
}

func newActionPublisher(ctx context.Context, t *target, run []byte) (*actionPublisher, error) {
	c, _, err := t.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("cablebench: sender connection: %w", err)
	}
	p := &actionPublisher{t: t, c: c}
	p.wg.Go(func() {
		for {
			f, err := c.next()
			if err != nil {
				return
			}
			if f.Type != "" {
				continue
			}
			if pl, ok := parsePayload(f.Message); ok && pl.Action == actionBroadcastResult && bytes.Equal(pl.Run, run) {
				p.acks.Add(1)
			}
		}
	})
	return p, nil
}

func (p *actionPublisher) publish(_ context.Context, _ int, data []byte) error {
	if err := p.c.perform(p.t, data); err != nil {
		return fmt.Errorf("cablebench: perform broadcast: %w", err)
	}
	return nil
}

func (p *actionPublisher) close() {
	p.c.close()
	p.wg.Wait()
}

// httpPublisher POSTs the body template to a URL.
type httpPublisher struct {
	url    string
	body   string
	header http.Header
	tr     *http.Transport
	client *http.Client
}

func newHTTPPublisher(o *options) *httpPublisher {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         guardedDial(o.allowRemote),
		MaxIdleConnsPerHost: 4,
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	for _, kv := range o.publishHdr {
		k, v, _ := strings.Cut(kv, ":")
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return &httpPublisher{
		url:    o.publishURL,
		body:   o.publishBody,
		header: h,
		tr:     tr,
		client: &http.Client{Transport: tr, Timeout: o.dialTimeout},
	}
}

// expandBody fills the body template.
func expandBody(tmpl string, seq int, data []byte) string {
	return strings.NewReplacer(
		"{{data}}", string(data),
		"{{data_json}}", string(appendJSONString(nil, string(data))),
		"{{seq}}", strconv.Itoa(seq),
	).Replace(tmpl)
}

func (p *httpPublisher) publish(ctx context.Context, seq int, data []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, strings.NewReader(expandBody(p.body, seq, data)))
	if err != nil {
		return fmt.Errorf("cablebench: publish: %w", err)
	}
	req.Header = p.header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("cablebench: publish: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cablebench: publish: HTTP %s", resp.Status)
	}
	return nil
}

func (p *httpPublisher) close() { p.tr.CloseIdleConnections() }

// runBroadcast connects o.n subscribers, sends o.m broadcasts o.interval
// apart, and waits up to o.drain after the last one for the deliveries.
func runBroadcast(ctx context.Context, o *options, prog *progress) (*BroadcastResult, error) {
	epoch := time.Now()
	t := newTarget(o)
	run := newRunToken()
	res := &BroadcastResult{
		Subscribers:  o.n,
		Concurrency:  o.c,
		Via:          "action",
		Messages:     o.m,
		IntervalMS:   ms(o.interval),
		PayloadBytes: len(appendPayload(nil, actionBroadcast, run, int64(o.m), int64(time.Hour), o.pad)),
	}
	if o.publishURL != "" {
		res.Via = o.publishURL
	}

	var connected atomic.Int64
	prog.phase(counterLine("subscribed", &connected, o.n))
	dr := connectAll(ctx, t, o.n, o.c, true, &connected)
	subs := dr.clients
	n := len(subs)
	res.Connected = n
	res.Failed = o.n - n
	res.ConnectS = dr.wall.Seconds()

	// slots[seq*n+i] is subscriber i's latency for message seq, in
	// nanoseconds; 0 means not delivered.
	slots := make([]int64, o.m*n)
	var delivered, dups, stray, dropped atomic.Int64
	var closing atomic.Bool
	var wg sync.WaitGroup
	for i, c := range subs {
		wg.Go(func() {
			for {
				f, err := c.next()
				if err != nil {
					if !closing.Load() {
						dropped.Add(1)
					}
					return
				}
				if f.Type != "" || f.Message == nil {
					continue
				}
				recv := int64(time.Since(epoch))
				p, ok := parsePayload(f.Message)
				if !ok || !bytes.Equal(p.Run, run) || p.Action == actionBroadcastResult || p.Action == actionEcho {
					continue
				}
				if p.Seq < 0 || p.Seq >= int64(o.m) {
					stray.Add(1)
					continue
				}
				if atomic.CompareAndSwapInt64(&slots[int(p.Seq)*n+i], 0, max(recv-p.Sent, 1)) {
					delivered.Add(1)
				} else {
					dups.Add(1)
				}
			}
		})
	}
	defer func() {
		closing.Store(true)
		closeAll(subs, o.c)
		wg.Wait()
	}()
	if n == 0 {
		res.Errors = dr.errors.top(5)
		return res, nil
	}

	var pub publisher
	if o.publishURL != "" {
		pub = newHTTPPublisher(o)
	} else {
		ap, err := newActionPublisher(ctx, t, run)
		if err != nil {
			return nil, err
		}
		pub = ap
	}
	defer pub.close()

	var server *ServerStats
	if o.pid > 0 {
		server = &ServerStats{PID: o.pid}
		res.Server = server
		if o.baseline > 0 {
			prog.phase(textLine("measuring the idle server's CPU for %v", o.baseline))
			c0, err := readCPU(o.pid)
			if err != nil {
				return nil, err
			}
			b0 := time.Now()
			if err := sleep(ctx, o.baseline); err != nil {
				return nil, err
			}
			c1, err := readCPU(o.pid)
			if err != nil {
				return nil, err
			}
			server.IdleCPUPercent = 100 * float64(c1-c0) / float64(time.Since(b0))
		}
		var err error
		if server.RSSBefore, err = readRSS(o.pid); err != nil {
			return nil, err
		}
	}

	var sent atomic.Int64
	prog.phase(func(time.Duration) string {
		return fmt.Sprintf("broadcast %d/%d, delivered %d/%d", sent.Load(), o.m, delivered.Load(), sent.Load()*int64(n))
	})
	var cpu0 time.Duration
	if server != nil {
		var err error
		if cpu0, err = readCPU(o.pid); err != nil {
			return nil, err
		}
	}
	var sendErrs errorTally
	okSent := make([]bool, o.m)
	meter := startCPU(o.pid)
	begin := time.Now()
	var buf []byte
	for j := range o.m {
		if err := sleep(ctx, time.Until(begin.Add(time.Duration(j)*o.interval))); err != nil {
			sendErrs.add(err)
			break
		}
		buf = appendPayload(buf[:0], actionBroadcast, run, int64(j), int64(time.Since(epoch)), o.pad)
		if err := pub.publish(ctx, j, buf); err != nil {
			sendErrs.add(err)
			continue
		}
		okSent[j] = true
		sent.Add(1)
	}
	res.Sent = int(sent.Load())
	res.SendErrors = sendErrs.Total()
	res.Expected = int64(res.Sent) * int64(n)

	// Wait for the deliveries, or the end of the drain time.
	drainEnd := time.Now().Add(o.drain)
	for delivered.Load() < res.Expected && time.Now().Before(drainEnd) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	window := time.Since(begin)
	res.WindowS = window.Seconds()
	res.CPU = meter.stop("broadcasting")
	if server != nil {
		cpu1, err := readCPU(o.pid)
		if err != nil {
			return nil, err
		}
		if server.RSSAfter, err = readRSS(o.pid); err != nil {
			return nil, err
		}
		cpu := cpu1 - cpu0
		server.CPUSeconds = cpu.Seconds()
		if d := delivered.Load(); d > 0 {
			res.CPUPerDeliveryUS = float64(cpu) / float64(time.Microsecond) / float64(d)
			idle := time.Duration(server.IdleCPUPercent / 100 * float64(window))
			res.NetCPUPerDeliveryUS = float64(cpu-idle) / float64(time.Microsecond) / float64(d)
		}
	}

	res.Delivered = delivered.Load()
	res.Missing = res.Expected - res.Delivered
	res.Duplicates = dups.Load()
	res.Stray = stray.Load()
	res.Dropped = dropped.Load()
	if ap, ok := pub.(*actionPublisher); ok {
		res.Acks = ap.acks.Load()
	}

	lat := make([]time.Duration, 0, res.Delivered)
	var fan []time.Duration
	for j := range o.m {
		if !okSent[j] {
			continue
		}
		var last int64
		for i := range n {
			if v := atomic.LoadInt64(&slots[j*n+i]); v > 0 {
				lat = append(lat, time.Duration(v))
				last = max(last, v)
			}
		}
		if last > 0 {
			fan = append(fan, time.Duration(last))
		}
	}
	res.Delivery = summarize(lat)
	res.FanOut = summarize(fan)
	errs := dr.errors.top(5)
	res.Errors = append(errs, sendErrs.top(5)...)
	return res, nil
}

// sleep waits for d or for ctx to end.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cablebench: %w", context.Cause(ctx))
	}
}
