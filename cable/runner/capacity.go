package runner

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/cablehttp"
)

// capacityConfig is the flags that protect a node's capacity: the
// connection cap and rate, the shutdown drain, and the HTTP timeouts.
type capacityConfig struct {
	maxConns     int
	connRate     float64
	drain        time.Duration
	readTimeout  time.Duration
	writeTimeout time.Duration
}

// Defaults. A node holds 100,000 idle connections in about 1.1 GiB
// (README, Performance), so the cap stops a flood before memory runs out
// and is above what one node serves in practice. 5,000 new connections a
// second is below what one core accepts (about 8,000/s), so a storm
// cannot starve the connections already open of CPU, and far above any
// steady state: the official client spreads its reconnects over 6 to 12
// seconds (connection_monitor.js), so 5,000/s is a storm of 30,000 or
// more clients. The drain is off, as in Rails: the official client
// spreads its reconnects by itself. The HTTP timeouts are Puma's
// first_data_timeout (30 s), which Rails apps run behind.
const (
	defaultMaxConnections   = 100_000
	defaultConnectionRate   = 5_000
	defaultHTTPReadTimeout  = 30 * time.Second
	defaultHTTPWriteTimeout = 30 * time.Second
)

func (c *capacityConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.maxConns, "max-connections", int(envInt("GOCABLE_MAX_CONNECTIONS", defaultMaxConnections)),
		"connections this node serves at once; one more is refused with 503 and Retry-After before the upgrade, 0 for no cap (env GOCABLE_MAX_CONNECTIONS)")
	fs.Float64Var(&c.connRate, "max-connection-rate", envFloat("GOCABLE_MAX_CONNECTION_RATE", defaultConnectionRate),
		"new connections per second, with a burst of one second's worth; more are refused with 429 and Retry-After, 0 for no cap (env GOCABLE_MAX_CONNECTION_RATE)")
	fs.DurationVar(&c.drain, "shutdown-drain", envDuration("GOCABLE_SHUTDOWN_DRAIN", 0),
		"on shutdown, spread the clients' server_restart over this window so they do not all reconnect at once; at most 3/4 of -shutdown-timeout, 0 for all at once as Rails does (env GOCABLE_SHUTDOWN_DRAIN)")
	fs.DurationVar(&c.readTimeout, "http-read-timeout", envDuration("GOCABLE_HTTP_READ_TIMEOUT", defaultHTTPReadTimeout),
		"time to read an HTTP request, headers and body, before the connection is closed; WebSockets are not affected once upgraded (env GOCABLE_HTTP_READ_TIMEOUT)")
	fs.DurationVar(&c.writeTimeout, "http-write-timeout", envDuration("GOCABLE_HTTP_WRITE_TIMEOUT", defaultHTTPWriteTimeout),
		"time from the end of an HTTP request's headers to the end of its response; WebSockets are not affected once upgraded (env GOCABLE_HTTP_WRITE_TIMEOUT)")
}

// check rejects values that make no sense; shutdownTimeout is
// --shutdown-timeout, which the drain must fit in.
func (c *capacityConfig) check(shutdownTimeout time.Duration) error {
	switch {
	case c.maxConns < 0:
		return fmt.Errorf("--max-connections %d: must not be negative (0 means no cap)", c.maxConns)
	case c.connRate < 0 || c.connRate != c.connRate:
		return fmt.Errorf("--max-connection-rate %v: must not be negative (0 means no cap)", c.connRate)
	case c.drain < 0:
		return fmt.Errorf("--shutdown-drain %v: must not be negative (0 means all at once)", c.drain)
	case c.drain > shutdownTimeout*3/4:
		return fmt.Errorf("--shutdown-drain %v: must leave a quarter of --shutdown-timeout (%v) for the last clients' hooks: at most %v",
			c.drain, shutdownTimeout, shutdownTimeout*3/4)
	case c.readTimeout <= 0:
		return fmt.Errorf("--http-read-timeout %v: must be positive", c.readTimeout)
	case c.writeTimeout <= 0:
		return fmt.Errorf("--http-write-timeout %v: must be positive", c.writeTimeout)
	}
	return nil
}

// apply sets the Server's capacity fields.
func (c *capacityConfig) apply(srv *cable.Server) {
	srv.MaxConnections = c.maxConns
	srv.ConnectionRate = c.connRate
	srv.ShutdownDrain = c.drain
}

