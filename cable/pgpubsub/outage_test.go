package pgpubsub_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/pgpubsub"
)

// proxy is a TCP proxy on loopback to the test database that a test can
// stop (closing every connection through it, as a database restart or a
// network cut does) and start again on the same port.
type proxy struct {
	t      testing.TB
	target string
	addr   string

	// frozen makes the proxy drop every byte without closing anything, as
	// a vanished host or a dropped NAT entry does.
	frozen atomic.Bool

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newProxy starts a proxy to the test database; it is stopped when the
// test ends.
func newProxy(t testing.TB) *proxy {
	u, err := url.Parse(testURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, target: u.Host, conns: make(map[net.Conn]struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.stop)
	return p
}

// url returns the test database's URL through the proxy.
func (p *proxy) url() string {
	u, _ := url.Parse(testURL)
	u.Host = p.addr
	return u.String()
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() { // ended by stop, which closes ln and waits
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[d] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) { // ended when either side closes
				defer p.wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 && !p.frozen.Load() {
						if _, werr := dst.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				_ = dst.Close()
				_ = src.Close()
			}
			go pipe(c, d)
			go pipe(d, c)
		}
	}()
}

// stop closes the listener and every connection, and waits for the
// proxy's goroutines.
func (p *proxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

// start listens again on the same address.
func (p *proxy) start() {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listening again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// TestOutage: the states a PubSub goes through (connecting, up, down, up,
// closed), Publish failing at once and Subscribe waiting while down, every
// stream LISTENed again after the reconnect, and the outage and the
// recovery logged once each.
func TestOutage(t *testing.T) {
	requirePostgres(t)
	px := newProxy(t)
	px.stop()
	var logs logBuffer
	prefix := uniquePrefix(t)
	p := newPubSub(t, px.url(), pgpubsub.Config{ChannelPrefix: &prefix, Logger: logs.logger(),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if st := p.State(); st != pgpubsub.StateConnecting && st != pgpubsub.StateDown {
		t.Errorf("state before any connection = %v; want connecting or down", st)
	}
	waitState(t, p, pgpubsub.StateDown, 5*time.Second)
	if p.Healthy() {
		t.Error("Healthy() while down")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := p.Subscribe(ctx, "early", func([]byte) {})
	cancel()
	if !errors.Is(err, pgpubsub.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Subscribe while down = %v; want ErrUnavailable and DeadlineExceeded", err)
	}
	start := time.Now()
	err = p.Publish(context.Background(), "early", []byte("1"))
	if !errors.Is(err, pgpubsub.ErrUnavailable) || time.Since(start) > time.Second {
		t.Errorf("Publish while down = %v after %v; want ErrUnavailable at once", err, time.Since(start))
	}

	// A Subscribe made during the outage returns once the database is back.
	waiting := newSink()
	subErr := make(chan error, 1)
	var unsubWaiting func()
	go func() { // ends within its 20s deadline
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		u, err := p.Subscribe(ctx, "waiting", waiting.deliver)
		unsubWaiting = u
		subErr <- err
	}()
	time.Sleep(100 * time.Millisecond)
	px.start()
	if err := <-subErr; err != nil {
		t.Fatalf("Subscribe across the outage: %v", err)
	}
	defer unsubWaiting()
	waitState(t, p, pgpubsub.StateUp, 5*time.Second)

	streams := make([]sink, 50)
	for i := range streams {
		streams[i] = newSink()
		defer subscribe(t, p, fmt.Sprintf("s%d", i), streams[i].deliver)()
	}
	if n := logs.count("listener connection down"); n != 1 {
		t.Errorf("outage logged %d times before the recovery; want 1:\n%s", n, logs.String())
	}

	// A second outage, with streams in use: they are LISTENed again.
	px.stop()
	waitState(t, p, pgpubsub.StateDown, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // several failed attempts
	px.start()
	waitState(t, p, pgpubsub.StateUp, 10*time.Second)
	publish(t, p, "waiting", "w")
	if got := string(waiting.next(t, 5*time.Second)); got != "w" {
		t.Errorf("waiting got %q", got)
	}
	for i := range streams {
		publish(t, p, fmt.Sprintf("s%d", i), fmt.Sprint(i))
	}
	for i, s := range streams {
		if got := string(s.next(t, 5*time.Second)); got != fmt.Sprint(i) {
			t.Errorf("s%d got %q", i, got)
		}
	}
	if n := logs.count("listener connection down"); n != 2 {
		t.Errorf("two outages logged %d times; want 2:\n%s", n, logs.String())
	}
	if n := logs.count("connection to PostgreSQL restored"); n != 2 {
		t.Errorf("two recoveries logged %d times; want 2:\n%s", n, logs.String())
	}
	_ = p.Close()
	if st := p.State(); st != pgpubsub.StateClosed {
		t.Errorf("state after Close = %v", st)
	}
	if err := p.Publish(context.Background(), "s1", []byte("1")); !errors.Is(err, pgpubsub.ErrClosed) {
		t.Errorf("Publish after Close = %v; want ErrClosed", err)
	}
}

// TestTerminatedBackend: when PostgreSQL ends the listener's backend
// (pg_terminate_backend, as an administrator or a failover does), the
// PubSub reconnects and LISTENs on every stream again.
func TestTerminatedBackend(t *testing.T) {
	requirePostgres(t)
	var logs logBuffer
	prefix := uniquePrefix(t)
	app := "gocable-test-" + prefix
	p := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix, Logger: logs.logger(), ApplicationName: app,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	const n = 20
	sinks := make([]sink, n)
	for i := range sinks {
		sinks[i] = newSink()
		defer subscribe(t, p, fmt.Sprintf("room_%d", i), sinks[i].deliver)()
	}
	raw := rawConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for round := range 2 {
		var killed int
		if err := raw.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed != 1 {
			t.Fatalf("terminated %d backends named %q; want the one listener", killed, app)
		}
		// The loss is seen, then the listener is back.
		deadline := time.Now().Add(10 * time.Second)
		for logs.count("restored") < round+1 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no recovery within 10s; state %v\n%s", round, p.State(), logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		for i := range sinks {
			publish(t, p, fmt.Sprintf("room_%d", i), fmt.Sprintf("%d/%d", round, i))
		}
		for i, s := range sinks {
			if got, want := string(s.next(t, 5*time.Second)), fmt.Sprintf("%d/%d", round, i); got != want {
				t.Errorf("room_%d got %q; want %q", i, got, want)
			}
		}
	}
	if c := strings.Count(logs.String(), "level=WARN"); c != 2 {
		t.Errorf("2 terminations logged %d warnings; want 2:\n%s", c, logs.String())
	}
}

// TestHealthCheck: a listener connection that stops answering without
// being closed is found by the health check and replaced.
func TestHealthCheck(t *testing.T) {
	requirePostgres(t)
	px := newProxy(t)
	prefix := uniquePrefix(t)
	p := newPubSub(t, px.url(), pgpubsub.Config{ChannelPrefix: &prefix,
		HealthCheckInterval: 200 * time.Millisecond, QueryTimeout: 300 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	s := newSink()
	defer subscribe(t, p, "hc", s.deliver)()
	waitState(t, p, pgpubsub.StateUp, 5*time.Second)

	px.frozen.Store(true)
	start := time.Now()
	waitState(t, p, pgpubsub.StateDown, 5*time.Second)
	t.Logf("silent connection found in %v", time.Since(start).Round(time.Millisecond))
	px.frozen.Store(false)
	waitState(t, p, pgpubsub.StateUp, 5*time.Second)

	// Publish through the database directly: the PubSub's own pool may
	// still hold a connection that went silent.
	raw := rawConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := raw.Exec(ctx, "SELECT pg_notify($1, 'back')", prefix+":hc"); err != nil {
		t.Fatal(err)
	}
	if got := string(s.next(t, 5*time.Second)); got != "back" {
		t.Errorf("got %q", got)
	}
}
