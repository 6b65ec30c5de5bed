package cable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Server is an ActionCable server: an http.Handler that speaks
// actioncable-v1-json to the official @rails/actioncable client and runs
// channels written in Go.
//
// The zero value is ready to use: in-memory pub/sub, every connection
// accepted with an empty Identity, same-origin requests only. Fields must
// not change after the first call to ServeHTTP, Handle excepted.
type Server struct {
	// PubSub carries broadcasts between nodes. Nil means an in-process
	// MemoryPubSub.
	PubSub PubSub

	// Authenticator identifies connections, like a Rails connection's
	// connect. Nil accepts every connection with an empty Identity.
	Authenticator Authenticator

	// Disconnected, if set, runs when an accepted connection has closed,
	// after every subscription's Unsubscribed, like a Rails connection's
	// disconnect.
	Disconnected func(ctx context.Context, c *Conn)

	// CheckOrigin reports whether a WebSocket upgrade may proceed given
	// its Origin header, like Rails' allow_request_origin?
	// (actioncable/lib/action_cable/connection/base.rb). A refused request
	// gets Rails' 404 "Page not found". Nil means RailsOrigins{}.Check:
	// the request's own scheme://host only, Rails' default, and a refusal
	// is logged at info as Rails logs "Request origin not allowed". A
	// CheckOrigin that is set logs its own refusals; the Server does not.
	// RailsOrigins implements Rails' other settings; a function that
	// returns true is disable_request_forgery_protection.
	// A request with more than one Origin header is refused (404) before
	// CheckOrigin runs, as Rails refuses the joined value.
	CheckOrigin func(r *http.Request) bool

	// PingInterval is the heartbeat period. Zero means 3s, Rails'
	// BEAT_INTERVAL; the official client reconnects after 6s without one.
	PingInterval time.Duration
	// WriteTimeout bounds each write to a client. Zero means 10s.
	WriteTimeout time.Duration
	// SendQueueLen bounds the frames waiting to be written to one client;
	// a client whose queue is full is too slow and is disconnected.
	// Zero means 1024.
	SendQueueLen int
	// MaxMessageSize bounds an incoming message in bytes; a larger one
	// closes the connection with code 1009. Zero means 1 MiB; Rails
	// allows 64 MiB.
	MaxMessageSize int64

	// MaxSubscriptions bounds one connection's subscriptions; a subscribe
	// past it is rejected (reject_subscription) and logged. Zero means
	// 512; negative means no bound, as in Rails.
	MaxSubscriptions int
	// MaxIdentifierBytes bounds a subscription identifier's length in
	// bytes; a subscribe with a longer one is rejected and logged. Zero
	// means 4 KiB; negative means no bound, as in Rails.
	MaxIdentifierBytes int
	// SendQueueBytes bounds the bytes of frames waiting to be written to
	// one client, as SendQueueLen bounds their number; past it the client
	// is too slow and is disconnected. Zero means 16 MiB; negative means
	// no bound.
	SendQueueBytes int64
	// CommandRate is how many commands a second one connection may send on
	// average, CommandBurst how many at once; past them the connection
	// gets {"type":"disconnect","reason":"invalid_request","reconnect":false}
	// and is closed. Zero means 200 a second with a burst of 500; a
	// negative CommandRate means no limit, as in Rails.
	CommandRate  float64
	CommandBurst int
	// MaxProtocolErrors is how many commands that cannot be carried out
	// one connection may send a minute (all at once or spread); past it the
	// connection gets the invalid_request disconnect and is closed. Zero
	// means 50; negative means no limit, as in Rails.
	MaxProtocolErrors int
	// ClientPingRate is how many WebSocket ping control frames a second a
	// client may send on average, with a burst of five times as many (at
	// least 10); past it the connection is closed with code 1008 (policy
	// violation). The official client never sends them. Zero means 2 a
	// second; negative means no limit.
	ClientPingRate float64
	// PeerPingInterval is how often the server sends a WebSocket ping
	// control frame, which browsers answer with a pong by themselves, so
	// that a live client that has nothing to say still sends something.
	// It is sent along with the heartbeat, so it is rounded up to a whole
	// number of PingIntervals. Zero means 10s; negative sends none.
	PeerPingInterval time.Duration
	// PeerTimeout closes a connection that sent nothing at all (no frame,
	// no pong) for that long: a vanished peer (power loss, NAT timeout)
	// is closed, and its Unsubscribed and Disconnected hooks run, instead
	// of lingering until TCP gives up. Zero means 30s; negative means
	// never.
	PeerTimeout time.Duration
	// MaxConnections caps the connections this node serves at once,
	// upgrades in progress included. One more is refused before the
	// upgrade with 503 Service Unavailable and Retry-After, counted in
	// Stats.LimitHits.MaxConnections and logged at warn (at most once
	// per 10s). Zero means no cap, as in Rails.
	MaxConnections int
	// ConnectionRate caps new connections per second, for the reconnect
	// storm after a deploy: a token bucket holding one second's worth
	// (at least one). An upgrade beyond it is refused before the
	// Authenticator runs with 429 Too Many Requests and Retry-After,
	// counted in Stats.LimitHits.ConnectionRate and logged at warn (at
	// most once per 10s). Zero means no cap, as in Rails.
	ConnectionRate float64
	// ShutdownDrain spreads Shutdown's server_restart frames evenly over
	// this window, so that clients do not all reconnect to the other
	// nodes in the same second; heartbeats go on meanwhile. The window is
	// shortened to three quarters of the time Shutdown's context leaves.
	// Zero means all at once, as Rails' restart does.
	ShutdownDrain time.Duration

	// Logger receives the server's logs. Nil means slog.Default().
	Logger *slog.Logger

	initOnce sync.Once
	upgrader websocket.Upgrader
	ps       PubSub
	hub      *hub
	logger   *slog.Logger

	regMu    sync.RWMutex
	registry map[string]func() Channel

	mu        sync.Mutex // guards conns, closing, pinger
	conns     map[*Conn]struct{}
	closing   bool
	pingStop  chan struct{}
	pingDone  chan struct{}
	wg        sync.WaitGroup // every connection's reader
	pingSlice []*Conn

	stats     counters
	limits    limitCounters
	limitLogs limitLog
	adm       admission // MaxConnections, ConnectionRate; admission.go

	// abort is cancelled when Shutdown runs out of time: it ends
	// authentications still in progress.
	abort       context.Context
	abortCancel context.CancelFunc
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.logger = s.Logger
		if s.logger == nil {
			s.logger = slog.Default()
		}
		s.ps = s.PubSub
		if s.ps == nil {
			s.ps = &MemoryPubSub{}
		}
		s.hub = newHub(s.ps, s.logger, &s.stats)
		s.abort, s.abortCancel = context.WithCancel(context.Background())
		s.conns = make(map[*Conn]struct{})
		s.upgrader = websocket.Upgrader{
			// A small read buffer of our own lets net/http's 4 KiB one go
			// (client frames are small; a larger one is read in pieces);
			// write buffers come from a pool and are held only while
			// writing.
			ReadBufferSize:  1024,
			WriteBufferPool: &sync.Pool{},
			// Origins were checked before; Rails answers 404, not 403.
			CheckOrigin: func(*http.Request) bool { return true },
			Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
				s.logger.Info("cable: upgrade failed", "status", status, "err", reason)
				notFound(w)
			},
		}
	})
}

