package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/channels"
)

// benchServer is an in-process gocable serving BenchmarkChannel at /cable,
// and an AnyCable-style broadcast endpoint at /publish that takes
// {"stream":...,"data":...} with data a JSON string or a JSON value.
type benchServer struct {
	srv *cable.Server
	ts  *httptest.Server
}

func newBenchServer(t *testing.T) *benchServer {
	t.Helper()
	srv := &cable.Server{
		PingInterval: 100 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	srv.Handle("BenchmarkChannel", func() cable.Channel { return &channels.Benchmark{Broadcaster: srv} })
	mux := http.NewServeMux()
	mux.Handle("/cable", srv)
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream string          `json:"stream"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		data := req.Data
		var s string
		if json.Unmarshal(data, &s) == nil {
			data = json.RawMessage(s)
		}
		if err := srv.Broadcast(r.Context(), req.Stream, data); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	ts := httptest.NewServer(mux)
	bs := &benchServer{srv: srv, ts: ts}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return bs
}

func (bs *benchServer) wsURL() string { return "ws" + strings.TrimPrefix(bs.ts.URL, "http") + "/cable" }

// options parses a mode's flags against the test server, with the
// progress lines going to the test log.
func (bs *benchServer) options(t *testing.T, mode string, args ...string) *options {
	t.Helper()
	args = append([]string{"-url", bs.wsURL(), "-timeout", "60s", "-progress", "200ms"}, args...)
	o, err := parseOptions(mode, args, io.Discard)
	if err != nil {
		t.Fatalf("parseOptions(%s %q): %v", mode, args, err)
	}
	o.progressOut = testWriter{t}
	return o
}

// testWriter sends progress lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// runResult runs a mode and returns its result.
func runResult[R result](t *testing.T, o *options, fn func(context.Context, *options, *progress) (R, error)) R {
	t.Helper()
	prog := startProgress(o.progressOut, o.progress)
	defer prog.close()
	r, err := fn(context.Background(), o, prog)
	if err != nil {
		t.Fatalf("%s: %v", o.mode, err)
	}
	if f := r.failures(); f != 0 {
		t.Errorf("%s: %d failures; rows %v", o.mode, f, r.rows())
	}
	return r
}

func checkSummary(t *testing.T, what string, s Summary, count int) {
	t.Helper()
	if s.Count != count {
		t.Errorf("%s: count %d; want %d", what, s.Count, count)
	}
	if !(s.Min > 0 && s.Min <= s.P50 && s.P50 <= s.P95 && s.P95 <= s.P99 && s.P99 <= s.Max && s.Max < 30_000) {
		t.Errorf("%s: not a sane summary: %+v", what, s)
	}
}

func TestEndToEnd(t *testing.T) {
	bs := newBenchServer(t)
	pid := strconv.Itoa(os.Getpid()) // the server runs in this process

	t.Run("idle", func(t *testing.T) {
		o := bs.options(t, "idle", "-n", "40", "-c", "8", "-settle", "500ms", "-pid", pid)
		r := runResult(t, o, runIdle)
		if r.Connected != 40 || r.Failed != 0 || r.Alive != 40 {
			t.Errorf("connected %d, failed %d, alive %d; want 40, 0, 40", r.Connected, r.Failed, r.Alive)
		}
		if r.Pings < 40 {
			t.Errorf("pings %d; want at least one per connection (ping every 100ms, settle 500ms)", r.Pings)
		}
		checkSummary(t, "setup", r.Setup, 40)
		if r.Server == nil || r.Server.RSSBefore <= 0 || r.Server.RSSAfter <= 0 || r.Server.RSSMin <= 0 || r.Server.ThreadsAfter < 1 {
			t.Errorf("server stats %+v", r.Server)
		}
	})

	t.Run("connect", func(t *testing.T) {
		for _, keep := range []string{"-keep=false", "-keep=true"} {
			o := bs.options(t, "connect", "-n", "60", "-c", "6", keep)
			r := runResult(t, o, runConnect)
			if r.Connected != 60 || r.Failed != 0 || r.Rate <= 0 {
				t.Errorf("%s: connected %d, failed %d, rate %v", keep, r.Connected, r.Failed, r.Rate)
			}
			checkSummary(t, keep+" setup", r.Setup, 60)
			checkSummary(t, keep+" handshake", r.Handshake, 60)
			checkSummary(t, keep+" subscribe", r.Subscribe, 60)
		}
		waitConns(t, bs.srv, 0)
	})

	t.Run("connect rejected", func(t *testing.T) {
		o := bs.options(t, "connect", "-n", "3", "-c", "1", "-identifier", `{"channel":"NoSuchChannel"}`)
		r, err := runConnect(context.Background(), o, startProgress(io.Discard, 0))
		if err != nil {
			t.Fatal(err)
		}
		if r.Connected != 0 || r.Failed != 3 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error, "rejected") {
			t.Errorf("connected %d, failed %d, errors %v; want 0, 3, subscription rejected", r.Connected, r.Failed, r.Errors)
		}
	})

	checkBroadcast := func(t *testing.T, r *BroadcastResult, n, m int) {
		t.Helper()
		if r.Connected != n || r.Sent != m || r.Expected != int64(n*m) || r.Delivered != int64(n*m) ||
			r.Missing != 0 || r.Duplicates != 0 || r.Stray != 0 || r.Dropped != 0 {
			t.Errorf("connected %d sent %d expected %d delivered %d missing %d dup %d stray %d dropped %d; want %d, %d, %d, %d, 0, 0, 0, 0",
				r.Connected, r.Sent, r.Expected, r.Delivered, r.Missing, r.Duplicates, r.Stray, r.Dropped, n, m, n*m, n*m)
		}
		checkSummary(t, "delivery", r.Delivery, n*m)
		checkSummary(t, "fan-out", r.FanOut, m)
		if r.FanOut.Max != r.Delivery.Max {
			t.Errorf("slowest fan-out %v != slowest delivery %v", r.FanOut.Max, r.Delivery.Max)
		}
		if r.Server == nil || r.CPUPerDeliveryUS < 0 || r.WindowS <= 0 {
			t.Errorf("server %+v, cpu/delivery %v, window %v", r.Server, r.CPUPerDeliveryUS, r.WindowS)
		}
	}

	t.Run("broadcast via action", func(t *testing.T) {
		o := bs.options(t, "broadcast", "-n", "25", "-c", "5", "-m", "6", "-interval", "20ms", "-pid", pid, "-baseline", "100ms", "-pad", "64")
		r := runResult(t, o, runBroadcast)
		checkBroadcast(t, r, 25, 6)
		if r.Via != "action" || r.Acks != 6 {
			t.Errorf("via %q, acks %d; want action, 6", r.Via, r.Acks)
		}
	})

	t.Run("broadcast via publish url", func(t *testing.T) {
		for _, body := range []string{`{"stream":"all","data":{{data_json}}}`, `{"stream":"all","data":{{data}}}`} {
			o := bs.options(t, "broadcast", "-n", "10", "-c", "10", "-m", "4", "-interval", "10ms", "-pid", pid, "-baseline", "0",
				"-publish-url", bs.ts.URL+"/publish", "-publish-body", body, "-publish-header", "X-Test: 1")
			r := runResult(t, o, runBroadcast)
			checkBroadcast(t, r, 10, 4)
			if r.Via != bs.ts.URL+"/publish" {
				t.Errorf("via %q", r.Via)
			}
		}
	})

	t.Run("broadcast publish errors", func(t *testing.T) {
		o := bs.options(t, "broadcast", "-n", "2", "-m", "2", "-interval", "10ms", "-drain", "50ms",
			"-publish-url", bs.ts.URL+"/publish", "-publish-body", `{"stream":"all","data":"not json {{data}}"}`)
		r, err := runBroadcast(context.Background(), o, startProgress(io.Discard, 0))
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != 0 || r.SendErrors != 2 || r.Missing != 0 || len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Error, "HTTP 400") {
			t.Errorf("sent %d, send errors %d, missing %d, errors %v; want 0, 2, 0, HTTP 400", r.Sent, r.SendErrors, r.Missing, r.Errors)
		}
	})

	t.Run("echo", func(t *testing.T) {
		o := bs.options(t, "echo", "-c", "3", "-k", "100", "-pad", "10")
		r := runResult(t, o, runEcho)
		if r.Connected != 3 || r.Completed != 100 || r.Failed != 0 || r.Rate <= 0 {
			t.Errorf("connected %d, completed %d, failed %d, rate %v", r.Connected, r.Completed, r.Failed, r.Rate)
		}
		checkSummary(t, "rtt", r.RTT, 100)
	})

	t.Run("command line", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.json")
		var stdout, stderr strings.Builder
		code := run(context.Background(), []string{"broadcast", "-url", bs.wsURL(), "-n", "5", "-m", "3", "-interval", "10ms",
			"-progress", "0", "-json", path}, &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("run = %d; stderr %s", code, stderr.String())
		}
		for _, want := range []string{"cablebench broadcast", "delivered", "15 of 15", "fan-out time", "load average"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, stdout.String())
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Mode    string            `json:"mode"`
			Options map[string]string `json:"options"`
			Result  BroadcastResult   `json:"result"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if rep.Mode != "broadcast" || rep.Result.Delivered != 15 || rep.Result.Missing != 0 || rep.Options["n"] != "5" || rep.Options["origin"] == "" {
			t.Errorf("JSON report: %s", b)
		}
	})

	waitConns(t, bs.srv, 0)
}

// waitConns waits until the server has n connections.
func waitConns(t *testing.T, srv *cable.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Connections != n {
		if time.Now().After(deadline) {
			t.Fatalf("server has %d connections; want %d", srv.Stats().Connections, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
