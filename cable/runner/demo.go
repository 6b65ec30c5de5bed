package runner

import (
	"embed"
	"flag"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/channels"
)

// demoFiles holds the demo's pages, scripts and styles, and static/, where
// `npm run demo-assets` (in js-client-tests) copies the official
// @rails/actioncable and @hotwired/turbo-rails bundles before the binary is
// built. Those bundles are not committed: static/ holds only a README then,
// and the pages say how to build them.
//
//go:embed demo/*.html demo/*.js demo/*.css demo/static
var demoFiles embed.FS

// The bundles the pages load from /demo/static/.
const (
	actionCableBundle = "actioncable.esm.js" // @rails/actioncable app/assets/javascripts/actioncable.esm.js
	turboBundle       = "turbo.js"           // @hotwired/turbo-rails app/assets/javascripts/turbo.js
)

// demoBuildHint says how to put the bundles into the binary.
const demoBuildHint = "The demo's JavaScript bundles are not built into this gocable binary. " +
	"Build them from npm, then rebuild gocable: cd js-client-tests && npm ci && npm run demo-assets && cd .. && go build ./cmd/gocable"

// demoConfig holds the -demo flag: a chat room at /room/{name} and a
// Turbo Streams page at /turbo-demo, served with the official JavaScript
// clients.
type demoConfig struct {
	enabled bool
	files   fs.FS // nil: demoFiles; tests replace it
}

// register registers -demo on fs.
func (c *demoConfig) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.enabled, "demo", envBool("GOCABLE_DEMO", false),
		"serve the demo chat room at /room/{name} (DemoRoomChannel) and a Turbo Streams page at /turbo-demo (env GOCABLE_DEMO)")
}

// install registers channels.DemoRoom (as DemoRoomChannel) on srv and the demo's pages on mux,
// when -demo is set. cablePath is where srv is mounted; the pages connect
// to it.
func (c *demoConfig) install(mux *http.ServeMux, srv *cable.Server, cablePath string, logger *slog.Logger) error {
	if !c.enabled {
		return nil
	}
	site, err := newDemoSite(c.files, cablePath, logger)
	if err != nil {
		return err
	}
	if err := handleChannel(srv, demoRoomChannel, func() cable.Channel { return &channels.DemoRoom{} }); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := site.routes(mux); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if site.missing != nil {
		logger.Warn("demo: "+demoBuildHint, "missing", site.missing)
	}
	logger.Info("demo enabled", "room", "/room/lobby", "turbo", "/turbo-demo")
	return nil
}

// demoSite serves the demo's pages and files.
type demoSite struct {
	files     fs.FS
	cablePath string
	pages     *template.Template
	missing   []string // bundles absent from static/
	logger    *slog.Logger
}

func newDemoSite(files fs.FS, cablePath string, logger *slog.Logger) (*demoSite, error) {
	if files == nil {
		sub, err := fs.Sub(demoFiles, "demo")
		if err != nil {
			return nil, err
		}
		files = sub
	}
	if cablePath == "" {
		cablePath = "/cable"
	}
	pages, err := template.ParseFS(files, "*.html")
	if err != nil {
		return nil, fmt.Errorf("demo: templates: %w", err)
	}
	s := &demoSite{files: files, cablePath: cablePath, pages: pages, logger: logger}
	for _, b := range []string{actionCableBundle, turboBundle} {
		if _, err := fs.Stat(files, "static/"+b); err != nil {
			s.missing = append(s.missing, b)
		}
	}
	return s, nil
}

func (s *demoSite) routes(mux *http.ServeMux) error {
	lobby := http.RedirectHandler("/room/lobby", http.StatusFound)
	for pattern, h := range map[string]http.Handler{
		"GET /room/{name}":        http.HandlerFunc(s.room),
		"GET /room/{$}":           lobby,
		"GET /room":               lobby,
		"GET /turbo-demo":         http.HandlerFunc(s.turbo),
		"GET /demo/{file}":        http.HandlerFunc(s.asset),
		"GET /demo/static/{file}": http.HandlerFunc(s.bundle),
	} {
		if err := handleRoute(mux, pattern, h); err != nil {
			return err
		}
	}
	return nil
}

// pageData is what the templates get.
type pageData struct {
	Room       string
	Signed     string
	CablePath  string
	Missing    []string
	BuildHint  string
	BundleJS   string
	StreamHint string
}

func (s *demoSite) render(w http.ResponseWriter, name string, data pageData, needs string) {
	data.CablePath = s.cablePath
	for _, m := range s.missing {
		if m == needs {
			data.Missing = s.missing
			data.BuildHint = demoBuildHint
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	if err := s.pages.ExecuteTemplate(w, name, data); err != nil {
		s.logger.Warn("demo: rendering "+name, "err", err)
	}
}

// room serves the chat room page.
func (s *demoSite) room(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !channels.ValidDemoRoom(name) {
		http.Error(w, "room names are 1 to 64 letters, digits, -, _ or .", http.StatusBadRequest)
		return
	}
	s.render(w, "room.html", pageData{Room: name}, actionCableBundle)
}

// turbo serves a page with a <turbo-cable-stream-source> for the signed
// stream name in the query (?signed-stream-name=...).
func (s *demoSite) turbo(w http.ResponseWriter, r *http.Request) {
	s.render(w, "turbo.html", pageData{Signed: r.URL.Query().Get("signed-stream-name")}, turboBundle)
}

// asset serves the demo's own scripts and styles.
func (s *demoSite) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if !strings.HasSuffix(name, ".js") && !strings.HasSuffix(name, ".css") {
		http.NotFound(w, r)
		return
	}
	s.serveFile(w, r, name)
}

// bundle serves the npm bundles, or 503 with the build instructions.
func (s *demoSite) bundle(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name != actionCableBundle && name != turboBundle {
		http.NotFound(w, r)
		return
	}
	if _, err := fs.Stat(s.files, "static/"+name); err != nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, demoBuildHint, http.StatusServiceUnavailable)
		return
	}
	s.serveFile(w, r, "static/"+name)
}

func (s *demoSite) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	if _, err := fs.Stat(s.files, name); err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, s.files, name)
}

// demoRoomChannel is the Ruby-style class name channels.DemoRoom is
// registered under; the room page subscribes to it.
const demoRoomChannel = "DemoRoomChannel"
