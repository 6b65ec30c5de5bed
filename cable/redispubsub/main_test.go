package redispubsub_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// exampleRedisURL is the URL of the redis-server that TestMain starts for
// the examples, which cannot start one of their own.
var exampleRedisURL string

// TestMain starts the examples' redis-server, and fails the run if
// goroutines outlive the tests: every PubSub a test makes must be closed,
// and Close must leave nothing behind (coder/websocket's leak check).
func TestMain(m *testing.M) {
	srv, err := startExampleRedis()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	exampleRedisURL = srv.URL()
	code := m.Run()
	srv.kill()
	_ = os.RemoveAll(srv.dir)
	if code == 0 {
		if leaked := waitGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutine leak:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// startExampleRedis starts a redis-server as startRedis does, outside any
// test; its caller kills it and removes its directory.
func startExampleRedis() (*redisServer, error) {
	dir, err := os.MkdirTemp("", "redispubsub-example")
	if err != nil {
		return nil, err
	}
	s := &redisServer{dir: dir}
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		s.port = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		err = s.tryStart()
		if err == nil {
			return s, nil
		}
		if attempt == 5 || !errors.Is(err, errPortTaken) {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("the examples' redis-server: %w (install it: apt-get install -y redis-server)", err)
		}
	}
}

func waitGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		var ours []string
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "gocable/gocable") && !strings.Contains(g, "TestMain") && !strings.Contains(g, "waitGoroutines") {
				ours = append(ours, g)
			}
		}
		if len(ours) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(ours, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
