package runner

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

// demoFS is the embedded demo directory, with the npm bundles replaced by
// stand-ins when withBundles is set and removed otherwise, so the tests do
// not depend on whether `npm run demo-assets` ran before the build.
func demoFS(t *testing.T, withBundles bool) fs.FS {
	t.Helper()
	sub, err := fs.Sub(demoFiles, "demo")
	if err != nil {
		t.Fatal(err)
	}
	m := fstest.MapFS{}
	err = fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path, "static/") {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		m[path] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	m["static/README.md"] = &fstest.MapFile{Data: []byte("placeholder")}
	if withBundles {
		m["static/"+actionCableBundle] = &fstest.MapFile{Data: []byte("export function createConsumer() {}\n")}
		m["static/"+turboBundle] = &fstest.MapFile{Data: []byte("/* turbo */\n")}
	}
	return m
}

// demoServer runs a gocable-like mux with -demo installed.
func demoServer(t *testing.T, files fs.FS) (*cable.Server, *httptest.Server) {
	t.Helper()
	srv := &cable.Server{Logger: discardLogger()}
	mux := http.NewServeMux()
	mux.Handle("/cable", srv)
	c := &demoConfig{enabled: true, files: files}
	if err := c.install(mux, srv, "/cable", discardLogger()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		hs.Close()
	})
	return srv, hs
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestDemoPages(t *testing.T) {
	_, hs := demoServer(t, demoFS(t, true))
	for _, tc := range []struct {
		path     string
		status   int
		ctype    string
		contains []string
		absent   []string
	}{
		{"/room/lobby", 200, "text/html", []string{
			`<meta name="action-cable-url" content="/cable">`, `data-room="lobby"`, `<title>#lobby`,
			`src="/demo/room.js"`, `id="username"`,
		}, []string{"build-hint"}},
		{"/room/caf%C3%A9-2.x", 200, "text/html", []string{`data-room="café-2.x"`}, nil},
		{"/room/%3Cscript%3E", 400, "text/plain", nil, []string{"<script>"}},
		{"/room/" + strings.Repeat("a", 65), 400, "text/plain", nil, nil},
		{"/room", 302, "", nil, nil},
		{"/room/", 302, "", nil, nil},
		{"/turbo-demo?signed-stream-name=" + "abc%22%3E%3Cb%3E--def", 200, "text/html", []string{
			`<turbo-cable-stream-source channel="Turbo::StreamsChannel" signed-stream-name="abc&#34;&gt;&lt;b&gt;--def">`,
			`src="/demo/static/turbo.js"`, `id="messages"`,
		}, []string{`"><b>`}},
		{"/turbo-demo", 200, "text/html", []string{"Give a signed stream name"}, []string{"<turbo-cable-stream-source"}},
		{"/demo/room.js", 200, "text/javascript", []string{`from "./static/actioncable.esm.js"`}, nil},
		{"/demo/turbo-page.js", 200, "text/javascript", nil, nil},
		{"/demo/style.css", 200, "text/css", nil, nil},
		{"/demo/room.html", 404, "", nil, nil},
		{"/demo/static/actioncable.esm.js", 200, "text/javascript", []string{"createConsumer"}, nil},
		{"/demo/static/turbo.js", 200, "text/javascript", nil, nil},
		{"/demo/static/README.md", 404, "", nil, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res, body := get(t, hs.URL+tc.path)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d; want %d\n%s", res.StatusCode, tc.status, body)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("Content-Type %q; want %s", ct, tc.ctype)
			}
			for _, s := range tc.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %s", s)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(body, s) {
					t.Errorf("body has %s", s)
				}
			}
			if tc.status == 302 && res.Header.Get("Location") != "/room/lobby" {
				t.Errorf("Location %q", res.Header.Get("Location"))
			}
		})
	}
}

// Without the npm bundles the binary still builds and serves the pages,
// which say how to build them; the bundle URLs answer 503.
func TestDemoWithoutBundles(t *testing.T) {
	_, hs := demoServer(t, demoFS(t, false))
	for _, p := range []string{"/room/lobby", "/turbo-demo?signed-stream-name=x"} {
		res, body := get(t, hs.URL+p)
		if res.StatusCode != 200 || !strings.Contains(body, `id="build-hint"`) || !strings.Contains(body, "npm run demo-assets") {
			t.Errorf("%s: %d, no build hint:\n%s", p, res.StatusCode, body)
		}
	}
	for _, b := range []string{actionCableBundle, turboBundle} {
		res, body := get(t, hs.URL+"/demo/static/"+b)
		if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "npm run demo-assets") {
			t.Errorf("%s: %d %s", b, res.StatusCode, body)
		}
	}
}

// The embedded files are consistent with what was built: the pages load,
// and each bundle is served exactly when the page says it is present.
func TestDemoEmbedded(t *testing.T) {
	_, hs := demoServer(t, nil)
	_, page := get(t, hs.URL+"/room/lobby")
	res, _ := get(t, hs.URL+"/demo/static/"+actionCableBundle)
	missing := strings.Contains(page, `id="build-hint"`)
	if missing != (res.StatusCode == http.StatusServiceUnavailable) {
		t.Errorf("page says bundle missing = %v, but the bundle answers %d", missing, res.StatusCode)
	}
	if res.StatusCode != 200 && res.StatusCode != 503 {
		t.Errorf("bundle status %d", res.StatusCode)
	}
}

