package cable_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

const serverRestart = `{"type":"disconnect","reason":"server_restart","reconnect":true}`

// rawDial opens a connection the way the official client does and reads
// the welcome; resp is the refusal when the upgrade failed.
func rawDial(ts *testServer) (*websocket.Conn, *http.Response, error) {
	h := http.Header{"Origin": {ts.HTTP.URL}, "Sec-Websocket-Protocol": {"actioncable-v1-json"}}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(ts.URL, h)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, b, err := ws.ReadMessage(); err != nil || string(b) != `{"type":"welcome"}` {
		ws.Close()
		return nil, nil, fmt.Errorf("welcome: %q, %v", b, err)
	}
	ws.SetReadDeadline(time.Time{})
	return ws, resp, nil
}

// refusal checks that a refused upgrade got status with a Retry-After of
// at least a second.
func refusal(t *testing.T, resp *http.Response, err error, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("upgrade accepted; want %d", status)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("upgrade refused with %v (%v); want %d", resp, err, status)
	}
	if secs, _ := strconv.Atoi(resp.Header.Get("Retry-After")); secs < 1 {
		t.Errorf("Retry-After = %q; want whole seconds >= 1", resp.Header.Get("Retry-After"))
	}
}

func TestMaxConnections(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) { s.MaxConnections = 3 })
	var open []*websocket.Conn
	defer func() {
		for _, ws := range open {
			ws.Close()
		}
	}()
	for range 3 {
		ws, _, err := rawDial(ts)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, ws)
	}
	for range 5 {
		_, resp, err := rawDial(ts)
		refusal(t, resp, err, http.StatusServiceUnavailable)
	}
	if got := ts.Stats().LimitHits.MaxConnections; got != 5 {
		t.Errorf("LimitHits[max_connections] = %d; want 5", got)
	}
	// One warn line for the five: the log is rate-limited.
	if n := strings.Count(ts.Logs.String(), "level=WARN msg=\"cable: connection refused: this node serves"); n != 1 {
		t.Errorf("%d warn lines for 5 refusals; want 1\n%s", n, ts.Logs)
	}
	// A connection that ends makes room.
	open[0].Close()
	open = open[1:]
	if !waitFor(5*time.Second, func() bool {
		ws, _, err := rawDial(ts)
		if err == nil {
			open = append(open, ws)
		}
		return err == nil
	}) {
		t.Fatal("no room after a connection ended")
	}
}

func TestConnectionRate(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) { s.ConnectionRate = 4 })
	var open []*websocket.Conn
	defer func() {
		for _, ws := range open {
			ws.Close()
		}
	}()
	for range 4 { // the burst: one second's worth
		ws, _, err := rawDial(ts)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, ws)
	}
	_, resp, err := rawDial(ts)
	refusal(t, resp, err, http.StatusTooManyRequests)
	if got := ts.Stats().LimitHits.ConnectionRate; got != 1 {
		t.Errorf("LimitHits[connection_rate] = %d; want 1", got)
	}
	if !strings.Contains(ts.Logs.String(), "limit=connection_rate") {
		t.Errorf("no log line names the limit:\n%s", ts.Logs)
	}
	time.Sleep(300 * time.Millisecond) // a token every 250 ms
	ws, _, err := rawDial(ts)
	if err != nil {
		t.Fatalf("after 300 ms: %v", err)
	}
	open = append(open, ws)
}

// A reconnect storm (every client at once, each retrying soon after a
// refusal) is admitted at the cap's rate.
func TestConnectionRateStorm(t *testing.T) {
	const rate, n = 300, 1200
	ts := newTestServer(t, func(s *cable.Server) { s.ConnectionRate = rate })
	var (
		mu       sync.Mutex
		admitted []time.Duration // since the start
		conns    []*websocket.Conn
		refused  atomic.Int64
		wg       sync.WaitGroup
	)
	defer func() {
		for _, ws := range conns {
			ws.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() { // owner: the test, which waits on wg
			defer wg.Done()
			for ctx.Err() == nil {
				ws, resp, err := rawDial(ts)
				if err == nil {
					mu.Lock()
					admitted = append(admitted, time.Since(start))
					conns = append(conns, ws)
					mu.Unlock()
					return
				}
				if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
					t.Errorf("dial: %v", err)
					return
				}
				refused.Add(1)
				// Sooner than Retry-After, to press on the limit.
				time.Sleep(100*time.Millisecond + rand.N(100*time.Millisecond))
			}
		}()
	}
	wg.Wait()
	if len(admitted) != n {
		t.Fatalf("%d of %d admitted", len(admitted), n)
	}
	last := admitted[0]
	for _, d := range admitted {
		last = max(last, d)
	}
	// The burst (rate) at once, then rate per second: 3 s for the rest.
	want := time.Duration(float64(n-rate) / rate * float64(time.Second))
	// Past the burst, the bucket gives rate tokens a second: the last
	// admission cannot come before want.
	got := float64(n-rate) / last.Seconds()
	t.Logf("%d connections admitted in %v (the rate alone allows no less than %v); %d refusals; %.0f/s past the burst (cap %d/s)",
		n, last.Round(time.Millisecond), want, refused.Load(), got, rate)
	if last < want*95/100 {
		t.Errorf("the storm was admitted in %v; the cap allows no less than %v", last, want)
	}
	if last > 3*want {
		t.Errorf("the storm took %v to admit; the cap's rate gives %v", last, want)
	}
	if st := ts.Stats(); st.LimitHits.ConnectionRate != uint64(refused.Load()) {
		t.Errorf("LimitHits[connection_rate] = %d; clients saw %d refusals", st.LimitHits.ConnectionRate, refused.Load())
	}
}

