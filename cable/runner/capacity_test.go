package runner

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// syncBuffer is a log the test reads while the server writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startCapacity runs the binary's run with args, logging at warn, until
// the test ends or stop is called; stop returns how long the shutdown
// took and run's error.
func startCapacity(t *testing.T, args ...string) (addr string, logs *syncBuffer, stop func() (time.Duration, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logs = &syncBuffer{}
	args = append([]string{"--addr", "127.0.0.1:0", "--disable-forgery-protection", "--log-level", "warn"}, args...)
	go func() { done <- run(ctx, args, logs, ready) }() // owner: the test, through stop
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	var once sync.Once
	var err error
	var took time.Duration
	stop = func() (time.Duration, error) {
		once.Do(func() {
			start := time.Now()
			cancel()
			err = <-done
			took = time.Since(start)
		})
		return took, err
	}
	t.Cleanup(func() { stop() })
	return addr, logs, stop
}

// limitHits reads gocable_limit_hits_total{limit=limit} from /metrics.
func limitHits(t *testing.T, addr, limit string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^gocable_limit_hits_total\{limit="` + limit + `"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no gocable_limit_hits_total{limit=%q} in\n%s", limit, body)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// Issue 11, item 3: 100 POSTs to /health and 100 to /_broadcast that send
// their headers, then trickle a 100 kB body a byte at a time, are all
// closed within the read timeout (before it, they stayed open for more
// than 60 s). The timeout is set through the environment, which the old
// binary ignored, so this test ran against it and failed there.
func TestHTTPReadTimeoutClosesTrickledBodies(t *testing.T) {
	const perPath, timeout = 100, time.Second
	secret := strings.Repeat("s", 32)
	t.Setenv("GOCABLE_HTTP_READ_TIMEOUT", timeout.String())
	t.Setenv("GOCABLE_BROADCAST_SECRET", secret)
	addr, logs, _ := startCapacity(t)

	type result struct {
		path   string
		status string        // the response's status line, if any
		closed time.Duration // since the headers were sent; 0 if still open
	}
	results := make([]result, 2*perPath)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range results {
		path := "/health"
		auth := ""
		if i%2 == 1 {
			path, auth = "/_broadcast", "Authorization: Bearer "+secret+"\r\n"
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[", path, auth)
		results[i].path = path
		wg.Add(1)
		go func() { // owner: the test, which waits on wg; ends when the socket closes
			defer wg.Done()
			r := bufio.NewReader(c)
			line, _ := r.ReadString('\n')
			results[i].status = strings.TrimSpace(line)
			io.Copy(io.Discard, r)
			results[i].closed = time.Since(start)
		}()
	}
	// Trickle a byte to every socket every 100 ms, for at most 6 s.
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }() // owner: the test; ends when every reader has
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(6 * time.Second)
trickle:
	for {
		select {
		case <-finished:
			break trickle
		case <-giveUp:
			break trickle
		case <-tick.C:
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
				c.Write([]byte(" "))
			}
		}
	}
	for _, c := range conns {
		c.Close() // ends the readers of sockets still open
	}
	<-finished

	var slowest time.Duration
	open := 0
	for _, r := range results {
		if r.closed >= 6*time.Second {
			open++
		}
		slowest = max(slowest, r.closed)
	}
	t.Logf("%d trickled requests, read timeout %v: the last was closed after %v; %d still open at 6 s",
		len(results), timeout, slowest.Round(time.Millisecond), open)
	if open > 0 {
		t.Fatalf("%d of %d trickled requests still open after 6 s; the read timeout is %v", open, len(results), timeout)
	}
	for i, r := range results {
		if r.closed < timeout*9/10 || r.closed > timeout+2500*time.Millisecond {
			t.Errorf("request %d (%s) closed after %v; the read timeout is %v", i, r.path, r.closed, timeout)
		}
		want := "HTTP/1.1 200 OK" // health answers without reading the body
		if r.path == "/_broadcast" {
			want = "HTTP/1.1 408 Request Timeout"
		}
		if r.status != want {
			t.Errorf("request %d (%s): %q; want %q", i, r.path, r.status, want)
		}
	}
	if got := limitHits(t, addr, "http_read_timeout"); got != len(results) {
		t.Errorf(`gocable_limit_hits_total{limit="http_read_timeout"} = %d; want %d`, got, len(results))
	}
	if n := strings.Count(logs.String(), "limit=http_read_timeout"); n != 1 {
		t.Errorf("%d warn lines for %d timeouts; want 1 (rate-limited):\n%s", n, len(results), logs)
	}
}

// The HTTP timeouts do not touch WebSockets: a connection idle for longer
// than both, then used, works, and counts no hit.
func TestWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	addr, _, _ := startCapacity(t, "--http-read-timeout", "300ms", "--http-write-timeout", "300ms")
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", http.Header{"Sec-Websocket-Protocol": {"actioncable-v1-json"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"type":"welcome"}` {
		t.Fatalf("first frame %s, %v", msg, err)
	}
	time.Sleep(time.Second) // past both timeouts
	id := `{"channel":"BenchmarkChannel"}`
	if err := ws.WriteJSON(map[string]string{"command": "subscribe", "identifier": id}); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("the WebSocket did not outlive the HTTP timeouts: %v", err)
		}
		if strings.Contains(string(msg), "confirm_subscription") {
			break
		}
	}
	for _, limit := range []string{"http_read_timeout", "http_write_timeout"} {
		if got := limitHits(t, addr, limit); got != 0 {
			t.Errorf("%s counted %d hits for a WebSocket", limit, got)
		}
	}
}

