package runner

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/cablehttp"
)

// broadcastConfig holds the flags of the HTTP broadcast endpoint
// (cablehttp.Broadcast), which lets any program (a Rails app without a
// shared Redis, a job, curl) broadcast to streams: POST <path> with
// Authorization: Bearer <secret>. The endpoint exists only when a secret
// is set.
type broadcastConfig struct {
	path    string
	secret  string
	maxBody int64
	// readTimeout bounds reading a request's body: --http-read-timeout.
	readTimeout time.Duration
}

// defaultBroadcastPath is where the endpoint is served by default.
const defaultBroadcastPath = "/_broadcast"

// register registers -broadcast-path, -broadcast-secret and
// -broadcast-max-body on fs. The secret is read from the environment at
// install time, not as a flag default, so -h cannot print it.
func (c *broadcastConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "broadcast-path", envString("GOCABLE_BROADCAST_PATH", defaultBroadcastPath),
		"path of the HTTP broadcast endpoint (env GOCABLE_BROADCAST_PATH); it is served only when -broadcast-secret is set")
	fs.StringVar(&c.secret, "broadcast-secret", "",
		"bearer token the HTTP broadcast endpoint requires (env GOCABLE_BROADCAST_SECRET; prefer the environment, flags show in ps); unset: no endpoint")
	fs.Int64Var(&c.maxBody, "broadcast-max-body", envInt("GOCABLE_BROADCAST_MAX_BODY", cablehttp.DefaultMaxBody),
		"largest broadcast request body in bytes; larger gets 413 (env GOCABLE_BROADCAST_MAX_BODY)")
}

// install serves the endpoint on mux when a secret is set.
func (c *broadcastConfig) install(mux *http.ServeMux, srv *cable.Server, logger *slog.Logger) error {
	token := secret(c.secret, "GOCABLE_BROADCAST_SECRET")
	if token == "" {
		logger.Debug("http broadcast endpoint disabled: no -broadcast-secret")
		return nil
	}
	if c.path == "" {
		c.path = defaultBroadcastPath
	}
	if !strings.HasPrefix(c.path, "/") {
		return fmt.Errorf("broadcast path %q: must start with /", c.path)
	}
	if c.maxBody <= 0 {
		return fmt.Errorf("broadcast max body %d: must be positive", c.maxBody)
	}
	if len(token) < 16 {
		logger.Warn("the broadcast secret is short; use 32 random bytes or more", "length", len(token))
	}
	h := cablehttp.Broadcast{Server: srv, Token: token, MaxBody: c.maxBody, ReadTimeout: c.readTimeout, Logger: logger}
	if err := handleRoute(mux, c.path, h); err != nil {
		return fmt.Errorf("broadcast path: %w", err)
	}
	logger.Info("http broadcast endpoint enabled", "path", c.path)
	return nil
}

// handleRoute is mux.Handle returning an error instead of panicking on a
// pattern that is invalid or conflicts with one already registered.
func handleRoute(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}
