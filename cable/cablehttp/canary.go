package cablehttp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gocable/gocable/cable"
)

// Canary proves that broadcasts travel through a pub/sub: every Interval
// it publishes a probe on a stream of its own and expects it back within
// Timeout. A pub/sub that says it is up but delivers nothing (a Redis
// frozen by SIGSTOP, a proxy that swallows traffic) is caught within
// Interval + Timeout, where the pub/sub's own keepalive takes longer (6.5s
// with redispubsub's defaults). Health and Metrics read it.
//
// The probe's stream is one no Rails app and no client streams from:
// "_gocable_canary/" and a name unique to the process (Stream), under the
// pub/sub's channel prefix, so with Redis
// "<channel_prefix>:_gocable_canary/<node>". Its payload is not JSON
// ("gocable canary <n>"), so even a channel that did stream from it would
// never pass it to a client: cable's hub drops a broadcast that is not
// JSON, as Rails' default stream handler does when its JSON decode fails
// (actioncable/lib/action_cable/channel/streams.rb). The canary subscribes
// through the PubSub directly, not through a cable.Server, so its probes
// are not counted as broadcasts.
//
// Run is the canary's only goroutine: its caller owns it and ends it by
// cancelling Run's context. The zero value has no PubSub and cannot Run;
// a Canary must not be copied or changed after Run starts.
type Canary struct {
	// PubSub is the pub/sub to prove, usually the cable.Server's. Run
	// fails without one.
	PubSub cable.PubSub
	// Stream is the stream the probes travel on. "" means
	// "_gocable_canary/<host>-<pid>-<random>", unique to the process:
	// every node must have its own, or it would take another node's
	// probes for its own.
	Stream string
	// Interval is how often a probe is published. Zero means 500ms.
	Interval time.Duration
	// Timeout is how long a probe may take to come back before the
	// canary fails. Zero means 2s.
	Timeout time.Duration
	// Logger receives one Warn line when the canary starts failing (at
	// most one a minute) and one Info line when it recovers. Nil means
	// slog.Default().
	Logger *slog.Logger

	once   sync.Once
	stream string // Stream or the generated default, set by init

	mu         sync.Mutex
	running    bool          // Run is between its start and its end
	stopped    bool          // Run has ended
	subscribed bool          // the probe stream is subscribed
	since      time.Time     // when subscribing began, while !subscribed
	seq        uint64        // the last probe's number
	pending    []canaryProbe // probes not back yet, oldest first
	rtt        time.Duration // the last probe's round trip
	lastBack   time.Time     // when the last probe came back
	failing    bool          // the failure was logged
	failures   uint64        // times the canary started failing
	lastWarn   time.Time     // when the last Warn line was written
	unlogged   int           // failures not logged since lastWarn
}

// canaryProbe is one probe in flight.
type canaryProbe struct {
	seq uint64
	at  time.Time
}

// maxPending bounds the probes remembered while none come back: only the
// oldest one decides whether the canary fails.
const maxPending = 64

// canaryPayload starts every probe's payload; the probe's number follows.
const canaryPayload = "gocable canary "

// CanaryStatus is what a Canary knows at one moment. Its zero value is the
// status of a canary that has not run: OK, with no round trip measured.
type CanaryStatus struct {
	// OK is false while a probe (or the probe stream's subscription) is
	// overdue by more than the Timeout, and once Run has ended.
	OK bool
	// Reason says why OK is false: "overdue", "not subscribed" or
	// "stopped"; "" when OK.
	Reason string
	// RoundTrip is the last probe's round trip; zero before the first.
	RoundTrip time.Duration
	// LastReceived is when the last probe came back; zero before the
	// first.
	LastReceived time.Time
	// Failures counts the times the canary started failing.
	Failures uint64
}

// init fills in the stream name.
func (c *Canary) init() {
	c.once.Do(func() {
		c.stream = c.Stream
		if c.stream == "" {
			c.stream = "_gocable_canary/" + nodeName()
		}
	})
}

// nodeName returns "<host>-<pid>-<8 random hex digits>".
func nodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "gocable"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported systems
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// StreamName returns the stream the probes travel on: Stream, or the
// name made for it when Stream is "".
func (c *Canary) StreamName() string {
	c.init()
	return c.stream
}

func (c *Canary) interval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return 500 * time.Millisecond
}

func (c *Canary) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 2 * time.Second
}

func (c *Canary) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

// errNoPubSub is Run's error without a PubSub.
var errNoPubSub = errors.New("cablehttp: Canary has no PubSub")

// errCanaryRunning is Run's error when it is already running.
var errCanaryRunning = errors.New("cablehttp: Canary is already running")

