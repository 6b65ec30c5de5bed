package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The returner frees memory once per fall of the connection count to half
// its peak or less (by at least minMemoryDrop), and no more often than its
// interval.
func TestMemoryReturner(t *testing.T) {
	t.Parallel()
	// Each poll sees {open, accepted so far}; the first is read at start.
	type poll struct {
		open     int
		accepted uint64
	}
	tests := []struct {
		name      string
		interval  time.Duration
		polls     []poll
		wantFrees int
	}{
		{"off", 0, []poll{{0, 0}, {2000, 2000}, {0, 2000}}, 0},
		{"growing", time.Nanosecond, []poll{{0, 0}, {50, 50}, {500, 500}, {2000, 2000}}, 0},
		{"fall to more than half", time.Nanosecond, []poll{{0, 0}, {2000, 2000}, {1001, 2000}, {1001, 2000}}, 0},
		{"fall too small", time.Nanosecond, []poll{{0, 0}, {99, 99}, {0, 99}, {0, 99}}, 0},
		{"fall to half", time.Nanosecond, []poll{{0, 0}, {2000, 2000}, {1000, 2000}, {1000, 2000}, {1000, 2000}}, 1},
		{"fall to zero", time.Nanosecond, []poll{{2000, 2000}, {0, 2000}, {0, 2000}, {0, 2000}}, 1},
		{"two waves", time.Nanosecond, []poll{{2000, 2000}, {0, 2000}, {2000, 4000}, {0, 4000}, {0, 4000}}, 2},
		{"two waves in one interval", time.Hour, []poll{{2000, 2000}, {0, 2000}, {2000, 4000}, {0, 4000}, {0, 4000}}, 1},
		{"fall over two polls", time.Nanosecond, []poll{{0, 0}, {2000, 2000}, {1500, 2000}, {900, 2000}, {900, 2000}}, 1},
		{"wave between two polls", time.Nanosecond, []poll{{0, 0}, {0, 2000}, {0, 2000}}, 1},
		{"steady with little churn", time.Nanosecond, []poll{{50, 50}, {50, 60}, {50, 70}, {50, 80}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var polls, frees atomic.Int64
			m := &memoryReturner{
				conns: func() (int, uint64) {
					i := int(polls.Add(1) - 1)
					if i >= len(tt.polls)-1 {
						cancel()
						i = len(tt.polls) - 1
					}
					return tt.polls[i].open, tt.polls[i].accepted
				},
				free:     func() { frees.Add(1) },
				interval: tt.interval,
				poll:     time.Millisecond,
				logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			wait := m.start(ctx)
			if tt.interval == 0 {
				cancel()
			}
			wait()
			if got := frees.Load(); got != int64(tt.wantFrees) {
				t.Errorf("polls %v, interval %v: %d frees; want %d", tt.polls, tt.interval, got, tt.wantFrees)
			}
		})
	}
}

// The runner returns memory after a crowd of connections leaves, and
// stops the returner on shutdown; --return-memory-interval 0 turns it off.
func TestRunReturnsMemory(t *testing.T) {
	const msg = "returned freed memory to the OS"
	for _, tt := range []struct {
		interval string
		want     bool
	}{{"100ms", true}, {"0", false}} {
		t.Run(tt.interval, func(t *testing.T) {
			var logs syncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan string, 1)
			done := make(chan error, 1)
			args := []string{"--addr", "127.0.0.1:0", "--log-level", "debug", "--disable-forgery-protection", "--return-memory-interval", tt.interval}
			go func() { done <- run(ctx, args, &logs, ready) }() // owner: this test, which waits on done
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			}()
			var addr string
			select {
			case addr = <-ready:
			case err := <-done:
				done <- err
				t.Fatalf("run: %v", err)
			}
			var wss []*websocket.Conn
			for range 2 * minMemoryDrop {
				ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", nil)
				if err != nil {
					t.Fatal(err)
				}
				wss = append(wss, ws)
			}
			time.Sleep(2 * memoryPoll) // the returner sees the peak
			for _, ws := range wss {
				ws.Close()
			}
			deadline := time.Now().Add(3*memoryPoll + 500*time.Millisecond)
			for !strings.Contains(logs.String(), msg) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if got := strings.Contains(logs.String(), msg); got != tt.want {
				t.Errorf("--return-memory-interval %s: logged %q: %v; want %v\n%s", tt.interval, msg, got, tt.want, logs.String())
			}
		})
	}
}

// A negative interval is refused, and so is an interval without a unit
// in the environment.
func TestReturnMemoryIntervalRefused(t *testing.T) {
	for _, tt := range []struct {
		env, arg, want string
	}{
		{"", "-1s", "--return-memory-interval -1s: must not be negative"},
		{"10", "", "GOCABLE_RETURN_MEMORY_INTERVAL (for --return-memory-interval): invalid value"},
	} {
		t.Run(fmt.Sprintf("%q %q", tt.env, tt.arg), func(t *testing.T) {
			args := []string{"--addr", "127.0.0.1:0", "--log-level", "error"}
			if tt.env != "" {
				t.Setenv("GOCABLE_RETURN_MEMORY_INTERVAL", tt.env)
			}
			if tt.arg != "" {
				args = append(args, "--return-memory-interval", tt.arg)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := run(ctx, args, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) with env %q = %v; want an error containing %q", args, tt.env, err, tt.want)
			}
		})
	}
}
