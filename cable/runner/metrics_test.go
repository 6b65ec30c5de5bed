package runner

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The binary's /metrics reflects a real connection.
func TestMetrics(t *testing.T) {
	addr := startGocable(t)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil { // welcome
		t.Fatal(err)
	}
	ws.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"{\"channel\":\"BenchmarkChannel\"}"}`))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(msg), `"type":"confirm_subscription"`) {
			break
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{
		"# TYPE gocable_connections gauge\ngocable_connections 1\n",
		"gocable_streams 1\n",
		"gocable_connections_total 1\n",
		"gocable_commands_total 1\n",
		"gocable_pubsub_up 1\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	// welcome and the confirmation, plus any ping of the 3 s heartbeat.
	m := regexp.MustCompile(`(?m)^gocable_frames_total (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("metrics lack gocable_frames_total:\n%s", body)
	}
	if n, _ := strconv.Atoi(m[1]); n < 2 || n > 4 {
		t.Errorf("gocable_frames_total = %d; want 2 (welcome, confirmation) plus at most 2 pings", n)
	}
}

// startGocable runs the binary's run with args on a free loopback port,
// origin checks off, until the test ends, and returns its address.
func startGocable(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args = append([]string{"--addr", "127.0.0.1:0", "--disable-forgery-protection", "--log-level", "error"}, args...)
	go func() { done <- run(ctx, args, io.Discard, ready) }()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
		return addr
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
		return ""
	}
}

// The binary serves health at --health-path, and metrics at
// --metrics-path; an empty path turns the endpoint off.
func TestHealthAndMetricsRoutes(t *testing.T) {
	const health, metrics, none = "health", "metrics", "404"
	for _, tc := range []struct {
		name string
		args []string
		want map[string]string // path: what it serves
	}{
		{"defaults", nil, map[string]string{"/health": health, "/metrics": metrics, "/up": none}},
		{"moved", []string{"--health-path", "/up", "--metrics-path", "/internal/metrics"},
			map[string]string{"/up": health, "/internal/metrics": metrics, "/health": none, "/metrics": none}},
		{"off", []string{"--health-path", "", "--metrics-path", ""}, map[string]string{"/health": none, "/metrics": none}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startGocable(t, tc.args...)
			for path, want := range tc.want {
				resp, err := http.Get("http://" + addr + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body := string(b)
				switch want {
				case health:
					if resp.StatusCode != 200 || body != `{"connections":0,"pubsub":"memory","status":"OK"}`+"\n" {
						t.Errorf("GET %s: %d %s; want the health report", path, resp.StatusCode, body)
					}
				case metrics:
					if resp.StatusCode != 200 || !strings.Contains(body, "# TYPE gocable_connections gauge\n") {
						t.Errorf("GET %s: %d %s; want the metrics", path, resp.StatusCode, body)
					}
				case none:
					if resp.StatusCode != 404 {
						t.Errorf("GET %s: %d; want 404", path, resp.StatusCode)
					}
				}
			}
		})
	}
}
