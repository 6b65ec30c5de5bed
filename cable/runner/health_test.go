package runner

import (
	"io"
	"net/http"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
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
// the freeze, asserted with a margin for a loaded machine. (Before the
// canary, /health stayed 200 until the pub/sub's keepalive gave up on
// its PING, 6.5s.) Liveness stays 200 throughout. After SIGCONT,
// readiness turns green again.
func TestReadinessHungRedis(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		bound time.Duration // the configured bound: interval + timeout
	}{
		{"defaults", nil, 2500 * time.Millisecond},
		{"configured", []string{"--health-interval", "200ms", "--health-timeout", "500ms"}, 700 * time.Millisecond},
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
