package runner

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// startLogged runs the binary's run with args until the test ends and
// returns its address and its log.
func startLogged(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args = append([]string{"--addr", "127.0.0.1:0", "--log-level", "info"}, args...)
	go func() { done <- run(ctx, args, logs, ready) }() // owner: the cleanup below waits for it
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
		return addr, logs
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
		return "", nil
	}
}

// The origin flags keep Rails' rules (allow_request_origin?), and a refused
// origin is logged with the flag that would allow it.
func TestOriginFlags(t *testing.T) {
	const hint = "--allowed-origins"
	tests := []struct {
		name    string
		args    []string
		origin  string // "" for the request's own origin
		wantOK  bool
		wantLog bool // the refusal names the flag
	}{
		{"same origin by default", nil, "", true, false},
		{"other origin refused", nil, "http://evil.example", false, true},
		{"exact entry", []string{"--allowed-origins", "http://a.example, http://b.example"}, "http://b.example", true, false},
		{"Ruby pattern entry", []string{"--allowed-origins", `/\Ahttps:\/\/.*\.example\z/`}, "https://app.example", true, false},
		{"pattern is anchored", []string{"--allowed-origins", `/\Ahttps:\/\/.*\.example\z/`}, "https://app.example.evil", false, true},
		{"same origin off", []string{"--disable-same-origin"}, "", false, true},
		{"forgery protection off", []string{"--disable-forgery-protection"}, "http://evil.example", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, logs := startLogged(t, tt.args...)
			origin := tt.origin
			if origin == "" {
				origin = "http://" + addr
			}
			ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", http.Header{"Origin": {origin}})
			if err == nil {
				ws.Close()
			}
			if tt.wantOK != (err == nil) {
				t.Fatalf("dial from %s = %v; want accepted %v", origin, err, tt.wantOK)
			}
			if !tt.wantOK {
				if resp == nil || resp.StatusCode != http.StatusNotFound {
					t.Errorf("refusal %v; want Rails' 404", resp)
				} else {
					io.Copy(io.Discard, resp.Body)
				}
			}
			log := logs.String()
			if got := strings.Contains(log, hint) && strings.Contains(log, "origin="+origin); got != tt.wantLog {
				t.Errorf("log names %s for %s: %v; want %v\n%s", hint, origin, got, tt.wantLog, log)
			}
		})
	}
}

// A comma inside a /regexp/ of --allowed-origins does not split it.
func TestSplitOrigins(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"https://a.example,https://b.example", []string{"https://a.example", "https://b.example"}},
		{`/a{1,3}\.example/,https://b.example`, []string{`/a{1,3}\.example/`, "https://b.example"}},
		{`https://b.example, /a{1,3}/i`, []string{"https://b.example", " /a{1,3}/i"}},
		{"", []string{""}},
	}
	for _, tt := range tests {
		if got := splitOrigins(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitOrigins(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
