package cable

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limit names, the keys of LimitHits.ByName and the values of the limit
// label of gocable_limit_hits_total.
const (
	// LimitMaxConnections is Server.MaxConnections: an upgrade refused
	// with 503 because the node serves as many connections as it may.
	LimitMaxConnections = "max_connections"
	// LimitConnectionRate is Server.ConnectionRate: an upgrade refused
	// with 429 because new connections arrive faster than allowed.
	LimitConnectionRate = "connection_rate"
)

// connCapRetryAfter is the Retry-After of a refusal by MaxConnections:
// about how long a reconnecting official client waits anyway (its
// ConnectionMonitor polls every 6 s or more, connection_monitor.js).
const connCapRetryAfter = 5 * time.Second

// limitLogEvery is how often each limit may log its warning: an attacker
// who hits a limit in a loop must not flood the log.
const limitLogEvery = 10 * time.Second

// admission holds what ServeHTTP needs to admit a connection: the number
// of connections admitted and not yet ended (upgrades in progress
// included), the connection rate's token bucket, and the hit counters.
type admission struct {
	mu     sync.Mutex
	active int       // admitted connections not yet ended
	tokens float64   // ConnectionRate's bucket
	filled time.Time // when tokens was last refilled

	capHits, rateHits limitHits // MaxConnections, ConnectionRate
}

// limitHits counts one limit's hits and rate-limits its log line.
type limitHits struct {
	mu         sync.Mutex
	total      uint64
	lastLog    time.Time
	suppressed uint64 // hits since the last log line
}

// hit counts one hit and logs msg at warn unless the limit logged within
// limitLogEvery; the line then says how many hits were not logged.
func (h *limitHits) hit(logger *slog.Logger, limit, msg string, args ...any) {
	now := time.Now()
	h.mu.Lock()
	h.total++
	if !h.lastLog.IsZero() && now.Sub(h.lastLog) < limitLogEvery {
		h.suppressed++
		h.mu.Unlock()
		return
	}
	dropped := h.suppressed
	h.suppressed = 0
	h.lastLog = now
	h.mu.Unlock()
	args = append(args, "limit", limit, "hits_not_logged", dropped)
	logger.Warn(msg, args...)
}

func (h *limitHits) load() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// admit decides whether a WebSocket upgrade may proceed, before the
// Authenticator and the upgrade: MaxConnections first (a refusal then
// spends no rate token), then ConnectionRate. A refused request is
// answered here, with 503 or 429 and Retry-After, and admit returns
// false. An admitted connection must be given back with release when it
// ends.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	a := &s.adm
	now := time.Now()
	a.mu.Lock()
	if s.MaxConnections > 0 && a.active >= s.MaxConnections {
		n := a.active
		a.mu.Unlock()
		a.capHits.hit(s.logger, LimitMaxConnections,
			"cable: connection refused: this node serves as many connections as it may",
			"connections", n, "max", s.MaxConnections, "remote", r.RemoteAddr)
		refuse(w, http.StatusServiceUnavailable, connCapRetryAfter, "cable: too many connections on this node")
		return false
	}
	if rate := s.ConnectionRate; rate > 0 {
		burst := math.Max(rate, 1)
		if a.filled.IsZero() {
			a.tokens = burst
		} else {
			a.tokens = math.Min(burst, a.tokens+now.Sub(a.filled).Seconds()*rate)
		}
		a.filled = now
		if a.tokens < 1 {
			wait := time.Duration((1 - a.tokens) / rate * float64(time.Second))
			a.mu.Unlock()
			a.rateHits.hit(s.logger, LimitConnectionRate,
				"cable: connection refused: new connections arrive faster than allowed",
				"per_second", rate, "remote", r.RemoteAddr)
			refuse(w, http.StatusTooManyRequests, wait, "cable: too many new connections, retry later")
			return false
		}
		a.tokens--
	}
	a.active++
	a.mu.Unlock()
	return true
}

// release gives back a connection that admit let in, when it has ended.
func (s *Server) release() {
	s.adm.mu.Lock()
	s.adm.active--
	s.adm.mu.Unlock()
}

// refuse answers a refused upgrade with status, Retry-After in whole
// seconds (at least 1, as RFC 9110 §10.2.3 counts) and a short text. The
// official client cannot see either: a browser's WebSocket reports a
// failed handshake only as a close (code 1006), and the client's
// ConnectionMonitor retries with its own backoff (connection_monitor.js).
func refuse(w http.ResponseWriter, status int, retryAfter time.Duration, msg string) {
	secs := int(math.Ceil(retryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Connection", "close")
	http.Error(w, msg, status)
}

// closeDraining sends server_restart to conns, spread evenly over the
// drain window (ShutdownDrain, shortened to fit in three quarters of the
// time ctx leaves, so that the last clients' hooks still run), or all at
// once for a zero window. It paces by ticks: each tick closes its share of
// the connections left over the time left, so a stall (a GC pause, a busy
// CPU) spreads the backlog over the rest of the window rather than sending
// it in one burst. If ctx ends first, the rest are sent it at once.
func (s *Server) closeDraining(ctx context.Context, conns []*Conn) {
	window := s.ShutdownDrain
	if deadline, ok := ctx.Deadline(); ok && window > 0 {
		if left := time.Until(deadline) * 3 / 4; left < window {
			s.logger.Warn("cable: shutdown drain shortened to fit the shutdown timeout", "drain", window, "shortened_to", max(left, 0))
			window = left
		}
	}
	n := len(conns)
	if window <= 0 || n < 2 {
		closeAll(conns)
		return
	}
	s.logger.Info("cable: draining connections", "connections", n, "window", window)
	tick := max(window/200, time.Millisecond)
	end := time.Now().Add(window)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	due := 1.0 // the first connection goes at once
	for len(conns) > 0 {
		k := len(conns)
		if left := time.Until(end); left > tick {
			due += float64(len(conns)) * float64(tick) / float64(left)
			k = min(int(due), len(conns))
			due -= float64(k)
		}
		closeAll(conns[:k])
		conns = conns[k:]
		if len(conns) == 0 {
			return
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			closeAll(conns)
			return
		}
	}
}

func closeAll(conns []*Conn) {
	for _, c := range conns {
		c.Close(ReasonServerRestart, true)
	}
}
