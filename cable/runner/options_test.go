package runner

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

// startWith runs the runner with opts on a free port and returns its
// address; the server stops when the test ends.
func startWith(t *testing.T, opts Options, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args = append([]string{"--addr", "127.0.0.1:0", "--log-level", "error", "--disable-forgery-protection"}, args...)
	go func() { done <- serve(ctx, args, io.Discard, ready, opts) }() // owner: this test's cleanup
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-done:
		done <- err
		t.Fatalf("serve: %v", err)
	}
	return ""
}

// frames dials the cable endpoint with cookie (if any), sends cmds and
// returns the frames that follow, pings left out, until n have come.
func frames(t *testing.T, addr, cookie string, n int, cmds ...string) []string {
	t.Helper()
	h := http.Header{}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, c := range cmds {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(out) < n {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %q: %v", out, err)
		}
		if !strings.Contains(string(msg), `"type":"ping"`) {
			out = append(out, string(msg))
		}
	}
	return out
}

// The program's own channel is served, and replaces the built-in of the
// same name (a Rails app's ChatChannel ported to Go); Setup sees the built
// server and may add routes.
func TestOptionsChannelsAndSetup(t *testing.T) {
	mine := cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error {
		return s.Transmit(ctx, map[string]string{"from": "the program"})
	})
	var app *App
	addr := startWith(t, Options{
		Channels: map[string]func() cable.Channel{
			"ChatChannel":  func() cable.Channel { return mine },
			"OtherChannel": func() cable.Channel { return mine },
		},
		Setup: func(ctx context.Context, a *App) error {
			app = a
			a.Mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
			return nil
		},
	})
	if app == nil || app.Server == nil || app.Logger == nil {
		t.Fatalf("Setup got %+v; want the server, mux and logger", app)
	}

	for _, ch := range []string{"ChatChannel", "OtherChannel"} {
		id, _ := json.Marshal(`{"channel":"` + ch + `","room":"1"}`)
		got := frames(t, addr, "", 3, `{"command":"subscribe","identifier":`+string(id)+`}`)
		if want := `{"identifier":` + string(id) + `,"message":{"from":"the program"}}`; got[1] != want {
			t.Errorf("%s: got %s; want the program's channel: %s", ch, got[1], want)
		}
		if !strings.Contains(got[2], "confirm_subscription") {
			t.Errorf("%s: got %s; want confirm_subscription", ch, got[2])
		}
	}
	// The built-in that was not replaced is still served.
	id, _ := json.Marshal(`{"channel":"BenchmarkChannel"}`)
	if got := frames(t, addr, "", 2, `{"command":"subscribe","identifier":`+string(id)+`}`); !strings.Contains(got[1], "confirm_subscription") {
		t.Errorf("BenchmarkChannel: %s; want it confirmed", got[1])
	}

	resp, err := http.Get("http://" + addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Errorf("GET /hello = %q; want the route Setup added", body)
	}
}

// An Authenticator of the program's own identifies connections; --identify
// with it is a configuration error rather than one of them silently losing.
// A Setup error stops the program before it listens.
func TestOptionsAuthenticator(t *testing.T) {
	authn := cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
		if r.URL.Query().Get("token") != "good" {
			return nil, cable.ErrUnauthorized
		}
		return cable.Identity{"current_user": "7"}, nil
	})
	addr := startWith(t, Options{Authenticator: authn})
	if got := frames(t, addr, "", 1); !strings.Contains(got[0], `"reason":"unauthorized"`) {
		t.Errorf("without a token: %s; want an unauthorized disconnect", got[0])
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable?token=good", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"type":"welcome"}` {
		t.Errorf("with a token: %s, %v; want welcome", msg, err)
	}
	ws.Close()

	err = serve(context.Background(), []string{"--addr", "127.0.0.1:0", "--identify", "current_user=encrypted:user_id", "--secret-key-base", strings.Repeat("k", 64)},
		io.Discard, nil, Options{Authenticator: authn})
	if err == nil || !strings.Contains(err.Error(), "--identify") {
		t.Errorf("--identify with an Authenticator: %v; want an error naming --identify", err)
	}

	boom := errors.New("setup failed")
	ready := make(chan string, 1)
	err = serve(context.Background(), []string{"--addr", "127.0.0.1:0"}, io.Discard, ready, Options{Setup: func(context.Context, *App) error { return boom }})
	if !errors.Is(err, boom) || len(ready) > 0 {
		t.Errorf("Setup error: serve = %v (listening: %v); want the error before listening", err, len(ready) > 0)
	}
}
