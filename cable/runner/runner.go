package runner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/cablehttp"
)

// Options is what a program adds to the runner. The zero value runs
// gocable exactly as the gocable command does.
type Options struct {
	// Channels are the program's own channels, by the Ruby class name
	// a client's identifier names in its "channel" key. When a program
	// has channels of its own, the built-in ones (ChatChannel,
	// BenchmarkChannel: they authorize nothing) are served only if
	// --channels names them, and one of the same name is never served:
	// a port of the app's ChatChannel replaces ours.
	Channels map[string]func() cable.Channel

	// Authenticator, if not nil, identifies connections instead of the
	// --identify flags (which are then refused). To check what the
	// cookies say against the app's database instead, keep --identify and
	// wrap App.Identified in Setup.
	Authenticator cable.Authenticator

	// Flags, if not nil, adds the program's own flags to gocable's
	// before the command line is parsed (a database URL, say); their
	// values are set when Setup runs.
	Flags func(fs *flag.FlagSet)

	// Setup, if not nil, runs once the server and its routes are built
	// and before it listens: it may add routes to app.Mux, keep
	// app.Logger, open what the channels need, and replace
	// app.Server.Authenticator (for example with one that wraps
	// app.Identified). Channels belong in Channels: Server.Handle panics
	// on a name that is already registered, and the built-in and Turbo
	// channels are registered before Setup. An error stops the program
	// before it listens.
	Setup func(ctx context.Context, app *App) error

	// Stop, if not nil, runs during the graceful shutdown, after every
	// connection has ended (so no channel uses what it closes), with the
	// rest of --shutdown-timeout as its deadline. It runs whenever Setup
	// returned nil.
	Stop func(ctx context.Context) error
}

// App is the server the runner built, as Options.Setup sees it.
type App struct {
	// Server is the cable server, with the channels registered.
	Server *cable.Server
	// Mux routes every HTTP request, the cable endpoint included.
	Mux *http.ServeMux
	// Logger is the logger --log-level and --log-format describe.
	Logger *slog.Logger
	// Identified is the Authenticator the --identify flags built, nil
	// when none is given: what the cookies say, before the app's own
	// checks (Rails' User.find_by(id: cookies.encrypted[:user_id]) ||
	// reject_unauthorized_connection is Identified, then a lookup).
	Identified cable.Authenticator
}

