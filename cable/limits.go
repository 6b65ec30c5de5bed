package cable

import (
	"context"
	"errors"
	"github.com/gorilla/websocket"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Per-connection limits (issue 11): what one client may cost the server.
// Rails has none of them; the defaults are far above what the official
// client or a real app does. Each hit is counted in Stats.LimitHits and
// logged at warn, at most once a second per limit (limitLog).

// Default limits, used when the Server field is zero.
const (
	defaultMaxSubscriptions   = 512
	defaultMaxIdentifierBytes = 4 << 10
	defaultSendQueueBytes     = 16 << 20
	defaultCommandRate        = 200 // per second
	defaultCommandBurst       = 500
	defaultMaxProtocolErrors  = 50 // per minute
	defaultClientPingRate     = 2  // per second
	defaultClientPingBurst    = 10
	defaultPeerPingInterval   = 10 * time.Second
	defaultPeerTimeout        = 30 * time.Second
	// errLogsPerSecond bounds the error lines one connection may cause.
	errLogsPerSecond = 10
)

// Names of the limits, as Prometheus labels and in log lines.
const (
	limitSubscriptions   = "subscriptions"
	limitIdentifierBytes = "identifier_bytes"
	limitCommands        = "commands"
	limitProtocolErrors  = "protocol_errors"
	limitClientPings     = "client_pings"
	limitPeerTimeout     = "peer_timeout"
	limitSendQueueBytes  = "send_queue_bytes"
	limitOrigins         = "origin_headers"
	limitMessageSize     = "message_size"
	limitPendingCommands = "pending_commands"
)

// reasonInvalidRequest is the disconnect reason sent to a client closed
// for abuse: one of Rails' own (INTERNAL[:disconnect_reasons] in
// actioncable/lib/action_cable.rb), which the official client logs and,
// with reconnect false, does not reconnect after
// (actioncable/app/javascript/action_cable/connection.js, disconnect).
const reasonInvalidRequest = "invalid_request"

// LimitHits counts, per limit, the times a client hit it since the Server
// started. The zero value is no hits.
type LimitHits struct {
	Subscriptions   uint64 // subscribes rejected: the connection had Server.MaxSubscriptions
	IdentifierBytes uint64 // subscribes rejected: identifier over Server.MaxIdentifierBytes
	Commands        uint64 // connections closed for sending commands faster than Server.CommandRate
	ProtocolErrors  uint64 // connections closed for more bad commands than Server.MaxProtocolErrors a minute
	ClientPings     uint64 // connections closed (1008) for sending WebSocket pings faster than Server.ClientPingRate
	PeerTimeout     uint64 // connections closed after Server.PeerTimeout without a frame or pong
	SendQueueBytes  uint64 // connections dropped as slow: queued frames over Server.SendQueueBytes
	OriginHeaders   uint64 // upgrade requests refused for carrying more than one Origin header
	MessageSize     uint64 // connections closed (1009) for a message over Server.MaxMessageSize
	PendingCommands uint64 // connections closed for too many commands (or their bytes) waiting to run
	MaxConnections  uint64 // upgrades refused by Server.MaxConnections (503)
	ConnectionRate  uint64 // upgrades refused by Server.ConnectionRate (429)

	// HTTPReadTimeout and HTTPWriteTimeout count HTTP requests cut short
	// because reading them, or writing their response, took longer than
	// allowed. The http.Server is the program's, so the program counts
	// them (package runner does); a Server's own Stats leaves them zero.
	HTTPReadTimeout  uint64
	HTTPWriteTimeout uint64
}

// Limit names of the HTTP timeouts, the label values a program that
// counts them (package runner) uses for LimitHits.HTTPReadTimeout and
// HTTPWriteTimeout.
const (
	LimitHTTPReadTimeout  = "http_read_timeout"
	LimitHTTPWriteTimeout = "http_write_timeout"
)

// Each calls fn with every limit's name (its Prometheus label) and count.
func (h LimitHits) Each(fn func(limit string, n uint64)) {
	fn(limitSubscriptions, h.Subscriptions)
	fn(limitIdentifierBytes, h.IdentifierBytes)
	fn(limitCommands, h.Commands)
	fn(limitProtocolErrors, h.ProtocolErrors)
	fn(limitClientPings, h.ClientPings)
	fn(limitPeerTimeout, h.PeerTimeout)
	fn(limitSendQueueBytes, h.SendQueueBytes)
	fn(limitOrigins, h.OriginHeaders)
	fn(limitMessageSize, h.MessageSize)
	fn(limitPendingCommands, h.PendingCommands)
	fn(LimitMaxConnections, h.MaxConnections)
	fn(LimitConnectionRate, h.ConnectionRate)
	fn(LimitHTTPReadTimeout, h.HTTPReadTimeout)
	fn(LimitHTTPWriteTimeout, h.HTTPWriteTimeout)
}

// limitHits is the Server's LimitHits: the per-connection limits' and
// admission's.
func (s *Server) limitHits() LimitHits {
	h := s.limits.snapshot()
	h.MaxConnections = s.adm.capHits.load()
	h.ConnectionRate = s.adm.rateHits.load()
	return h
}

// limitCounters are the Server's LimitHits.
type limitCounters struct {
	subscriptions, identifierBytes, commands, protocolErrors,
	clientPings, peerTimeout, sendQueueBytes, origins,
	messageSize, pendingCommands atomic.Uint64
}

func (l *limitCounters) snapshot() LimitHits {
	return LimitHits{
		Subscriptions:   l.subscriptions.Load(),
		IdentifierBytes: l.identifierBytes.Load(),
		Commands:        l.commands.Load(),
		ProtocolErrors:  l.protocolErrors.Load(),
		ClientPings:     l.clientPings.Load(),
		PeerTimeout:     l.peerTimeout.Load(),
		SendQueueBytes:  l.sendQueueBytes.Load(),
		OriginHeaders:   l.origins.Load(),
		MessageSize:     l.messageSize.Load(),
		PendingCommands: l.pendingCommands.Load(),
	}
}

func (l *limitCounters) counter(limit string) *atomic.Uint64 {
	switch limit {
	case limitSubscriptions:
		return &l.subscriptions
	case limitIdentifierBytes:
		return &l.identifierBytes
	case limitCommands:
		return &l.commands
	case limitProtocolErrors:
		return &l.protocolErrors
	case limitClientPings:
		return &l.clientPings
	case limitPeerTimeout:
		return &l.peerTimeout
	case limitSendQueueBytes:
		return &l.sendQueueBytes
	case limitOrigins:
		return &l.origins
	case limitMessageSize:
		return &l.messageSize
	case limitPendingCommands:
		return &l.pendingCommands
	}
	panic("cable: unknown limit " + limit)
}

// limitLog writes warn lines for limit hits, at most one a second per
// kind, so that an attacker who hits a limit in a loop cannot flood the
// log; a line says how many were left out before it. The zero value is
// ready to use.
type limitLog struct {
	mu   sync.Mutex
	last map[string]time.Time
	left map[string]int
}

// hit counts a hit of limit and logs msg with attrs unless a line for the
// same kind was written less than a second ago.
func (s *Server) limitHit(limit, msg string, attrs ...any) {
	s.limits.counter(limit).Add(1)
	s.warnLimited(limit, msg, attrs...)
}

// warnLimited logs msg at warn unless a line of the same kind was written
// less than a second ago.
func (s *Server) warnLimited(kind, msg string, attrs ...any) {
	l := &s.limitLogs
	now := time.Now()
	l.mu.Lock()
	if l.last == nil {
		l.last, l.left = make(map[string]time.Time), make(map[string]int)
	}
	if now.Sub(l.last[kind]) < time.Second {
		l.left[kind]++
		l.mu.Unlock()
		return
	}
	l.last[kind] = now
	left := l.left[kind]
	l.left[kind] = 0
	l.mu.Unlock()
	attrs = append(attrs, "limit", kind)
	if left > 0 {
		attrs = append(attrs, "suppressed", left)
	}
	s.logger.Warn(msg, attrs...)
}

// tokenBucket admits events at rate per second on average, burst at
// once. It is not safe for concurrent use; rate <= 0 admits everything.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// allow takes one token at now, and reports whether there was one.
func (b *tokenBucket) allow(now time.Time) bool {
	if b.rate <= 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// errLog rate-limits one connection's error lines: at most
// errLogsPerSecond a second; the number left out is logged with the next
// line written, or when the connection closes. The zero value is ready.
type errLog struct {
	mu      sync.Mutex
	window  time.Time
	n       int
	dropped int
}

// admit reports whether a line may be written now, and how many were
// left out before it.
func (e *errLog) admit(now time.Time) (ok bool, dropped int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Sub(e.window) >= time.Second {
		e.window, e.n = now, 0
	}
	if e.n >= errLogsPerSecond {
		e.dropped++
		return false, 0
	}
	e.n++
	dropped, e.dropped = e.dropped, 0
	return true, dropped
}

// logError logs msg at error with attrs for this connection, subject to
// its rate limit.
func (c *Conn) logError(msg string, attrs ...slog.Attr) {
	ok, dropped := c.errs.admit(time.Now())
	if !ok {
		return
	}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("suppressed", dropped))
	}
	c.logger.LogAttrs(context.Background(), slog.LevelError, msg, attrs...)
}

