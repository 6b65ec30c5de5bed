package redispubsub_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/gocable/gocable/cable/internal/leaktest"
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
	leaktest.Main(m, func() {
		srv.kill()
		_ = os.RemoveAll(srv.dir)
	})
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
