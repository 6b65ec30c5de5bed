package cable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// The connection, in the order a byte goes: serve opens and closes it,
// readLoop reads client frames and queues them as commands for the
// command goroutine (runTasks; the handlers are in commands.go), and send
// queues frames for the writer (writeLoop), which writes them.

// Conn is one client connection: ActionCable::Connection::Base.
//
// A Conn has at most three goroutines, each started and waited for by the
// connection's reader (a goroutine owned by the Server): the reader itself, a
// writer that runs only while frames are queued, and a command goroutine
// that runs only while commands or timer ticks are queued. An idle
// connection therefore costs one goroutine.
type Conn struct {
	srv      *Server
	ws       wsConn
	identity Identity
	connID   string
	logger   *slog.Logger
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the writer and command goroutines

	mu       sync.Mutex // guards the fields below
	queue    []outFrame
	spare    []outFrame
	writing  bool
	closed   bool // no more frames are accepted
	tasks    []func(context.Context)
	running  bool
	stopped  bool // no more tasks run
	ctx      context.Context
	maxQueue int
	// pendingBytes is the size of the command frames queued and not yet
	// run; maxPending bounds it (see admitCommand).
	pendingBytes int64
	maxPending   int64
	// queueBytes is the size of the frames queued and being written;
	// maxQueueBytes bounds it (negative: no bound).
	queueBytes    int64
	maxQueueBytes int64

	// Owned by the reader: the budgets of commands and of WebSocket
	// pings, and how long the peer may stay silent (<= 0: forever).
	commandBudget tokenBucket
	pingBudget    tokenBucket
	peerTimeout   time.Duration
	// Owned by the command goroutine: the budget of protocol errors.
	errorBudget tokenBucket
	errorsSpent bool
	errs        errLog

	// Owned by the command goroutine: the subscriptions in the order they
	// were made, found by identifier.
	subs keyedList[*Subscription]
}

// Identity returns what the Authenticator returned for this connection.
// It must not be modified.
func (c *Conn) Identity() Identity { return c.identity }

// ConnectionIdentifier returns Rails' connection_identifier for the
// connection: see Identity.ConnectionIdentifier.
func (c *Conn) ConnectionIdentifier() string { return c.connID }

// Server returns the server the connection belongs to.
func (c *Conn) Server() *Server { return c.srv }

// serve runs one accepted connection on the calling goroutine.
func (s *Server) serve(reqCtx context.Context, ws *websocket.Conn, identity Identity) {
	ctx, cancel := context.WithCancel(reqCtx)
	defer cancel()
	if identity == nil {
		identity = Identity{}
	}
	maxQueue := s.SendQueueLen
	if maxQueue <= 0 {
		maxQueue = 1024
	}
	c := &Conn{
		srv:      s,
		ws:       gorillaConn{ws},
		identity: identity,
		connID:   identity.ConnectionIdentifier(),
		cancel:   cancel,
		ctx:      ctx,
		maxQueue: maxQueue,

		maxQueueBytes: orDefault(s.SendQueueBytes, defaultSendQueueBytes),
		commandBudget: newBucket(orDefault(s.CommandRate, defaultCommandRate), orDefault(s.CommandBurst, defaultCommandBurst)),
		peerTimeout:   s.peerTimeout(),
	}
	pingRate := orDefault(s.ClientPingRate, defaultClientPingRate)
	c.pingBudget = newBucket(pingRate, max(defaultClientPingBurst, int(5*pingRate)))
	if n := orDefault(s.MaxProtocolErrors, defaultMaxProtocolErrors); n > 0 {
		c.errorBudget = newBucket(float64(n)/60, n)
	}
	c.logger = s.logger
	limit := s.MaxMessageSize
	if limit <= 0 {
		limit = 1 << 20
	}
	ws.SetReadLimit(limit)
	c.maxPending = max(minPendingBytes, 2*limit)

	// Open sequence (connection/base.rb, handle_open): the internal
	// channel, welcome, then the connection joins the heartbeat. Rails does
	// not wait for the internal subscription (it is posted to the event
	// loop), so neither do we: a pub/sub outage must not hold up welcome.
	var unsubInternal func()
	// Rails subscribes only if connection_identifier.present?
	// (connection/internal_channel.rb): not for a blank one.
	if strings.TrimSpace(c.connID) != "" {
		c.wg.Add(1)
		go func() { // owner: this connection's reader, which waits on c.wg
			defer c.wg.Done()
			// ctx is cancelled when the socket ends, which ends a wait
			// during a pub/sub outage.
			unsub, err := s.ps.Subscribe(ctx, internalStream(c.connID), c.internalMessage)
			if err != nil {
				if ctx.Err() == nil {
					s.logger.Error("cable: cannot subscribe to the internal channel", "conn", c.connID, "err", err)
				}
				return
			}
			c.mu.Lock()
			unsubInternal = unsub
			c.mu.Unlock()
		}()
	}
	c.send(outFrame{data: frameWelcome})
	s.stats.conns.Add(1)
	// Rails logs "Successfully upgraded to WebSocket" (connection/base.rb)
	// and "Registered connection (<identifier>)"
	// (connection/internal_channel.rb).
	c.logger.Debug("cable: registered connection", "conn", c.connID, "remote", ws.RemoteAddr())
	if !s.register(c) {
		c.Close(ReasonServerRestart, true)
	}

	c.readLoop(ws)

	// The socket is done: stop accepting frames and tasks, wait for the
	// goroutines, then unsubscribe everything, as handle_close does.
	s.unregister(c)
	c.mu.Lock()
	c.closed = true
	c.stopped = true
	c.mu.Unlock()
	ws.Close()
	// Cancelling unblocks a command still waiting on the pub/sub (a
	// stream_from during an outage); the hooks below get a context that is
	// not cancelled, so they can still broadcast.
	cancel()
	c.wg.Wait()
	if unsubInternal != nil {
		unsubInternal()
	}
	hookCtx := context.WithoutCancel(ctx)
	for _, sub := range c.subs.items {
		c.teardown(hookCtx, sub)
	}
	c.subs = keyedList[*Subscription]{}
	if s.Disconnected != nil {
		c.safely("disconnect", func() { s.Disconnected(hookCtx, c) })
	}
	c.flushErrLog()
}

