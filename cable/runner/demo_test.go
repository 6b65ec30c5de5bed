package runner

import (
	"context"
	"flag"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gocable/gocable/cable"
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