// httpGuard counts and logs the HTTP requests that the http.Server's
// ReadTimeout, ReadHeaderTimeout (a connection's first request) or
// WriteTimeout cut short, and a /_broadcast body its handler stopped
// reading at its deadline. net/http closes such a connection without a
// word, so the guard watches the connections themselves: a read or
// write that fails on its deadline while a request is being read or
// served is a hit; an idle keep-alive connection timing out, a hijacked
// WebSocket and net/http's own cancellation of a read are not.
type httpGuard struct {
	logger                    *slog.Logger
	readHits, writeHits       atomic.Uint64
	readTimeout, writeTimeout time.Duration
	logMu                     sync.Mutex
	lastLog                   map[string]time.Time
	notLogged                 map[string]uint64
}

func newHTTPGuard(logger *slog.Logger, read, write time.Duration) *httpGuard {
	return &httpGuard{logger: logger, readTimeout: read, writeTimeout: write,
		lastLog: make(map[string]time.Time), notLogged: make(map[string]uint64)}
}

// limitLogEvery is how often each limit the runner counts may log.
const limitLogEvery = 10 * time.Second

// hit counts a hit of limit and logs it at warn, at most once per
// limitLogEvery, with the number of hits not logged since.
func (g *httpGuard) hit(limit string, remote net.Addr) {
	switch limit {
	case cable.LimitHTTPReadTimeout:
		g.readHits.Add(1)
	case cable.LimitHTTPWriteTimeout:
		g.writeHits.Add(1)
	}
	now := time.Now()
	g.logMu.Lock()
	if last, ok := g.lastLog[limit]; ok && now.Sub(last) < limitLogEvery {
		g.notLogged[limit]++
		g.logMu.Unlock()
		return
	}
	dropped := g.notLogged[limit]
	g.notLogged[limit] = 0
	g.lastLog[limit] = now
	g.logMu.Unlock()
	timeout := g.readTimeout
	if limit == cable.LimitHTTPWriteTimeout {
		timeout = g.writeTimeout
	}
	g.logger.Warn("http request cut short: too slow", "limit", limit, "timeout", timeout,
		"remote", remote.String(), "hits_not_logged", dropped)
}

// listener wraps ln so that the guard sees its connections.
func (g *httpGuard) listener(ln net.Listener) net.Listener { return guardListener{ln, g} }

// connState is the http.Server's ConnState hook: it tells each connection
// what it is doing.
func (g *httpGuard) connState(c net.Conn, st http.ConnState) {
	if gc, ok := c.(*guardConn); ok {
		gc.state.Store(int32(st))
	}
}

// Stats wraps a StatsSource, adding the guard's hits to its LimitHits.
func (g *httpGuard) stats(src cablehttp.StatsSource) cablehttp.StatsSource {
	return guardStats{src, g}
}

type guardStats struct {
	src cablehttp.StatsSource
	g   *httpGuard
}

func (s guardStats) Stats() cable.Stats {
	st := s.src.Stats()
	st.LimitHits.HTTPReadTimeout += s.g.readHits.Load()
	st.LimitHits.HTTPWriteTimeout += s.g.writeHits.Load()
	return st
}

type guardListener struct {
	net.Listener
	g *httpGuard
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c, g: l.g}, nil
}

// guardConn is a connection the guard watches. After a hijack it only
// passes calls through; code that needs the *net.TCPConn under a
// WebSocket (ws.NetConn()) gets it from NetConn.
type guardConn struct {
	net.Conn
	g       *httpGuard
	state   atomic.Int32 // http.ConnState
	readDL  atomic.Int64 // the read deadline, Unix nanoseconds; 0 for none
	counted atomic.Bool  // one hit per connection: net/http then closes it
}

// realDeadline is whether a deadline is a timeout's rather than net/http
// cancelling a read (it sets one in 1970, aLongTimeAgo).
func realDeadline(unixNano int64) bool {
	return unixNano > time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
}

// NetConn returns the connection the listener accepted, as
// tls.Conn.NetConn does.
func (c *guardConn) NetConn() net.Conn { return c.Conn }

func (c *guardConn) serving() bool {
	switch http.ConnState(c.state.Load()) {
	case http.StateNew, http.StateActive:
		return true
	}
	return false
}

func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.serving() && realDeadline(c.readDL.Load()) &&
		c.counted.CompareAndSwap(false, true) {
		c.g.hit(cable.LimitHTTPReadTimeout, c.RemoteAddr())
	}
	return n, err
}

func (c *guardConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.serving() && c.counted.CompareAndSwap(false, true) {
		c.g.hit(cable.LimitHTTPWriteTimeout, c.RemoteAddr())
	}
	return n, err
}

func (c *guardConn) SetDeadline(t time.Time) error {
	c.readDL.Store(unixNano(t))
	return c.Conn.SetDeadline(t)
}

func (c *guardConn) SetReadDeadline(t time.Time) error {
	c.readDL.Store(unixNano(t))
	return c.Conn.SetReadDeadline(t)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