// Main runs the program as gocable does and never returns: it reads
// os.Args ("cookie" as the first argument runs the cookie decoder),
// serves until SIGINT or SIGTERM, shuts down gracefully and exits with
// status 0, or 1 after printing the error. A second signal ends the
// process at once.
func Main(opts Options) {
	name := filepath.Base(os.Args[0])
	if len(os.Args) > 1 && os.Args[1] == "cookie" {
		os.Exit(runCookie(os.Args[2:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful shutdown; once it has, signals
	// get their default action again, so a second one ends the process at
	// once instead of waiting out --shutdown-timeout.
	go func() { <-ctx.Done(); stop() }() // owner: Main; ends with the first signal or with the process
	if err := Run(ctx, os.Args[1:], os.Stderr, opts); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Run parses args (the flags of gocable, without the program name),
// serves until ctx ends and then shuts down gracefully, within
// --shutdown-timeout. Logs go to logOut. It returns flag.ErrHelp after
// printing the usage for -h.
func Run(ctx context.Context, args []string, logOut io.Writer, opts Options) error {
	return serve(ctx, args, logOut, nil, opts)
}

// config is the server's own flags; auth and pub/sub have theirs.
type config struct {
	addr            string
	path            string
	origins         string
	disableForgery  bool
	disableSameHost bool
	logLevel        string
	logFormat       string
	maxMessage      int64
	sendQueue       int
	shutdownTimeout time.Duration
	healthPath      string
	healthInterval  time.Duration
	healthTimeout   time.Duration
	metricsPath     string
}

// envString is the value of the environment variable name, or def when it
// is unset or empty (GOCABLE_ADDR= in a compose file means the default, as
// checkEnv reads it).
func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, ok := os.LookupEnv(name); ok {
		b, err := strconv.ParseBool(v)
		if err == nil {
			return b
		}
	}
	return def
}

func envInt(name string, def int64) int64 {
	if v, ok := os.LookupEnv(name); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			return n
		}
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		d, err := time.ParseDuration(v)
		if err == nil {
			return d
		}
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, ok := os.LookupEnv(name); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err == nil {
			return f
		}
	}
	return def
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", envString("GOCABLE_ADDR", ":8080"), "listen address (env GOCABLE_ADDR)")
	fs.StringVar(&c.path, "path", envString("GOCABLE_PATH", "/cable"), "mount path of the cable endpoint (env GOCABLE_PATH)")
	fs.StringVar(&c.origins, "allowed-origins", envString("GOCABLE_ALLOWED_ORIGINS", ""),
		"comma-separated allowed request origins: exact strings, or /regexp/ (env GOCABLE_ALLOWED_ORIGINS); the same origin as the Host header is always allowed unless -disable-same-origin")
	fs.BoolVar(&c.disableForgery, "disable-forgery-protection", envBool("GOCABLE_DISABLE_FORGERY_PROTECTION", false),
		"accept every Origin, like config.action_cable.disable_request_forgery_protection (env GOCABLE_DISABLE_FORGERY_PROTECTION)")
	fs.BoolVar(&c.disableSameHost, "disable-same-origin", envBool("GOCABLE_DISABLE_SAME_ORIGIN", false),
		"do not accept an Origin equal to the request's own host, like allow_same_origin_as_host = false (env GOCABLE_DISABLE_SAME_ORIGIN)")
	fs.StringVar(&c.logLevel, "log-level", envString("GOCABLE_LOG_LEVEL", "info"), "debug, info, warn or error (env GOCABLE_LOG_LEVEL)")
	fs.StringVar(&c.logFormat, "log-format", envString("GOCABLE_LOG_FORMAT", "text"), "text or json (env GOCABLE_LOG_FORMAT)")
	fs.Int64Var(&c.maxMessage, "max-message-size", envInt("GOCABLE_MAX_MESSAGE_SIZE", 1<<20), "largest client message in bytes; larger closes with 1009 (env GOCABLE_MAX_MESSAGE_SIZE)")
	fs.IntVar(&c.sendQueue, "send-queue", int(envInt("GOCABLE_SEND_QUEUE", 1024)), "frames queued for one client before it is disconnected as too slow (env GOCABLE_SEND_QUEUE)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", envDuration("GOCABLE_SHUTDOWN_TIMEOUT", 10*time.Second), "how long a graceful shutdown may take (env GOCABLE_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.healthPath, "health-path", envString("GOCABLE_HEALTH_PATH", "/health"), "health check path, empty to disable (env GOCABLE_HEALTH_PATH)")
	fs.DurationVar(&c.healthInterval, "health-interval", envDuration("GOCABLE_HEALTH_INTERVAL", 500*time.Millisecond),
		"how often a canary message is published through the pub/sub to this node itself (env GOCABLE_HEALTH_INTERVAL)")
	fs.DurationVar(&c.healthTimeout, "health-timeout", envDuration("GOCABLE_HEALTH_TIMEOUT", 2*time.Second),
		"how late the canary may come back before readiness fails; a hung pub/sub is caught within interval + timeout (env GOCABLE_HEALTH_TIMEOUT)")
	fs.StringVar(&c.metricsPath, "metrics-path", envString("GOCABLE_METRICS_PATH", "/metrics"), "Prometheus metrics path, empty to disable (env GOCABLE_METRICS_PATH)")
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// configs is every part of the binary's configuration.
type configs struct {
	cfg config
	ac  authConfig
	pc  pubsubConfig
	tc  turboConfig
	bc  broadcastConfig
	dc  demoConfig
	chc builtinConfig
	lc  limitsConfig
	mc  memoryConfig
	cc  capacityConfig
}

func (c *configs) register(fs *flag.FlagSet) {
	c.cfg.register(fs)
	c.ac.register(fs)
	c.pc.register(fs)
	c.tc.register(fs)
	c.bc.register(fs)
	c.dc.register(fs)
	c.chc.register(fs)
	c.lc.register(fs)
	c.mc.register(fs)
	c.cc.register(fs)
}

// envName finds the variable a flag's usage names: "(env NAME ...".
var envName = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)`)

// checkEnv parses every environment variable that stands for a flag with
// that flag's own parser, on a scratch copy of the configuration, so that
// GOCABLE_SHUTDOWN_TIMEOUT=10 (no unit) is an error as --shutdown-timeout
// 10 is, not a silent fallback to the default. The value is not repeated:
// some variables hold secrets.
func checkEnv() error {
	var scratch configs
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scratch.register(fs)
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		m := envName.FindStringSubmatch(f.Usage)
		if m == nil {
			return
		}
		// Empty counts as unset, as the defaults read it (FOO= in a
		// compose file).
		if v := os.Getenv(m[1]); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s (for --%s): invalid value: want %s", m[1], f.Name, valueKind(f.Value)))
			}
		}
	})
	return errors.Join(errs...)
}

// valueKind says what a flag's parser takes, for an error message.
func valueKind(v flag.Value) string {
	g, _ := v.(flag.Getter)
	if g == nil {
		return "a valid value"
	}
	switch g.Get().(type) {
	case bool:
		return "true or false"
	case time.Duration:
		return "a duration such as 30s or 5m"
	case int, int64, uint, uint64:
		return "a whole number"
	case float64:
		return "a number"
	}
	return "a valid value"
}

// check rejects values no flag parser refuses but that make no sense.
func (c *config) check() error {
	switch {
	case c.maxMessage < 0:
		return fmt.Errorf("--max-message-size %d: must not be negative (0 means 1 MiB)", c.maxMessage)
	case c.sendQueue < 0:
		return fmt.Errorf("--send-queue %d: must not be negative (0 means 1024)", c.sendQueue)
	case c.shutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout %v: must be positive", c.shutdownTimeout)
	case c.path == "" || !strings.HasPrefix(c.path, "/"):
		return fmt.Errorf("--path %q: must start with /", c.path)
	case c.healthPath != "" && !strings.HasPrefix(c.healthPath, "/"):
		return fmt.Errorf("--health-path %q: must start with / (or be empty to disable it)", c.healthPath)
	case c.healthInterval <= 0:
		return fmt.Errorf("--health-interval %v: must be positive", c.healthInterval)
	case c.healthTimeout <= 0:
		return fmt.Errorf("--health-timeout %v: must be positive", c.healthTimeout)
	case c.metricsPath != "" && !strings.HasPrefix(c.metricsPath, "/"):
		return fmt.Errorf("--metrics-path %q: must start with / (or be empty to disable it)", c.metricsPath)
	}
	return nil
}

// run is Run with no Options; if ready is not nil, the listening address
// is sent on it once the server accepts.
func run(ctx context.Context, args []string, logOut io.Writer, ready chan<- string) error {
	return serve(ctx, args, logOut, ready, Options{})
}

// serve is Run; if ready is not nil, the listening address is sent on it
// once the server accepts.
func serve(ctx context.Context, args []string, logOut io.Writer, ready chan<- string, opts Options) error {
	fs := flag.NewFlagSet(filepath.Base(os.Args[0]), flag.ContinueOnError)
	fs.SetOutput(logOut)
	var all configs
	all.register(fs)
	if opts.Flags != nil {
		opts.Flags(fs)
	}
	cfg, ac, pc, tc, bc, dc, chc, cc := &all.cfg, &all.ac, &all.pc, &all.tc, &all.bc, &all.dc, &all.chc, &all.cc
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := checkEnv(); err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	if err := cc.check(cfg.shutdownTimeout); err != nil {
		return err
	}
	if err := all.mc.check(); err != nil {
		return err
	}
	logger, err := newLogger(logOut, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	checkOrigin, err := cfg.checkOrigin(logger)
	if err != nil {
		return err
	}
	var identified cable.Authenticator
	if opts.Authenticator != nil && ac.configured() {
		return errors.New("--identify: this program identifies connections itself")
	}
	if opts.Authenticator == nil {
		if identified, err = ac.authenticator(logger); err != nil {
			return err
		}
	}
	authn := opts.Authenticator
	if authn == nil {
		authn = identified
	}
	ps, psState, closePS, err := pc.pubsub(logger)
	if err != nil {
		return err
	}
	if closePS != nil {
		defer closePS()
	}

	// The canary needs the pub/sub the server uses; without Redis that is
	// an in-process one, made here rather than by the Server. ps stays
	// nil then, for chc.install.
	serverPS := ps
	if serverPS == nil {
		serverPS = &cable.MemoryPubSub{}
	}
	srv := &cable.Server{
		PubSub:         serverPS,
		Authenticator:  authn,
		CheckOrigin:    checkOrigin,
		MaxMessageSize: cfg.maxMessage,
		SendQueueLen:   cfg.sendQueue,
		Logger:         logger,
	}
	all.lc.apply(srv)
	cc.apply(srv)
	guard := newHTTPGuard(logger, cc.readTimeout, cc.writeTimeout)
	for name, newChannel := range opts.Channels {
		if err := handleChannel(srv, name, newChannel); err != nil {
			return fmt.Errorf("channel %s: %w", name, err)
		}
	}
	if err := chc.install(srv, ps != nil, opts.Channels, logger); err != nil {
		return err
	}
	if err := tc.install(srv, logger); err != nil {
		return err
	}

	mux := http.NewServeMux()
	if err := handleRoute(mux, cfg.path, srv); err != nil {
		return fmt.Errorf("--path: %w", err)
	}
	bc.readTimeout = cc.readTimeout
	if err := bc.install(mux, srv, logger); err != nil {
		return err
	}
	if err := dc.install(mux, srv, cfg.path, logger); err != nil {
		return err
	}
	// The canary runs from here until serve returns, after the cable
	// server has shut down, so that /health keeps its meaning while
	// clients are drained; the deferred stop runs before closePS.
	canary := &cablehttp.Canary{PubSub: serverPS, Interval: cfg.healthInterval, Timeout: cfg.healthTimeout, Logger: logger}
	canaryCtx, stopCanary := context.WithCancel(context.WithoutCancel(ctx))
	canaryDone := make(chan struct{})
	go func() { // owner: serve, whose deferred stop cancels it and waits for it
		defer close(canaryDone)
		if err := canary.Run(canaryCtx); err != nil {
			logger.Error("gocable: canary", "err", err)
		}
	}()
	defer func() { stopCanary(); <-canaryDone }()
	if cfg.healthPath != "" {
		// Readiness fails as soon as shutdown starts (ctx is done).
		health := cablehttp.Health{Server: srv, PubSubState: psState, Canary: canary, Draining: func() bool { return ctx.Err() != nil }}
		routes := []struct {
			path string
			h    http.Handler
		}{{cfg.healthPath, health}, {strings.TrimSuffix(cfg.healthPath, "/") + "/live", health.Live()}, {strings.TrimSuffix(cfg.healthPath, "/") + "/ready", health.Ready()}}
		for _, r := range routes {
			if err := handleRoute(mux, r.path, r.h); err != nil {
				return fmt.Errorf("--health-path: %w", err)
			}
		}
	}
	if cfg.metricsPath != "" {
		metrics := cablehttp.Metrics{Server: guard.stats(srv), PubSubState: psState, Canary: canary}
		if err := handleRoute(mux, cfg.metricsPath, metrics); err != nil {
			return fmt.Errorf("--metrics-path: %w", err)
		}
	}

	if opts.Setup != nil {
		if err := opts.Setup(ctx, &App{Server: srv, Mux: mux, Logger: logger, Identified: identified}); err != nil {
			return err
		}
	}
	stop := func(ctx context.Context) error {
		if opts.Stop == nil {
			return nil
		}
		return opts.Stop(ctx)
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return errors.Join(err, stop(ctx))
	}
	// IdleTimeout closes kept-alive HTTP connections that send nothing
	// (ReadHeaderTimeout only covers a connection's first request);
	// ReadTimeout and WriteTimeout bound every request, body included
	// (--http-read-timeout, --http-write-timeout). WebSockets are not
	// subject to them: net/http clears the deadlines when it hands the
	// connection over (hijackLocked), and gorilla/websocket's Upgrade
	// clears them again. The guard counts and logs what they cut short.
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: min(10*time.Second, cc.readTimeout), IdleTimeout: 2 * time.Minute,
		ReadTimeout: cc.readTimeout, WriteTimeout: cc.writeTimeout, ConnState: guard.connState,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	logger.Info("gocable listening", "addr", ln.Addr().String(), "path", cfg.path)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	// The memory returner runs while the server serves; it is stopped,
	// and waited for, when serve returns.
	mctx, stopMemory := context.WithCancel(ctx)
	conns := func() (int, uint64) { st := srv.Stats(); return st.Connections, st.ConnectionsTotal }
	waitMemory := newMemoryReturner(all.mc, conns, logger).start(mctx)
	defer func() { stopMemory(); waitMemory() }()
	served := make(chan error, 1)
	go func() { served <- hs.Serve(guard.listener(ln)) }() // owner: run, which waits on served

	var serveErr error
	select {
	case serveErr = <-served:
		// The listener failed: connections already upgraded are still
		// served, and are shut down as on a signal.
		logger.Error("gocable: serving failed; shutting down", "err", serveErr)
		served <- serveErr
	case <-ctx.Done():
	}
	logger.Info("gocable shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	// Both at once: hs.Shutdown closes the listener and waits for HTTP
	// requests in flight (not for WebSockets, which are hijacked), and a
	// slow one must not use up the time in which every WebSocket client
	// is sent server_restart. An upgrade that completes meanwhile is
	// refused by srv.Shutdown with the same frame.
	herrc := make(chan error, 1)
	go func() { herrc <- hs.Shutdown(sctx) }() // owner: run, which waits on herrc
	cerr := srv.Shutdown(sctx)
	herr := <-herrc
	<-served
	serr := stop(sctx)
	logger.Info("gocable stopped")
	return errors.Join(serveErr, herr, cerr, serr)
}
