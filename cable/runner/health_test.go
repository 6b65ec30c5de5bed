package runner

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
)

// stoppableRedis starts a redis-server of the test's own, whose process
// the test may freeze with SIGSTOP. It is sent SIGCONT before the
// cleanup kills it.
func stoppableRedis(t *testing.T) (url string, proc *os.Process) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		url, proc, taken := startTestRedis(t)
		if !taken {
			t.Cleanup(func() { _ = proc.Signal(syscall.SIGCONT) })
			return url, proc
		}
		if attempt == 5 {
			t.Fatal("redis-server: every port tried was taken")
		}
	}
}

// probe answers GET url's status, or 0 when the request fails within a
// second (a probe's own timeout).
func probe(url string) int {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls url every 20ms until it answers want, and returns how
// long that took, or fails the test after limit.
func waitStatus(t *testing.T, url string, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := probe(url)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("GET %s: %d after %v; want %d", url, got, limit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A Redis that hangs (SIGSTOP: the TCP connections stay open and nothing
// answers) turns readiness red within the health bound: by default
// --health-interval 500ms plus --health-timeout 2s, so at most 2.5s after
// the freeze (between 2s and 2.5s, depending on when the freeze falls
// between two probes), asserted with a margin for a loaded machine. (Before the
// canary, /health stayed 200 until the pub/sub's keepalive gave up on
// its PING, 6.5s.) Liveness stays 200 throughout. After SIGCONT,
// readiness turns green again.
func TestReadinessHungRedis(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		interval time.Duration
		bound    time.Duration // the configured bound: interval + timeout
	}{
		{"defaults", nil, 500 * time.Millisecond, 2500 * time.Millisecond},
		{"configured", []string{"--health-interval", "200ms", "--health-timeout", "500ms"}, 200 * time.Millisecond, 700 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, proc := stoppableRedis(t)
			addr := startGocable(t, append([]string{"--redis-url", url}, tc.args...)...)
			base := "http://" + addr
			for _, path := range []string{"/health", "/health/ready", "/health/live"} {
				waitStatus(t, base+path, 200, 10*time.Second)
			}

			// Liveness is watched throughout, from its own goroutine.
			stop := make(chan struct{})
			liveDone := make(chan []int, 1)
			go func() { // owner: this test, which waits on liveDone
				var bad []int
				for {
					select {
					case <-stop:
						liveDone <- bad
						return
					case <-time.After(50 * time.Millisecond):
					}
					if code := probe(base + "/health/live"); code != 200 {
						bad = append(bad, code)
					}
				}
			}()

			// Freeze at a random moment between two probes.
			time.Sleep(rand.N(tc.interval))
			if err := proc.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			frozen := time.Now()
			// Generous for a loaded 2-core machine: the bound plus 1.5s.
			limit := tc.bound + 1500*time.Millisecond
			waitStatus(t, base+"/health/ready", 503, limit)
			ready := time.Since(frozen)
			waitStatus(t, base+"/health", 503, limit)
			health := time.Since(frozen)
			t.Logf("SIGSTOP detected: /health/ready 503 after %v, /health 503 after %v (bound %v)", ready.Round(time.Millisecond), health.Round(time.Millisecond), tc.bound)

			if err := proc.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			resumed := time.Now()
			waitStatus(t, base+"/health/ready", 200, 15*time.Second)
			waitStatus(t, base+"/health", 200, 15*time.Second)
			t.Logf("SIGCONT: ready again after %v", time.Since(resumed).Round(time.Millisecond))

			close(stop)
			if bad := <-liveDone; len(bad) > 0 {
				t.Errorf("/health/live answered %v while Redis hung; want 200 throughout", slices.Compact(bad))
			}
		})
	}
}

// With Redis, the canary travels on "<channel_prefix>:_gocable_canary/<node>",
// a channel of this node's own that no Rails app subscribes to, with a
// payload that is not JSON; a client whose channel streams from that very
// stream is sent none of it, and the round trip shows in the metrics.
func TestCanaryThroughRedis(t *testing.T) {
	url, _ := stoppableRedis(t)
	streamChannel := cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error {
		return s.StreamFrom(ctx, s.Param("stream").String())
	})
	t.Setenv("GOCABLE_HEALTH_INTERVAL", "50ms") // the flag's variable
	addr := startWith(t, Options{Channels: map[string]func() cable.Channel{"StreamChannel": func() cable.Channel { return streamChannel }}},
		"--redis-url", url, "--channel-prefix", "app_test")

	opt, _ := redis.ParseURL(url)
	raw := redis.NewClient(opt)
	defer raw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub := raw.PSubscribe(ctx, "app_test:_gocable_canary/*")
	defer sub.Close()
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatalf("no canary message on app_test:_gocable_canary/*: %v", err)
	}
	if !strings.HasPrefix(msg.Payload, "gocable canary ") || json.Valid([]byte(msg.Payload)) {
		t.Errorf("canary payload %q; want \"gocable canary <n>\", not JSON", msg.Payload)
	}
	stream := strings.TrimPrefix(msg.Channel, "app_test:")

	id := `{"channel":"StreamChannel","stream":` + strconv.Quote(stream) + `}`
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":`+strconv.Quote(id)+`}`)); err != nil {
		t.Fatal(err)
	}
	// Ten probes pass while the client is subscribed, then a real
	// broadcast, which must be the first message the client gets.
	var probes int
	for probes < 10 {
		if _, err := sub.ReceiveMessage(ctx); err != nil {
			t.Fatal(err)
		}
		probes++
	}
	if err := raw.Publish(ctx, msg.Channel, `"after"`).Err(); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []string
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		f := string(b)
		if strings.Contains(f, `"type":"ping"`) {
			continue
		}
		got = append(got, f)
		if strings.Contains(f, `"message"`) {
			break
		}
	}
	want := []string{`{"type":"welcome"}`, `{"identifier":` + strconv.Quote(id) + `,"type":"confirm_subscription"}`, `{"identifier":` + strconv.Quote(id) + `,"message":"after"}`}
	if !slices.Equal(got, want) {
		t.Errorf("client frames %q; want %q", got, want)
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^gocable_canary_round_trip_seconds (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("metrics lack gocable_canary_round_trip_seconds:\n%s", body)
	}
	if rtt, _ := strconv.ParseFloat(string(m[1]), 64); rtt <= 0 || rtt > 1 {
		t.Errorf("gocable_canary_round_trip_seconds %g; want in (0, 1]", rtt)
	} else {
		t.Logf("canary round trip through redis-server: %.3fms", rtt*1000)
	}
}

// The health flags refuse what makes no sense, from the command line or
// from their environment variables.
func TestHealthFlagsRejected(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--health-interval", "0s"}, "--health-interval 0s: must be positive"},
		{nil, []string{"--health-timeout", "-1s"}, "--health-timeout -1s: must be positive"},
		{map[string]string{"GOCABLE_HEALTH_TIMEOUT": "2"}, nil, "GOCABLE_HEALTH_TIMEOUT (for --health-timeout): invalid value: want a duration"},
		{map[string]string{"GOCABLE_HEALTH_INTERVAL": "fast"}, nil, "GOCABLE_HEALTH_INTERVAL (for --health-interval)"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // if it starts after all, it stops at once
			ready := make(chan string, 1)
			err := run(ctx, append([]string{"--addr", "127.0.0.1:0"}, tc.args...), io.Discard, ready)
			if len(ready) > 0 || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run = %v (started: %v); want an error with %q", err, len(ready) > 0, tc.want)
			}
		})
	}
}
