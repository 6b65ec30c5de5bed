package runner

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// stormNode is a gocable node of the storm test: run in this process, or
// the binary GOCABLE_STORM_BIN names (for 10,000 connections, which take
// more file descriptors than one process may have).
type stormNode struct {
	addr string
	stop func() (time.Duration, error)
}

var listeningAddr = regexp.MustCompile(`gocable listening"? addr=(\S+)`)

func startStormNode(t *testing.T, args ...string) stormNode {
	t.Helper()
	bin := os.Getenv("GOCABLE_STORM_BIN")
	if bin == "" {
		addr, _, stop := startCapacity(t, args...)
		return stormNode{addr, stop}
	}
	cmd := exec.Command(bin, append([]string{"--addr", "127.0.0.1:0", "--disable-forgery-protection", "--log-level", "info"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	addr := ""
	for addr == "" && sc.Scan() {
		if m := listeningAddr.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%s did not start", bin)
	}
	go func() { // owner: the node; ends when the process closes its stderr
		for sc.Scan() {
		}
	}()
	var once sync.Once
	var took time.Duration
	stop := func() (time.Duration, error) {
		once.Do(func() {
			start := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			err = cmd.Wait()
			took = time.Since(start)
		})
		return took, err
	}
	t.Cleanup(func() { stop() })
	return stormNode{addr, stop}
}

func stormInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// Issue 11's reconnect storm: N clients on node A, which shuts down with
// --shutdown-drain; each client reconnects to node B the moment it gets
// server_restart (the worst client: the official one waits 6 to 12 s), and
// on a refusal retries after Retry-After. The disconnects are spread over
// the window, so B, capped by --max-connection-rate, admits them with few
// refusals. GOCABLE_STORM_CONNS (default 2,000; 500 with -race), GOCABLE_STORM_DRAIN
// (milliseconds, default 2,000) and GOCABLE_STORM_RATE (B's cap, default
// 1,500/s) change the storm; GOCABLE_STORM_BIN runs the nodes as that
// binary.
func TestReconnectStormAfterDrain(t *testing.T) {
	defConns := 2000
	if raceEnabled {
		defConns = 500 // the race detector makes each connection several times dearer
	}
	n := stormInt("GOCABLE_STORM_CONNS", defConns)
	window := time.Duration(stormInt("GOCABLE_STORM_DRAIN", 2000)) * time.Millisecond
	rate := stormInt("GOCABLE_STORM_RATE", 1500)
	a := startStormNode(t, "--shutdown-drain", window.String(), "--shutdown-timeout", (2*window + 5*time.Second).String())
	b := startStormNode(t, "--max-connection-rate", strconv.Itoa(rate))
	hdr := http.Header{"Sec-Websocket-Protocol": {"actioncable-v1-json"}}
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	dial := func(addr string) (*websocket.Conn, *http.Response, error) {
		ws, resp, err := dialer.Dial("ws://"+addr+"/cable", hdr)
		if err != nil {
			return nil, resp, err
		}
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"type":"welcome"}` {
			ws.Close()
			return nil, nil, fmt.Errorf("welcome: %q, %v", msg, err)
		}
		return ws, resp, nil
	}

	// Connect everyone to A, 100 at a time.
	onA := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	sema := make(chan struct{}, 100)
	var failed atomic.Int64
	for i := range onA {
		wg.Add(1)
		sema <- struct{}{}
		go func() { // owner: the test, which waits on wg
			defer wg.Done()
			defer func() { <-sema }()
			ws, _, err := dial(a.addr)
			if err != nil {
				failed.Add(1)
				return
			}
			onA[i] = ws
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d connections to A failed", failed.Load(), n)
	}

	type client struct {
		restart  time.Duration // server_restart from A, since A's shutdown began
		admitted time.Duration // welcome from B
		refusals int
		ws       *websocket.Conn
	}
	clients := make([]client, n)
	defer func() {
		for _, c := range clients {
			if c.ws != nil {
				c.ws.Close()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*window+60*time.Second)
	defer cancel()
	start := time.Now()
	for i, ws := range onA {
		wg.Add(1)
		go func() { // owner: the test, which waits on wg
			defer wg.Done()
			defer ws.Close()
			c := &clients[i]
			ws.SetReadDeadline(time.Now().Add(2*window + 30*time.Second))
			for {
				_, msg, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if string(msg) == `{"type":"disconnect","reason":"server_restart","reconnect":true}` {
					c.restart = time.Since(start)
					break
				}
			}
			ws.Close()
			for ctx.Err() == nil {
				ws, resp, err := dial(b.addr)
				if err == nil {
					c.admitted, c.ws = time.Since(start), ws
					return
				}
				if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
					t.Errorf("reconnect to B: %v", err)
					return
				}
				c.refusals++
				secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				time.Sleep(time.Duration(max(secs, 1)) * time.Second)
			}
		}()
	}
	took, err := a.stop()
	if err != nil {
		t.Errorf("A's shutdown: %v", err)
	}
	wg.Wait()

	var restartSlices, admitSlices [10]int
	refusals, lastAdmit := 0, time.Duration(0)
	for i, c := range clients {
		if c.restart == 0 || c.ws == nil {
			t.Fatalf("client %d: server_restart at %v, admitted by B at %v", i, c.restart, c.admitted)
		}
		restartSlices[min(int(c.restart*10/window), 9)]++
		admitSlices[min(int(c.admitted*10/window), 9)]++
		refusals += c.refusals
		lastAdmit = max(lastAdmit, c.admitted)
	}
	t.Logf("%d connections, drain %v: A's shutdown took %v; server_restart per tenth of the window %v; "+
		"B (cap %d/s) admitted per tenth %v, the last at %v, with %d refusals (429)",
		n, window, took.Round(time.Millisecond), restartSlices, rate, admitSlices, lastAdmit.Round(time.Millisecond), refusals)
	for i, k := range restartSlices {
		if k > 2*n/10 {
			t.Errorf("tenth %d of the window got %d server_restart frames; want at most twice its share (%d)", i, k, 2*n/10)
		}
	}
	if refusals > n/20 {
		t.Errorf("B refused %d reconnects; a storm spread over %v at %d/s should fit its cap of %d/s",
			refusals, window, n*int(time.Second)/int(window), rate)
	}
}