func TestDemoConfig(t *testing.T) {
	t.Setenv("GOCABLE_DEMO", "")
	os.Unsetenv("GOCABLE_DEMO")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c demoConfig
	c.register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if err := c.install(mux, &cable.Server{}, "/cable", discardLogger()); err != nil {
		t.Fatal(err)
	}
	if _, pattern := mux.Handler(httptest.NewRequest("GET", "/room/lobby", nil)); pattern != "" {
		t.Errorf("demo served without -demo: %q", pattern)
	}

	t.Setenv("GOCABLE_DEMO", "true")
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	c = demoConfig{}
	c.register(fs)
	fs.Parse(nil)
	if !c.enabled {
		t.Error("GOCABLE_DEMO=true does not enable the demo")
	}
	srv := &cable.Server{}
	if err := c.install(mux, srv, "/cable", discardLogger()); err != nil {
		t.Fatal(err)
	}
	if err := c.install(http.NewServeMux(), srv, "/cable", discardLogger()); err == nil {
		t.Error("a second install on the same server did not report the duplicate channel")
	}
	if err := c.install(mux, &cable.Server{}, "/cable", discardLogger()); err == nil {
		t.Error("a second install on the same mux did not report the duplicate routes")
	}
}

// roomClient is a raw ActionCable client for the room channel.
type roomClient struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

func dialRoom(t *testing.T, hs *httptest.Server, room, user string) *roomClient {
	t.Helper()
	h := http.Header{"Origin": {hs.URL}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http")+"/cable", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	id, _ := json.Marshal(map[string]string{"channel": demoRoomChannel, "room": room, "user": user})
	c := &roomClient{t: t, ws: ws, id: string(id)}
	c.expectType("welcome")
	c.send("subscribe", "")
	return c
}

func (c *roomClient) send(command, data string) {
	c.t.Helper()
	m := map[string]string{"command": command, "identifier": c.id}
	if data != "" {
		m["data"] = data
	}
	if err := c.ws.WriteJSON(m); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame that is not a ping.
func (c *roomClient) next() map[string]json.RawMessage {
	c.t.Helper()
	for {
		c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.t.Fatal(err)
		}
		var f map[string]json.RawMessage
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Fatal(err)
		}
		if string(f["type"]) != `"ping"` {
			return f
		}
	}
}

func (c *roomClient) expectType(typ string) {
	c.t.Helper()
	if f := c.next(); string(f["type"]) != `"`+typ+`"` {
		c.t.Fatalf("got %v; want type %s", f, typ)
	}
}

// expectMessages reads frames until it has seen every broadcast in want,
// in order; confirmations in between are skipped.
func (c *roomClient) expectMessages(want ...string) {
	c.t.Helper()
	for _, w := range want {
		for {
			f := c.next()
			if _, ok := f["message"]; !ok {
				continue
			}
			if string(f["message"]) != w {
				c.t.Fatalf("got %s; want %s", f["message"], w)
			}
			break
		}
	}
}

func TestDemoRoomChannel(t *testing.T) {
	srv, hs := demoServer(t, demoFS(t, true))

	alice := dialRoom(t, hs, "lobby", " alice ")
	alice.expectMessages(`{"type":"join","user":"alice","online":1}`)
	bob := dialRoom(t, hs, "lobby", "bob")
	bob.expectMessages(`{"type":"join","user":"bob","online":2}`)
	alice.expectMessages(`{"type":"join","user":"bob","online":2}`)
	other := dialRoom(t, hs, "other", "carol")
	other.expectMessages(`{"type":"join","user":"carol","online":1}`)

	bob.send("message", `{"action":"speak","message":"hi <alice> & all"}`)
	want := `{"type":"message","user":"bob","message":"hi \u003calice\u003e \u0026 all"}`
	alice.expectMessages(want)
	bob.expectMessages(want)
	// Invalid messages are dropped; the next one arrives.
	bob.send("message", `{"action":"speak","message":"   "}`)
	bob.send("message", `{"action":"speak","message":"`+strings.Repeat("x", maxMessageRunes+1)+`"}`)
	bob.send("message", `{"action":"shout","message":"x"}`)
	alice.send("message", `{"action":"speak","message":"hello bob"}`)
	bob.expectMessages(`{"type":"message","user":"alice","message":"hello bob"}`)
	alice.expectMessages(`{"type":"message","user":"alice","message":"hello bob"}`)

	// Closing bob's socket announces the leave with the new count.
	bob.ws.Close()
	alice.expectMessages(`{"type":"leave","user":"bob","online":1}`)
	if n := srv.SubscriberCount("room_lobby"); n != 1 {
		t.Errorf("SubscriberCount = %d; want 1", n)
	}
	// An explicit unsubscribe too.
	dave := dialRoom(t, hs, "lobby", "dave")
	dave.expectMessages(`{"type":"join","user":"dave","online":2}`)
	alice.expectMessages(`{"type":"join","user":"dave","online":2}`)
	dave.send("unsubscribe", "")
	alice.expectMessages(`{"type":"leave","user":"dave","online":1}`)

	// carol's room heard none of it.
	other.send("message", `{"action":"speak","message":"anyone?"}`)
	other.expectMessages(`{"type":"message","user":"carol","message":"anyone?"}`)
}

func TestDemoRoomChannelRejects(t *testing.T) {
	_, hs := demoServer(t, demoFS(t, true))
	watcher := dialRoom(t, hs, "lobby", "watcher")
	watcher.expectMessages(`{"type":"join","user":"watcher","online":1}`)
	for _, tc := range []struct{ room, user string }{
		{"lobby", ""}, {"lobby", "   "}, {"lobby", strings.Repeat("u", maxUserRunes+1)}, {"lobby", "a\x00b"},
		{"", "x"}, {"bad room", "x"}, {"..", "x"},
	} {
		c := dialRoom(t, hs, tc.room, tc.user)
		c.expectType("reject_subscription")
	}
	// No join or leave was announced for them.
	watcher.send("message", `{"action":"speak","message":"still alone"}`)
	watcher.expectMessages(`{"type":"message","user":"watcher","message":"still alone"}`)
}