// flushErrLog logs how many error lines were left out, at close.
func (c *Conn) flushErrLog() {
	c.errs.mu.Lock()
	dropped := c.errs.dropped
	c.errs.dropped = 0
	c.errs.mu.Unlock()
	if dropped > 0 {
		c.logger.Warn("cable: error lines of a closed connection were left out", "conn", c.connID, "suppressed", dropped)
	}
}

// orDefault returns v, or def when v is zero; a negative v means no limit
// and is returned as it is.
func orDefault[T int | int64 | float64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// errPingFlood ends the read loop of a client that sent WebSocket pings
// past its budget.
var errPingFlood = errors.New("cable: too many WebSocket pings")

// clientPing is the reader's ping handler: gorilla's default (answer with
// a pong) behind the connection's ping budget. A WebSocket ping never
// passed command admission, so a flood of them cost the server core.
func (c *Conn) clientPing(ws *websocket.Conn, data string) error {
	if !c.pingBudget.allow(time.Now()) {
		return errPingFlood
	}
	c.extendDeadline(ws)
	err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	var ne net.Error
	if err == nil || errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// extendDeadline gives the peer PeerTimeout more to send something; it is
// called by the reader for every frame and pong. Once the server is
// closing the connection the writer owns the read deadline (closeGrace).
func (c *Conn) extendDeadline(ws *websocket.Conn) {
	if c.peerTimeout <= 0 || c.isClosed() {
		return
	}
	_ = ws.SetReadDeadline(time.Now().Add(c.peerTimeout))
}

// isClosed reports whether the connection accepts no more frames.
func (c *Conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// pingInterval is the heartbeat period.
func (s *Server) pingInterval() time.Duration {
	if s.PingInterval > 0 {
		return s.PingInterval
	}
	return 3 * time.Second
}

// peerPingBeats is every how many heartbeats a WebSocket ping goes out:
// PeerPingInterval rounded up to whole heartbeats; 0 means never.
func (s *Server) peerPingBeats() int {
	iv := orDefault(s.PeerPingInterval, defaultPeerPingInterval)
	if iv < 0 {
		return 0
	}
	every := s.pingInterval()
	return int((iv + every - 1) / every)
}

// peerTimeout is how long a connection may send nothing: PeerTimeout, but
// at least two WebSocket ping periods, so that a live client always has
// had a ping to answer; 0 means forever. With no WebSocket pings, only a
// PeerTimeout that is set applies.
func (s *Server) peerTimeout() time.Duration {
	t := s.PeerTimeout
	if t < 0 {
		return 0
	}
	n := s.peerPingBeats()
	if n == 0 {
		return t
	}
	return max(orDefault(t, defaultPeerTimeout), 2*time.Duration(n)*s.pingInterval())
}

// isTimeout reports whether err is a deadline passing. gorilla/websocket
// hides the error's chain (hideTempErr), so errors.Is(err,
// os.ErrDeadlineExceeded) does not see it; net.Error does.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
