package runner

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Every value the binary cannot use is an error before it listens, as the
// same value given as a flag is: an environment variable the flag's parser
// refuses (not a silent default, which turned GOCABLE_TOKEN_MAX_AGE=3600
// into 30 days), a negative size, a path the mux would panic on, a Redis
// URL that does not parse (without its password in the message).
func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // in the error
	}{
		{"duration without unit in env", map[string]string{"GOCABLE_TOKEN_MAX_AGE": "3600"}, nil,
			"GOCABLE_TOKEN_MAX_AGE (for --token-max-age): invalid value: want a duration"},
		{"shutdown timeout in env", map[string]string{"GOCABLE_SHUTDOWN_TIMEOUT": "10"}, nil, "GOCABLE_SHUTDOWN_TIMEOUT"},
		{"warden timeout in env", map[string]string{"GOCABLE_WARDEN_TIMEOUT": "30"}, nil, "GOCABLE_WARDEN_TIMEOUT"},
		{"bool in env", map[string]string{"GOCABLE_DISABLE_FORGERY_PROTECTION": "hunter2"}, nil, "want true or false"},
		{"size in env", map[string]string{"GOCABLE_MAX_MESSAGE_SIZE": "1MB"}, nil, "want a whole number"},
		{"negative size", nil, []string{"--max-message-size", "-5"}, "must not be negative"},
		{"negative queue", nil, []string{"--send-queue", "-1"}, "must not be negative"},
		{"negative shutdown timeout", nil, []string{"--shutdown-timeout", "-1s"}, "must be positive"},
		{"relative path", nil, []string{"--path", "cable"}, `--path "cable": must start with /`},
		{"empty path", nil, []string{"--path", ""}, "--path"},
		{"relative health path", nil, []string{"--health-path", "health"}, "--health-path"},
		{"metrics on the cable path", nil, []string{"--metrics-path", "/cable"}, "--metrics-path"},
		{"redis url with a bad port", nil, []string{"--redis-url", "redis://:hunter2@127.0.0.1:notaport/0"}, "invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append([]string{"--addr", "127.0.0.1:0", "--log-level", "error"}, tt.args...)
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				ready := make(chan string, 1)
				ctx, cancel := context.WithCancel(context.Background())
				cancel() // if it starts after all, it stops at once
				err = run(ctx, args, io.Discard, ready)
				if len(ready) > 0 {
					err = fmt.Errorf("it started (run returned %v)", err)
				}
			}()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v; want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error repeats a value that may be secret: %v", err)
			}
		})
	}
}

// A slow HTTP request in flight must not use up the shutdown's time: the
// WebSocket clients still get Rails' server_restart frame at once.
func TestShutdownWithSlowRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args := []string{"--addr", "127.0.0.1:0", "--disable-forgery-protection", "--log-level", "error",
		"--shutdown-timeout", "3s", "--broadcast-secret", strings.Repeat("s", 32)}
	go func() { done <- run(ctx, args, io.Discard, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"type":"welcome"}` {
		t.Fatalf("first frame %s, %v", msg, err)
	}

	// A POST whose body never finishes: the handler waits reading it.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /_broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", strings.Repeat("s", 32))
	time.Sleep(100 * time.Millisecond) // let the server start that request

	start := time.Now()
	cancel()
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("no server_restart before the socket ended: %v", err)
		}
		if string(msg) == `{"type":"disconnect","reason":"server_restart","reconnect":true}` {
			break
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("server_restart came %v after the shutdown began; the slow request held it", d)
	}
	slow.Close()
	select {
	case <-done: // an error for the request cut short is fine
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
}