// allowOrigin runs CheckOrigin, or Rails' default rule when it is nil,
// and logs a refusal by the default rule, as Rails logs
// "Request origin not allowed: <origin>" (connection/base.rb,
// allow_request_origin?).
func (s *Server) allowOrigin(r *http.Request) bool {
	if len(r.Header.Values("Origin")) > 1 {
		// Rack joins repeated headers into one value ("a, b"), which
		// Rails' allow_request_origin? (connection/base.rb) then finds
		// equal to neither the host nor an allowed origin and refuses.
		s.limitHit(limitOrigins, "cable: request refused: more than one Origin header", "remote", r.RemoteAddr)
		return false
	}
	if s.CheckOrigin != nil {
		return s.CheckOrigin(r)
	}
	if (RailsOrigins{}).Check(r) {
		return true
	}
	s.logger.Info("cable: request origin not allowed", "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
	return false
}

// Handle registers the channel type named channel, the Ruby class name a
// client puts in its identifier ("ChatChannel", "Admin::ChatChannel").
// newChannel makes a new value for every subscription. Like
// http.ServeMux, Handle panics if the name is already registered.
func (s *Server) Handle(channel string, newChannel func() Channel) {
	if channel == "" || newChannel == nil {
		panic("cable: Handle needs a channel name and a constructor")
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if s.registry == nil {
		s.registry = make(map[string]func() Channel)
	}
	if _, dup := s.registry[channel]; dup {
		panic("cable: channel " + channel + " is already registered")
	}
	s.registry[channel] = newChannel
}

func (s *Server) channel(name string) func() Channel {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	return s.registry[name]
}

// Broadcast sends msg to every subscriber of stream on every node, like
// ActionCable.server.broadcast. A json.RawMessage or []byte is sent as the
// JSON text it holds (big integers stay exact); anything else is encoded
// with encoding/json, whose escaping of <, > and & matches Rails'.
func (s *Server) Broadcast(ctx context.Context, stream string, msg any) error {
	s.init()
	payload, err := encodeMessage(msg)
	if err != nil {
		return fmt.Errorf("cable: broadcast to %q: %w", stream, err)
	}
	if err := s.ps.Publish(ctx, stream, payload); err != nil {
		return fmt.Errorf("cable: broadcast to %q: %w", stream, err)
	}
	return nil
}

// Disconnect closes every connection, on every node, whose identifiers
// are ids, like ActionCable.server.remote_connections.where(ids).disconnect
// (actioncable/lib/action_cable/remote_connections.rb). The clients get
// {"type":"disconnect","reason":"remote","reconnect":reconnect}.
func (s *Server) Disconnect(ctx context.Context, ids Identity, reconnect bool) error {
	s.init()
	id := ids.ConnectionIdentifier()
	if id == "" {
		return errors.New("cable: disconnect: no identifiers")
	}
	payload := []byte(`{"type":"disconnect","reconnect":false}`)
	if reconnect {
		payload = []byte(`{"type":"disconnect","reconnect":true}`)
	}
	return s.ps.Publish(ctx, internalStream(id), payload)
}

// BroadcastExcept is Broadcast that skips one connection, for example
// the sender of a chat message, which already shows it. The message still
// reaches every other subscriber on every node; the skipped connection is
// on this node, so it is recognized when the message comes back from the
// PubSub.
func (s *Server) BroadcastExcept(ctx context.Context, stream string, msg any, except *Conn) error {
	s.init()
	if except == nil {
		return s.Broadcast(ctx, stream, msg)
	}
	payload, err := encodeMessage(msg)
	if err != nil {
		return fmt.Errorf("cable: broadcast to %q: %w", stream, err)
	}
	if st := s.hub.stream(stream); st != nil {
		if undo, ok := st.exclude(payload, except); ok {
			if err := s.ps.Publish(ctx, stream, payload); err != nil {
				undo()
				return fmt.Errorf("cable: broadcast to %q: %w", stream, err)
			}
			return nil
		}
	}
	if err := s.ps.Publish(ctx, stream, payload); err != nil {
		return fmt.Errorf("cable: broadcast to %q: %w", stream, err)
	}
	return nil
}

// SubscriberCount returns how many connections on this node stream
// stream: the presence count of a room, for example. A connection with
// several subscriptions to the stream counts once. The count is this
// node's only; with several nodes, each counts its own clients.
func (s *Server) SubscriberCount(stream string) int {
	s.init()
	_, conns := s.hub.counts(stream)
	return conns
}

func internalStream(connID string) string { return "action_cable/" + connID }

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return 10 * time.Second
}

// notFound is Rails' answer to anything that is not an acceptable
// WebSocket upgrade (connection/base.rb, respond_to_invalid_request).
func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, "Page not found")
}