// Run subscribes to the probe stream and publishes a probe every Interval
// until ctx is done; it then unsubscribes and returns nil. While the
// pub/sub is down it keeps trying to subscribe, each attempt bounded by
// Timeout. It returns an error at once without a PubSub or when the canary
// is already running.
func (c *Canary) Run(ctx context.Context) error {
	if c.PubSub == nil {
		return errNoPubSub
	}
	c.init()
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errCanaryRunning
	}
	c.running, c.stopped, c.subscribed, c.since = true, false, false, time.Now()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running, c.stopped, c.subscribed, c.pending = false, true, false, nil
		c.mu.Unlock()
	}()

	tick := time.NewTicker(c.interval())
	defer tick.Stop()
	var unsubscribe func()
	defer func() {
		if unsubscribe != nil {
			unsubscribe()
		}
	}()
	for {
		if unsubscribe == nil {
			unsubscribe = c.subscribe(ctx)
		}
		if unsubscribe != nil {
			c.probe(ctx)
		}
		c.check(time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// subscribe subscribes to the probe stream, waiting at most Timeout; it
// returns nil when that failed.
func (c *Canary) subscribe(ctx context.Context) func() {
	sctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	unsubscribe, err := c.PubSub.Subscribe(sctx, c.stream, c.receive)
	if err != nil {
		c.logger().Debug("cablehttp: canary cannot subscribe", "stream", c.stream, "err", err)
		return nil
	}
	c.mu.Lock()
	c.subscribed = true
	c.mu.Unlock()
	return unsubscribe
}

// probe publishes the next probe. A probe that cannot be published stays
// pending, so the canary fails once it is overdue. Publishing waits at
// most Timeout (or the pub/sub client's own timeout, if it ignores ctx).
func (c *Canary) probe(ctx context.Context) {
	c.mu.Lock()
	c.seq++
	n := c.seq
	if len(c.pending) < maxPending {
		c.pending = append(c.pending, canaryProbe{seq: n, at: time.Now()})
	}
	c.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	payload := strconv.AppendUint([]byte(canaryPayload), n, 10)
	if err := c.PubSub.Publish(pctx, c.stream, payload); err != nil {
		c.logger().Debug("cablehttp: canary cannot publish", "stream", c.stream, "err", err)
	}
}

// receive is the deliver function of the probe stream: probe n coming
// back answers every probe up to n (delivery is at most once, so earlier
// ones are lost).
func (c *Canary) receive(payload []byte) {
	s, ok := strings.CutPrefix(string(payload), canaryPayload)
	if !ok {
		return
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for ; i < len(c.pending) && c.pending[i].seq <= n; i++ {
		if c.pending[i].seq == n {
			c.rtt = now.Sub(c.pending[i].at)
		}
	}
	c.pending = append(c.pending[:0], c.pending[i:]...)
	c.lastBack = now
}

// statusLocked computes the status at now; c.mu must be held.
func (c *Canary) statusLocked(now time.Time) CanaryStatus {
	st := CanaryStatus{OK: true, RoundTrip: c.rtt, LastReceived: c.lastBack, Failures: c.failures}
	switch {
	case c.stopped:
		st.OK, st.Reason = false, "stopped"
	case !c.running:
	case !c.subscribed:
		if now.Sub(c.since) > c.timeout() {
			st.OK, st.Reason = false, "not subscribed"
		}
	case len(c.pending) > 0:
		if now.Sub(c.pending[0].at) > c.timeout() {
			st.OK, st.Reason = false, "overdue"
		}
	}
	return st
}

// Status reports whether broadcasts are proven to travel through the
// pub/sub now, computed when called: a probe overdue by a moment fails it
// at once, not at the next Interval.
func (c *Canary) Status() CanaryStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusLocked(time.Now())
}

// warnEvery is the least time between two Warn lines of a canary, so that
// a flapping pub/sub cannot flood the log.
const warnEvery = time.Minute

// check counts and logs a change between OK and failing.
func (c *Canary) check(now time.Time) {
	c.mu.Lock()
	st := c.statusLocked(now)
	var msg string
	var attrs []any
	switch {
	case !st.OK && !c.failing:
		c.failing = true
		c.failures++
		if now.Sub(c.lastWarn) < warnEvery {
			c.unlogged++
			break
		}
		msg = "cablehttp: canary failing: broadcasts are not coming back through the pub/sub; readiness fails"
		attrs = []any{"stream", c.stream, "reason", st.Reason, "timeout", c.timeout(), "unlogged_failures", c.unlogged}
		c.lastWarn, c.unlogged = now, 0
	case st.OK && c.failing:
		c.failing = false
		msg = "cablehttp: canary recovered"
		attrs = []any{"stream", c.stream, "round_trip", st.RoundTrip}
	}
	c.mu.Unlock()
	switch {
	case msg == "":
	case !st.OK:
		c.logger().Warn(msg, attrs...)
	default:
		c.logger().Info(msg, attrs...)
	}
}
