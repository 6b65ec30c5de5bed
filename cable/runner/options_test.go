package runner

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/auth"
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

// subscribe sends one subscribe to channel and returns the answer's type.
func subscribe(t *testing.T, addr, channel string) string {
	t.Helper()
	id, _ := json.Marshal(`{"channel":"` + channel + `"}`)
	got := frames(t, addr, "", 2, `{"command":"subscribe","identifier":`+string(id)+`}`)
	var f struct{ Type string }
	json.Unmarshal([]byte(got[1]), &f)
	return f.Type
}

// The program's own channels are served; the built-ins, which authorize
// nothing, are off unless --channels names them, and one of the same name
// as the program's never is. Flags adds the program's flags; Setup sees
// the built server and may add routes; Stop runs after the connections
// ended.
func TestOptionsChannelsAndSetup(t *testing.T) {
	mine := cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error {
		return s.Transmit(ctx, map[string]string{"from": "the program"})
	})
	var app *App
	var greeting string
	stopped := make(chan *cable.Server, 1)
	opts := Options{
		Channels: map[string]func() cable.Channel{
			"ChatChannel":  func() cable.Channel { return mine },
			"OtherChannel": func() cable.Channel { return mine },
		},
		Flags: func(fs *flag.FlagSet) { fs.StringVar(&greeting, "greeting", "hi", "the program's own flag") },
		Setup: func(ctx context.Context, a *App) error {
			app = a
			a.Mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, greeting) })
			return nil
		},
		Stop: func(ctx context.Context) error {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("Stop's context has no deadline")
			}
			stopped <- app.Server
			return nil
		},
	}
	t.Run("default", func(t *testing.T) {
		addr := startWith(t, opts, "--greeting", "hello")
		if app == nil || app.Server == nil || app.Logger == nil || app.Identified != nil {
			t.Fatalf("Setup got %+v; want the server, mux and logger, and no Identified without --identify", app)
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
		if got := subscribe(t, addr, "BenchmarkChannel"); got != "reject_subscription" {
			t.Errorf("BenchmarkChannel beside the program's channels: %s; want it off by default", got)
		}
		resp, err := http.Get("http://" + addr + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello" {
			t.Errorf("GET /hello = %q; want the route Setup added, with --greeting", body)
		}
	})
	select {
	case srv := <-stopped:
		if n := srv.Stats().Connections; n != 0 {
			t.Errorf("Stop ran with %d connections open; want after they ended", n)
		}
	default:
		t.Error("Stop did not run")
	}
	t.Run("--channels", func(t *testing.T) {
		addr := startWith(t, opts, "--channels", "chat,benchmark")
		if got := subscribe(t, addr, "BenchmarkChannel"); got != "confirm_subscription" {
			t.Errorf("BenchmarkChannel with --channels benchmark: %s; want it served", got)
		}
		id, _ := json.Marshal(`{"channel":"ChatChannel","room":"1"}`)
		if got := frames(t, addr, "", 2, `{"command":"subscribe","identifier":`+string(id)+`}`); !strings.Contains(got[1], "the program") {
			t.Errorf("ChatChannel with --channels chat: %s; want the program's, never the built-in", got[1])
		}
	})
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

// With --identify, Setup sees what the cookies say as App.Identified and
// may wrap it, as a Rails connection looks the user up after reading the
// cookie (User.find_by(id: cookies.encrypted[:user_id]) ||
// reject_unauthorized_connection): a genuine cookie of a user the app no
// longer has is refused.
func TestOptionsIdentifiedWrapped(t *testing.T) {
	skb := strings.Repeat("k", 64)
	cfg, err := auth.LoadDefaults("7.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg.SecretKeyBase = skb
	jar, err := auth.NewRailsCookies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cookie := func(id int) string {
		v, err := jar.EncryptedValue("user_id", id, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return "user_id=" + v
	}
	deleted := "9"
	addr := startWith(t, Options{Setup: func(ctx context.Context, app *App) error {
		if app.Identified == nil {
			return errors.New("no Identified with --identify")
		}
		app.Server.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			id, err := app.Identified.Authenticate(ctx, r)
			if err != nil || id["current_user"] == deleted {
				return nil, cable.ErrUnauthorized
			}
			return id, nil
		})
		return nil
	}}, "--identify", "current_user=encrypted:user_id", "--secret-key-base", skb, "--load-defaults", "7.1")

	if got := frames(t, addr, cookie(7), 1); got[0] != `{"type":"welcome"}` {
		t.Errorf("user 7: %s; want welcome", got[0])
	}
	for name, c := range map[string]string{"deleted user": cookie(9), "no cookie": ""} {
		if got := frames(t, addr, c, 1); !strings.Contains(got[0], `"reason":"unauthorized"`) {
			t.Errorf("%s: %s; want an unauthorized disconnect", name, got[0])
		}
	}
}