// Shutdown with ShutdownDrain spreads server_restart over the window:
// every client gets it, no tenth of the window gets much more than its
// share, heartbeats go on meanwhile, and Shutdown returns in time.
func TestShutdownDrain(t *testing.T) {
	const n, window = 2000, 2 * time.Second
	ts := newTestServer(t, func(s *cable.Server) {
		s.ShutdownDrain = window
		s.PingInterval = 400 * time.Millisecond
	})
	type result struct {
		frame      string
		at         time.Duration // since Shutdown began
		pingsAfter int           // pings received after Shutdown began
	}
	var (
		begun    atomic.Int64 // Shutdown's start, UnixNano
		results  = make([]result, n)
		wg       sync.WaitGroup
		dialSema = make(chan struct{}, 50)
	)
	for i := range n {
		dialSema <- struct{}{}
		ws, _, err := rawDial(ts)
		<-dialSema
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer ws.Close()
		wg.Add(1)
		go func() { // owner: the test, which waits on wg; ends when the socket closes
			defer wg.Done()
			ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			for {
				_, b, err := ws.ReadMessage()
				if err != nil {
					return
				}
				b0 := begun.Load()
				if strings.HasPrefix(string(b), `{"type":"ping"`) {
					if b0 != 0 {
						results[i].pingsAfter++
					}
					continue
				}
				results[i].frame = string(b)
				results[i].at = time.Duration(time.Now().UnixNano() - b0)
			}
		}()
	}
	if !waitFor(10*time.Second, func() bool { return ts.Stats().Connections == n }) {
		t.Fatalf("%d connections registered; want %d", ts.Stats().Connections, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begun.Store(time.Now().UnixNano())
	start := time.Now()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	took := time.Since(start)
	wg.Wait()
	var slices [10]int
	latestPings := 0
	var latest time.Duration
	for i, r := range results {
		if r.frame != serverRestart {
			t.Fatalf("client %d got %q; want %s", i, r.frame, serverRestart)
		}
		slices[min(int(r.at*10/window), 9)]++
		if r.at > latest {
			latest, latestPings = r.at, r.pingsAfter
		}
	}
	t.Logf("Shutdown took %v; disconnects per tenth of the %v window: %v; the last client got %d pings while it waited",
		took.Round(time.Millisecond), window, slices, latestPings)
	for i, k := range slices {
		if k > 2*n/10 {
			t.Errorf("tenth %d of the window got %d disconnects; want at most twice its share (%d)", i, k, 2*n/10)
		}
	}
	if took < window*9/10 || took > window+5*time.Second {
		t.Errorf("Shutdown took %v with a %v drain", took, window)
	}
	if latestPings < 3 {
		t.Errorf("the last client got %d pings during the drain; heartbeats must go on", latestPings)
	}
}

// A drain longer than Shutdown's context allows is shortened to fit.
func TestShutdownDrainFitsTheTimeout(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) { s.ShutdownDrain = time.Minute })
	var clients []*testClient
	for range 10 {
		c := ts.dial(t, nil)
		c.expect(`{"type":"welcome"}`)
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Shortened to three quarters of the second: 750 ms.
	if d := time.Since(start); d < 600*time.Millisecond || d > time.Second {
		t.Errorf("Shutdown took %v; its context allowed 1s", d)
	}
	for _, c := range clients {
		c.expect(serverRestart)
	}
	if !strings.Contains(ts.Logs.String(), "shutdown drain shortened") {
		t.Errorf("no log line says the drain was shortened:\n%s", ts.Logs)
	}
}
