package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if goroutines of the tool or of the in-process
// server outlive the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutine leak:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func waitGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		var ours []string
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if (strings.Contains(g, "cmd/cablebench/") || strings.Contains(g, "gocable/gocable/cable")) &&
				!strings.Contains(g, "TestMain") && !strings.Contains(g, "waitGoroutines") {
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

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		args    []string
		wantErr string // a substring; "" means success
	}{
		{"defaults", "idle", nil, ""},
		{"ipv4 loopback", "connect", []string{"-url", "ws://127.0.0.1:9/cable"}, ""},
		{"other 127/8", "connect", []string{"-url", "ws://127.1.2.3:9/cable"}, ""},
		{"ipv6 loopback", "connect", []string{"-url", "ws://[::1]:9/cable"}, ""},
		{"localhost", "connect", []string{"-url", "wss://localhost/cable"}, ""},
		{"remote name", "connect", []string{"-url", "ws://example.com/cable"}, "not loopback"},
		{"remote ip", "connect", []string{"-url", "ws://10.0.0.1:8080/cable"}, "not loopback"},
		{"unspecified", "connect", []string{"-url", "ws://0.0.0.0:8080/cable"}, "not loopback"},
		{"localhost lookalike", "connect", []string{"-url", "ws://localhost.example.com/cable"}, "not loopback"},
		{"remote allowed", "connect", []string{"-url", "ws://example.com/cable", "-allow-remote"}, ""},
		{"http scheme", "connect", []string{"-url", "http://127.0.0.1/cable"}, "want ws://"},
		{"no host", "connect", []string{"-url", "ws:///cable"}, "no host"},
		{"identifier not object", "echo", []string{"-identifier", "BenchmarkChannel"}, "not a JSON object"},
		{"identifier trailing", "echo", []string{"-identifier", `{"channel":"X"}x`}, "not a JSON object"},
		{"too many conns", "idle", []string{"-n", "100001"}, "-n 100001"},
		{"no conns", "connect", []string{"-n", "0"}, "-n 0"},
		{"no concurrency", "connect", []string{"-c", "0"}, "-c 0"},
		{"too much concurrency", "echo", []string{"-c", "5001"}, "-c 5001"},
		{"no round trips", "echo", []string{"-k", "0"}, "-k 0"},
		{"too many deliveries", "broadcast", []string{"-n", "100000", "-m", "101"}, "deliveries"},
		{"too many messages", "broadcast", []string{"-m", "100001"}, "-m 100001"},
		{"interval too short", "broadcast", []string{"-interval", "10us"}, "-interval"},
		{"timeout too long", "connect", []string{"-timeout", "2h"}, "-timeout"},
		{"settle too long", "idle", []string{"-settle", "11m"}, "-settle"},
		{"negative pad", "echo", []string{"-pad", "-1"}, "-pad"},
		{"negative pid", "idle", []string{"-pid", "-2"}, "-pid"},
		{"missing pid", "idle", []string{"-pid", "999999999"}, "server process"},
		{"publish url", "broadcast", []string{"-publish-url", "http://127.0.0.1:8090/_broadcast"}, ""},
		{"remote publish url", "broadcast", []string{"-publish-url", "http://example.com/_broadcast"}, "not loopback"},
		{"publish url scheme", "broadcast", []string{"-publish-url", "ws://127.0.0.1/_broadcast"}, "want http://"},
		{"publish body without data", "broadcast", []string{"-publish-url", "http://127.0.0.1/p", "-publish-body", `{"stream":"all"}`}, "{{data}}"},
		{"publish header", "broadcast", []string{"-publish-header", "nocolon"}, "Name: value"},
		{"unknown mode", "flood", nil, "unknown mode"},
		{"extra args", "idle", []string{"now"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOptions(tt.mode, tt.args, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("parseOptions(%q, %q): %v", tt.mode, tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("parseOptions(%q, %q) error = %v; want one containing %q", tt.mode, tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestDefaultOrigin(t *testing.T) {
	tests := []struct{ url, want string }{
		{"ws://127.0.0.1:8080/cable", "http://127.0.0.1:8080"},
		{"wss://localhost/cable", "https://localhost"},
		{"ws://[::1]:9/x", "http://[::1]:9"},
	}
	for _, tt := range tests {
		o, err := parseOptions("connect", []string{"-url", tt.url}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if o.origin != tt.want {
			t.Errorf("origin for %s = %q; want %q", tt.url, o.origin, tt.want)
		}
	}
	o, err := parseOptions("connect", []string{"-origin", "https://app.example"}, io.Discard)
	if err != nil || o.origin != "https://app.example" {
		t.Errorf("-origin https://app.example: origin %q, %v", o.origin, err)
	}
}

func TestGuardedDialRefusesRemote(t *testing.T) {
	dial := guardedDial(false)
	for _, addr := range []string{"10.0.0.1:80", "example.com:80", "[2001:db8::1]:80", "noport"} {
		if _, err := dial(context.Background(), "tcp", addr); !errors.Is(err, errRemote) {
			t.Errorf("guardedDial(false)(%q) error = %v; want errRemote", addr, err)
		}
	}
}

func TestExpandBody(t *testing.T) {
	data := []byte(`{"seq":1,"sent":2}`)
	tests := []struct{ tmpl, want string }{
		{`{"stream":"all","data":{{data_json}}}`, `{"stream":"all","data":"{\"seq\":1,\"sent\":2}"}`},
		{`{"stream":"all","data":{{data}}}`, `{"stream":"all","data":{"seq":1,"sent":2}}`},
		{`{"broadcasts":{"all":{{data}}},"n":{{seq}}}`, `{"broadcasts":{"all":{"seq":1,"sent":2}},"n":7}`},
	}
	for _, tt := range tests {
		if got := expandBody(tt.tmpl, 7, data); got != tt.want {
			t.Errorf("expandBody(%q) = %s; want %s", tt.tmpl, got, tt.want)
		}
	}
}

func TestSockets(t *testing.T) {
	tests := []struct {
		mode string
		args []string
		want int
	}{
		{"idle", []string{"-n", "10000", "-c", "100"}, 10000},
		{"connect", []string{"-n", "50000", "-c", "100"}, 100},
		{"connect", []string{"-n", "50000", "-c", "100", "-keep"}, 50000},
		{"broadcast", []string{"-n", "5000"}, 5001},
		{"echo", []string{"-c", "10", "-k", "100000"}, 10},
	}
	for _, tt := range tests {
		o, err := parseOptions(tt.mode, tt.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got, need := o.sockets(); got != tt.want || need != uint64(got)+64 {
			t.Errorf("%s %q: sockets() = %d, %d; want %d, %d", tt.mode, tt.args, got, need, tt.want, tt.want+64)
		}
	}
}

func TestRaiseNoFile(t *testing.T) {
	n, err := raiseNoFile()
	if err != nil || n == 0 {
		t.Fatalf("raiseNoFile() = %d, %v", n, err)
	}
}

func TestRunUsage(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), nil, io.Discard, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "Modes:") {
		t.Errorf("run() = %d, stderr %q; want %d and the usage", code, stderr.String(), exitUsage)
	}
	if code := run(context.Background(), []string{"idle", "-url", "ws://192.0.2.1/cable"}, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("run(idle -url ws://192.0.2.1/cable) = %d; want %d", code, exitUsage)
	}
	if code := run(context.Background(), []string{"echo", "-h"}, io.Discard, io.Discard); code != exitOK {
		t.Errorf("run(echo -h) = %d; want %d", code, exitOK)
	}
}