// ServeHTTP upgrades the request to an ActionCable connection and serves
// it until it closes. Requests that are not WebSocket upgrades, or come
// from an origin that is not allowed, get Rails' 404 "Page not found".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	if !isWebSocket(r) {
		notFound(w)
		return
	}
	if !s.allowOrigin(r) {
		notFound(w)
		return
	}
	if !s.admit(w, r) {
		return // refused and answered: MaxConnections or ConnectionRate
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.release()
		http.Error(w, "cable: server is shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.startPingerLocked()
	s.mu.Unlock()
	handedOff := false
	defer func() {
		if !handedOff {
			s.release()
			s.wg.Done()
		}
	}()

	// connect runs before the upgrade; its outcome is sent after it, as
	// Rails does (101, then welcome or the unauthorized disconnect).
	var identity Identity
	var authErr error
	if s.Authenticator != nil {
		actx, cancel := context.WithCancel(r.Context())
		stop := context.AfterFunc(s.abort, cancel)
		identity, authErr = s.Authenticator.Authenticate(actx, r)
		stop()
		cancel()
	}

	var hdr http.Header
	if p := selectProtocol(r); p != "" {
		hdr = http.Header{"Sec-Websocket-Protocol": {p}}
	}
	ws, err := s.upgrader.Upgrade(w, r, hdr)
	if err != nil {
		return // the upgrader has answered and logged
	}
	if authErr != nil {
		s.stats.unauthorized.Add(1)
		// Rails logs "An unauthorized connection attempt was rejected"
		// (connection/authorization.rb, reject_unauthorized_connection); an
		// error of another kind is the Authenticator failing, as an
		// exception in Rails' connect is, and is rejected all the same.
		if errors.Is(authErr, ErrUnauthorized) {
			s.logger.Info("cable: an unauthorized connection attempt was rejected", "err", authErr, "remote", r.RemoteAddr)
		} else {
			s.logger.Error("cable: the Authenticator failed; the connection was rejected as unauthorized", "err", authErr, "remote", r.RemoteAddr)
		}
		s.reject(ws)
		return
	}
	// The connection gets a goroutine of its own, and ServeHTTP returns:
	// net/http's goroutine, its response buffers and the request are then
	// freed, which is most of what an idle connection would otherwise
	// hold. The Server owns the goroutine; Shutdown waits for it.
	ctx := context.WithoutCancel(r.Context())
	handedOff = true
	go func() {
		defer s.wg.Done()
		defer s.release()
		s.serve(ctx, ws, identity)
	}()
}

// reject sends the unauthorized disconnect and closes
// (connection/authorization.rb, reject_unauthorized_connection).
func (s *Server) reject(ws *websocket.Conn) {
	deadline := time.Now().Add(s.writeTimeout())
	ws.SetWriteDeadline(deadline)
	if ws.WriteMessage(websocket.TextMessage, disconnectFrame(ReasonUnauthorized, false)) == nil {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if ws.WriteControl(websocket.CloseMessage, msg, deadline) == nil {
			// Read until the client's close frame, briefly.
			ws.SetReadDeadline(time.Now().Add(closeGrace))
			for {
				if _, _, err := ws.NextReader(); err != nil {
					break
				}
			}
		}
	}
	ws.Close()
}

func (s *Server) register(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = struct{}{}
	return !s.closing
}

func (s *Server) unregister(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// startPingerLocked starts the one server-wide heartbeat, like Rails'
// lazily started Concurrent::TimerTask (server/connections.rb,
// setup_heartbeat_timer). s.mu must be held.
func (s *Server) startPingerLocked() {
	if s.pingStop != nil {
		return
	}
	s.pingStop = make(chan struct{})
	s.pingDone = make(chan struct{})
	go s.pingLoop(s.pingInterval(), s.peerPingBeats(), s.pingStop, s.pingDone) // owner: Shutdown stops and waits for it
}

// pingLoop beats every interval, with a WebSocket ping every peerBeats
// beats (never if 0).
func (s *Server) pingLoop(every time.Duration, peerBeats int, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case now := <-t.C:
			s.beat(now, peerBeats > 0 && n%peerBeats == 0)
		}
	}
}