// readLoop reads frames until the socket fails or closes and queues each
// text frame as a command, so commands run in the order they arrived.
func (c *Conn) readLoop(ws *websocket.Conn) {
	s := c.srv
	c.extendDeadline(ws)
	ws.SetPongHandler(func(string) error {
		c.extendDeadline(ws)
		return nil
	})
	ws.SetPingHandler(func(data string) error { return c.clientPing(ws, data) })
	flooded := false // the connection is being closed for a flood: discard the rest
	for {
		typ, b, err := ws.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, errPingFlood):
				s.limitHit(limitClientPings, "cable: closing a connection that sent too many WebSocket pings", "conn", c.connID, "remote", ws.RemoteAddr())
				msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "Too many pings")
				_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			case isTimeout(err) && !c.isClosed():
				s.limitHit(limitPeerTimeout, "cable: closing a connection that sent nothing, not even a pong, within the peer timeout",
					"conn", c.connID, "remote", ws.RemoteAddr(), "timeout", c.peerTimeout)
			case errors.Is(err, websocket.ErrReadLimit):
				s.limitHit(limitMessageSize, "cable: closing a connection that sent a message over the size limit", "conn", c.connID, "remote", ws.RemoteAddr())
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived):
			default:
				s.logger.Debug("cable: connection ended", "conn", c.connID, "err", err)
			}
			return
		}
		if flooded {
			continue
		}
		c.extendDeadline(ws)
		if !c.commandBudget.allow(time.Now()) {
			flooded = true
			s.limitHit(limitCommands, "cable: closing a connection that sent commands faster than its budget", "conn", c.connID,
				"remote", ws.RemoteAddr(), "rate", c.commandBudget.rate, "burst", c.commandBudget.burst)
			c.closeWith(disconnectFrame(reasonInvalidRequest, false))
			continue
		}
		if typ != websocket.TextMessage {
			c.logError("cable: couldn't handle non-string message", slog.String("conn", c.connID))
			continue
		}
		if !utf8.Valid(b) {
			// RFC 6455 §8.1: a text frame that is not UTF-8 fails the
			// connection with 1007, as websocket-driver does for Rails
			// (lib/websocket/driver/hybi.rb); gorilla does not check.
			s.logger.Warn("cable: closing a connection that sent a text frame that is not UTF-8", "conn", c.connID, "remote", ws.RemoteAddr())
			msg := websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "Could not decode a text frame as UTF-8")
			_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			return
		}
		n := int64(len(b))
		if err := c.admitCommand(n); err != nil {
			s.limitHit(limitPendingCommands, "cable: closing a connection with "+err.Error(), "conn", c.connID,
				"limit_commands", maxPendingCommands, "limit_bytes", c.maxPending)
			return
		}
		s.stats.commands.Add(1)
		if !c.enqueueTask(func(ctx context.Context) {
			defer c.commandDone(n)
			c.handleFrame(ctx, b)
		}) {
			// The server is closing this connection: keep reading until
			// the client's close frame, but run nothing more.
			c.commandDone(n)
			s.logger.Debug("cable: ignoring a message processed after the connection was closed", "conn", c.connID)
		}
	}
}