// dialStatus dials the cable endpoint and returns the refusal's status
// and Retry-After, or 101 if the upgrade succeeded.
func dialStatus(t *testing.T, addr string) (int, string, *websocket.Conn) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", http.Header{"Sec-Websocket-Protocol": {"actioncable-v1-json"}})
	if err == nil {
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"type":"welcome"}` {
			t.Fatalf("first frame %s, %v", msg, err)
		}
		return http.StatusSwitchingProtocols, "", ws
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// --max-connections and --max-connection-rate (and their variables)
// reach the server: refusals with 503 or 429 and Retry-After, counted in
// /metrics.
func TestConnectionLimitFlags(t *testing.T) {
	t.Run("max-connections", func(t *testing.T) {
		t.Setenv("GOCABLE_MAX_CONNECTIONS", "2")
		addr, logs, _ := startCapacity(t)
		for range 2 {
			code, _, ws := dialStatus(t, addr)
			if code != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", code)
			}
			defer ws.Close()
		}
		code, retry, _ := dialStatus(t, addr)
		if code != http.StatusServiceUnavailable || retry == "" {
			t.Errorf("third connection: %d, Retry-After %q; want 503 with Retry-After", code, retry)
		}
		if got := limitHits(t, addr, "max_connections"); got != 1 {
			t.Errorf("max_connections hits = %d; want 1", got)
		}
		if !strings.Contains(logs.String(), "limit=max_connections") {
			t.Errorf("no warn line names the limit:\n%s", logs)
		}
	})
	t.Run("max-connection-rate", func(t *testing.T) {
		addr, _, _ := startCapacity(t, "--max-connection-rate", "2")
		for range 2 {
			code, _, ws := dialStatus(t, addr)
			if code != http.StatusSwitchingProtocols {
				t.Fatalf("status %d", code)
			}
			defer ws.Close()
		}
		code, retry, _ := dialStatus(t, addr)
		if code != http.StatusTooManyRequests || retry == "" {
			t.Errorf("third connection: %d, Retry-After %q; want 429 with Retry-After", code, retry)
		}
		if got := limitHits(t, addr, "connection_rate"); got != 1 {
			t.Errorf("connection_rate hits = %d; want 1", got)
		}
	})
}

func TestCapacityFlagsRejectBadValues(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"drain longer than the timeout allows", nil, []string{"--shutdown-timeout", "10s", "--shutdown-drain", "8s"}, "at most 7.5s"},
		{"negative drain", nil, []string{"--shutdown-drain", "-1s"}, "must not be negative"},
		{"negative cap", nil, []string{"--max-connections", "-1"}, "must not be negative"},
		{"negative rate", nil, []string{"--max-connection-rate", "-1"}, "must not be negative"},
		{"zero read timeout", nil, []string{"--http-read-timeout", "0s"}, "must be positive"},
		{"rate in env", map[string]string{"GOCABLE_MAX_CONNECTION_RATE": "fast"}, nil, "GOCABLE_MAX_CONNECTION_RATE (for --max-connection-rate): invalid value: want a number"},
		{"timeout in env", map[string]string{"GOCABLE_HTTP_WRITE_TIMEOUT": "30"}, nil, "GOCABLE_HTTP_WRITE_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			ready := make(chan string, 1)
			err := run(ctx, append([]string{"--addr", "127.0.0.1:0", "--log-level", "error"}, tt.args...), io.Discard, ready)
			if len(ready) > 0 {
				t.Fatalf("it started (run returned %v)", err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v; want an error with %q", err, tt.want)
			}
		})
	}
}

// --shutdown-drain spreads server_restart over the window, and the
// shutdown still ends within --shutdown-timeout.
func TestShutdownDrainFlag(t *testing.T) {
	const n, window = 40, time.Second
	addr, _, stop := startCapacity(t, "--shutdown-drain", window.String(), "--shutdown-timeout", "3s")
	var clients []*websocket.Conn
	for range n {
		code, _, ws := dialStatus(t, addr)
		if code != http.StatusSwitchingProtocols {
			t.Fatalf("status %d", code)
		}
		defer ws.Close()
		clients = append(clients, ws)
	}
	arrivals := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i, ws := range clients {
		wg.Add(1)
		go func() { // owner: the test, which waits on wg
			defer wg.Done()
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				_, msg, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if string(msg) == `{"type":"disconnect","reason":"server_restart","reconnect":true}` {
					arrivals[i] = time.Since(start)
				}
			}
		}()
	}
	took, err := stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	sort.Slice(arrivals, func(i, j int) bool { return arrivals[i] < arrivals[j] })
	t.Logf("shutdown took %v; server_restart arrived from %v to %v", took.Round(time.Millisecond),
		arrivals[0].Round(time.Millisecond), arrivals[n-1].Round(time.Millisecond))
	if arrivals[0] == 0 {
		t.Fatal("a client got no server_restart")
	}
	if arrivals[n-1]-arrivals[0] < window*8/10 {
		t.Errorf("server_restart spread over %v; the drain is %v", arrivals[n-1]-arrivals[0], window)
	}
	if took > 3*time.Second {
		t.Errorf("shutdown took %v; --shutdown-timeout is 3s", took)
	}
}

// A response not written within --http-write-timeout (here: a body that
// takes longer than that to arrive, then a 202 that cannot go out) is
// cut short, counted and logged.
func TestHTTPWriteTimeoutCounted(t *testing.T) {
	secret := strings.Repeat("s", 32)
	t.Setenv("GOCABLE_BROADCAST_SECRET", secret)
	addr, logs, _ := startCapacity(t, "--http-write-timeout", "300ms")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"stream":"s","data":1}`
	fmt.Fprintf(c, "POST /_broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", secret, len(body))
	for _, b := range []byte(body) {
		time.Sleep(30 * time.Millisecond) // 0.7 s in all
		c.Write([]byte{b})
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Errorf("a response after the write timeout: %s", resp.Status)
	}
	if !waitForCond(5*time.Second, func() bool { return limitHits(t, addr, "http_write_timeout") == 1 }) {
		t.Errorf("http_write_timeout hits = %d; want 1", limitHits(t, addr, "http_write_timeout"))
	}
	if !strings.Contains(logs.String(), "limit=http_write_timeout") {
		t.Errorf("no warn line names the limit:\n%s", logs)
	}
}

func waitForCond(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