// beat sends one ping, framed once, to every connection; with wsPing, a
// WebSocket ping control frame follows it.
func (s *Server) beat(now time.Time, wsPing bool) {
	data := pingFrame(now)
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, data)
	if err != nil {
		return
	}
	s.mu.Lock()
	conns := s.pingSlice[:0]
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for i, c := range conns {
		c.send(outFrame{data: data, pm: pm, wsPing: wsPing})
		conns[i] = nil
		if i%yieldEvery == yieldEvery-1 {
			runtime.Gosched()
		}
	}
	s.mu.Lock()
	s.pingSlice = conns[:0]
	s.mu.Unlock()
}

// Shutdown stops accepting connections, sends every client
// {"type":"disconnect","reason":"server_restart","reconnect":true} and
// closes it (server/base.rb, restart), spread over ShutdownDrain if it is
// set, runs every Unsubscribed and Disconnected hook, and returns when
// every connection has ended. If ctx ends first, the remaining sockets
// are closed at once, and Shutdown waits for their hooks before it
// returns ctx's error. The official client reconnects by itself to
// whichever server answers next.
//
// Shutdown does not close the PubSub, which the caller owns. It must not be
// called from a channel hook or from Disconnected, which it waits for. An
// Authenticator still running when ctx ends gets its context cancelled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closing = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// Heartbeats go on while a drain (ShutdownDrain) spreads the
	// server_restart frames, or clients still waiting for theirs would
	// find the connection stale and reconnect by themselves. A closed
	// connection drops the heartbeat's frame.
	s.closeDraining(ctx, conns)
	s.mu.Lock()
	stop, done := s.pingStop, s.pingDone
	s.pingStop = nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	finished := make(chan struct{})
	go func() { // owner: Shutdown, which waits for it below
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		s.hub.wg.Wait()
		return nil
	case <-ctx.Done():
	}
	s.abortCancel()
	s.mu.Lock()
	for c := range s.conns {
		c.ws.Close()
	}
	s.mu.Unlock()
	<-finished
	s.hub.wg.Wait()
	return ctx.Err()
}