// maxPendingCommands bounds the commands one connection may have waiting
// to run; a client that sends faster than its commands run (or whose
// commands wait on a pub/sub outage) is disconnected past it, so a
// connection's memory stays bounded.
const maxPendingCommands = 4096

// minPendingBytes is the least memory a connection may hold in commands
// waiting to run; the bound is twice the largest message if that is more,
// so that a command of any allowed size can always wait behind another.
const minPendingBytes = 16 << 20

// Why admitCommand refuses a command.
var (
	errTooManyCommands = errors.New("too many commands waiting")
	errTooManyBytes    = errors.New("too many bytes of commands waiting")
)

// admitCommand accounts one more command of n bytes waiting to run. It
// refuses, and accounts nothing, when maxPendingCommands tasks are queued,
// or when n bytes would pass the connection's bound while something is
// already waiting: a client that sends faster than its commands run (or
// whose commands wait on a pub/sub outage) must not make the server hold
// its frames without limit. Counting commands alone would still allow
// maxPendingCommands × MaxMessageSize bytes.
func (c *Conn) admitCommand(n int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.tasks) >= maxPendingCommands:
		return errTooManyCommands
	case c.pendingBytes > 0 && c.pendingBytes+n > c.maxPending:
		return errTooManyBytes
	}
	c.pendingBytes += n
	return nil
}

// commandDone gives back what admitCommand accounted.
func (c *Conn) commandDone(n int64) {
	c.mu.Lock()
	c.pendingBytes -= n
	c.mu.Unlock()
}

// enqueueTask queues fn to run on the command goroutine, after everything
// queued before it. It reports false once the connection has stopped.
func (c *Conn) enqueueTask(fn func(context.Context)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	c.tasks = append(c.tasks, fn)
	if !c.running {
		c.running = true
		c.wg.Add(1)
		go c.runTasks() // owner: the reader, which waits on c.wg
	}
	return true
}

// runTasks runs queued tasks in order until none is left.
func (c *Conn) runTasks() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		if len(c.tasks) == 0 || c.stopped {
			c.tasks = nil
			c.running = false
			c.mu.Unlock()
			return
		}
		fn := c.tasks[0]
		c.tasks[0] = nil
		c.tasks = c.tasks[1:]
		ctx := c.ctx
		c.mu.Unlock()
		c.safely("task", func() { fn(ctx) })
	}
}

// safely runs fn and turns a panic into a log line with the stack, as
// net/http does for handlers; the connection and the server live on.
func (c *Conn) safely(what string, fn func()) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			c.logger.Error("cable: panic in channel code", "in", what, "conn", c.connID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	fn()
	return false
}

// wsConn is the part of *websocket.Conn the writer uses; benchmarks
// substitute a sink for it.
type wsConn interface {
	SetWriteDeadline(t time.Time) error
	WriteMessage(messageType int, data []byte) error
	WritePreparedMessage(pm *websocket.PreparedMessage) error
	WriteControl(messageType int, data []byte, deadline time.Time) error
	SetReadDeadline(t time.Time) error
	Close() error
}

// gorillaConn is the wsConn of a real socket. gorilla/websocket counts
// SetReadDeadline among the read methods, which only the reader may call;
// the writer sets the deadline that ends the wait for the client's close
// frame, so it goes to the net.Conn, which allows that from any goroutine.
type gorillaConn struct{ *websocket.Conn }

func (g gorillaConn) SetReadDeadline(t time.Time) error { return g.NetConn().SetReadDeadline(t) }

