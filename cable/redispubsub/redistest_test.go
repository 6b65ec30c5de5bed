package redispubsub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process started by a test on a free
// loopback port, killed when the test ends.
type redisServer struct {
	t      testing.TB
	port   int
	dir    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	out    *syncBuffer
}

// startRedis starts a fresh redis-server, with no persistence, and waits
// until it answers PING. A missing redis-server fails the test: CI installs
// it, and a silently skipped compatibility test would prove nothing.
//
// The port is free when chosen but may be taken before redis-server binds
// it (by another test's server or an outgoing connection); the start is
// then retried on another port.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found in PATH (%v): install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis), or set REDIS_URL for the tests that can share a server", err)
	}
	s := &redisServer{t: t, dir: t.TempDir()}
	t.Cleanup(func() { s.kill() })
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		err := s.tryStart()
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			t.Fatal(err)
		}
	}
}

// redisURL returns REDIS_URL when it is set, else the URL of a fresh
// redis-server. Tests that share a server through REDIS_URL must use names
// of their own (see uniquePrefix).
func redisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return startRedis(t).URL()
}

// newRedisClient returns a client for url, closed when the test ends.
func newRedisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("redis.ParseURL(%q): %v", url, err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniquePrefix returns a channel prefix no other test uses.
func uniquePrefix(t testing.TB) string {
	return fmt.Sprintf("gocabletest_%s_%d", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), time.Now().UnixNano())
}

// URL returns the server's redis:// URL.
func (s *redisServer) URL() string { return "redis://" + s.Addr() }

// Addr returns the server's host:port.
func (s *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// errPortTaken reports that redis-server could not bind its port.
var errPortTaken = errors.New("port taken")

func (s *redisServer) start() {
	s.t.Helper()
	if err := s.tryStart(); err != nil {
		s.t.Fatal(err)
	}
}

// tryStart starts redis-server on s.port and waits until that very process
// answers: its INFO must carry our process id, so that a server of another
// test that took the port is never mistaken for ours.
func (s *redisServer) tryStart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := new(syncBuffer)
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.out, s.exited = cmd, out, exited
	want := fmt.Sprintf("process_id:%d\r\n", cmd.Process.Pid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd = nil
			if strings.Contains(out.String(), "in use") {
				return fmt.Errorf("redis-server on port %d: %w", s.port, errPortTaken)
			}
			return fmt.Errorf("redis-server on port %d exited at start; its output:\n%s", s.port, out)
		default:
		}
		if strings.Contains(redisInfo(s.Addr()), want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on port %d did not answer within 5s; its output:\n%s", s.port, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// redisInfo returns what INFO server answers at addr, or "" on any error.
func redisInfo(addr string) string {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return ""
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(b.String(), "process_id:") || !strings.HasSuffix(b.String(), "\r\n") {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *redisServer) Kill() {
	s.t.Helper()
	s.kill()
}

func (s *redisServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again, on the same port.
func (s *redisServer) Restart() { s.t.Helper(); s.start() }

// Signal sends sig to the running server (SIGSTOP, SIGCONT).
func (s *redisServer) Signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v to redis-server: %v", sig, err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 10ms until it holds or timeout passes, and
// reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// numSub returns PUBSUB NUMSUB for channel: how many connections subscribe
// to it.
func numSub(t testing.TB, c *redis.Client, channel string) int64 {
	t.Helper()
	m, err := c.PubSubNumSub(context.Background(), channel).Result()
	if err != nil {
		t.Fatalf("PUBSUB NUMSUB %s: %v", channel, err)
	}
	return m[channel]
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for capturing logs.
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

// goroutinesIn returns the stacks of the running goroutines that have a
// frame whose function name contains fn.
func goroutinesIn(fn string) []string {
	var stacks []string
	for _, g := range strings.Split(allStacks(), "\n\n") {
		if strings.Contains(g, fn) {
			stacks = append(stacks, g)
		}
	}
	return stacks
}

// allStacks returns the stacks of all goroutines.
func allStacks() string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// checkNoRedisGoroutines fails the test if goroutines of a PubSub are
// still running. After Close has returned, they may still be finishing
// their deferred calls, so it allows them a moment.
func checkNoRedisGoroutines(t testing.TB) {
	t.Helper()
	var g []string
	if !waitFor(time.Second, func() bool {
		g = goroutinesIn("redispubsub.(*PubSub)")
		return len(g) == 0
	}) {
		t.Errorf("%d PubSub goroutines left after Close:\n%s", len(g), strings.Join(g, "\n\n"))
	}
}