// outFrame is one queued text frame. pm, when set, is the same frame
// prepared once for many connections.
type outFrame struct {
	data   []byte
	pm     *websocket.PreparedMessage
	close  bool // after writing it, send close 1000 and stop writing
	wsPing bool // after writing it, send a WebSocket ping control frame
}

// send queues a frame without blocking. It reports false if the connection
// is closed; a full queue means a client too slow to keep up, and it is
// disconnected.
func (c *Conn) send(f outFrame) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	full := len(c.queue) >= c.maxQueue
	if full || c.maxQueueBytes > 0 && c.queueBytes+int64(len(f.data)) > c.maxQueueBytes && c.queueBytes > 0 {
		c.closed = true
		c.queue = nil
		c.mu.Unlock()
		c.srv.stats.slow.Add(1)
		if full {
			c.srv.warnLimited("slow_clients", "cable: closing a connection whose send queue is full", "conn", c.connID, "queue", c.maxQueue)
		} else {
			c.srv.limitHit(limitSendQueueBytes, "cable: closing a connection whose send queue holds too many bytes", "conn", c.connID, "queue_bytes", c.maxQueueBytes)
		}
		c.ws.Close() // the reader sees the error and cleans up
		return false
	}
	c.queueBytes += int64(len(f.data))
	c.queue = append(c.queue, f)
	c.startWriterLocked()
	c.mu.Unlock()
	return true
}

// Close sends {"type":"disconnect","reason":reason,"reconnect":reconnect}
// and closes the connection with code 1000, like Rails'
// Connection::Base#close. An empty reason is sent as null. It does not
// wait; it may be called from any goroutine, more than once.
func (c *Conn) Close(reason string, reconnect bool) {
	c.closeWith(disconnectFrame(reason, reconnect))
}

// closeWith queues frame as the last frame, then the close frame.
func (c *Conn) closeWith(frame []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	// Commands that arrive or wait after this are not run, as Rails
	// ignores messages processed after the socket was closed
	// (connection/base.rb, "Ignoring message processed after the
	// WebSocket was closed"). The subscriptions are torn down when the
	// socket ends.
	c.stopped = true
	c.queueBytes += int64(len(frame))
	c.queue = append(c.queue, outFrame{data: frame, close: true})
	c.startWriterLocked()
	c.mu.Unlock()
}

func (c *Conn) startWriterLocked() {
	if c.writing {
		return
	}
	c.writing = true
	c.wg.Add(1)
	go c.writeLoop() // owner: the reader, which waits on c.wg
}

// writeLoop writes queued frames until the queue is empty, then exits.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.queue = c.spare[:0]
		c.mu.Unlock()

		err := c.writeBatch(batch)
		var n int64
		for _, f := range batch {
			n += int64(len(f.data))
		}
		clear(batch)
		c.mu.Lock()
		c.spare = batch[:0]
		c.queueBytes -= n
		if err != nil {
			wasClosed := c.closed
			c.closed = true
			c.queue = nil
			c.queueBytes = 0
			c.writing = false
			c.mu.Unlock()
			if !wasClosed && isTimeout(err) {
				// A client that does not take a frame within the write
				// timeout is as slow as one whose queue is full.
				c.srv.stats.slow.Add(1)
				c.srv.warnLimited("slow_clients", "cable: closing a connection that did not take a frame within the write timeout",
					"conn", c.connID, "timeout", c.srv.writeTimeout())
			}
			c.ws.Close()
			return
		}
		c.mu.Unlock()
	}
}

func (c *Conn) writeBatch(batch []outFrame) error {
	c.srv.stats.frames.Add(uint64(len(batch)))
	timeout := c.srv.writeTimeout()
	for _, f := range batch {
		if err := c.ws.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		var err error
		if f.pm != nil {
			err = c.ws.WritePreparedMessage(f.pm)
		} else {
			err = c.ws.WriteMessage(websocket.TextMessage, f.data)
		}
		if err != nil {
			return err
		}
		if f.wsPing {
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(timeout)); err != nil {
				return err
			}
		}
		if f.close {
			// Rails closes with 1000 and an empty reason
			// (connection/client_socket.rb). Wait a little for the
			// client's close frame, then give up on it.
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(timeout)); err != nil {
				return err
			}
			return c.ws.SetReadDeadline(time.Now().Add(closeGrace))
		}
	}
	return nil
}

// closeGrace is how long the server waits for the client's close frame
// after sending its own.
const closeGrace = 2 * time.Second
