package cable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

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
	data  []byte
	pm    *websocket.PreparedMessage
	close bool // after writing it, send close 1000 and stop writing
}

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
	c.queue = append(c.queue, outFrame{data: frame, close: true})
	c.startWriterLocked()
	c.mu.Unlock()
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
	if len(c.queue) >= c.maxQueue {
		c.closed = true
		c.queue = nil
		c.mu.Unlock()
		c.srv.stats.slow.Add(1)
		c.logger.Warn("cable: closing a connection whose send queue is full", "conn", c.connID, "queue", c.maxQueue)
		c.ws.Close() // the reader sees the error and cleans up
		return false
	}
	c.queue = append(c.queue, f)
	c.startWriterLocked()
	c.mu.Unlock()
	return true
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
		clear(batch)
		c.mu.Lock()
		c.spare = batch[:0]
		if err != nil {
			c.closed = true
			c.queue = nil
			c.writing = false
			c.mu.Unlock()
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

// handleFrame runs one client command on the command goroutine
// (connection/subscriptions.rb, execute_command). No error reaches the
// client: everything is logged, and the connection stays open.
func (c *Conn) handleFrame(ctx context.Context, b []byte) {
	cmd, err := decodeCommand(b)
	if err != nil {
		c.logErr(&ProtocolError{Err: fmt.Errorf("could not decode %q: %w", truncate(b), err)})
		return
	}
	if cmd.Command != "subscribe" && cmd.Command != "unsubscribe" && cmd.Command != "message" {
		c.logErr(&ProtocolError{Command: cmd.Command, Err: fmt.Errorf("%w in %q", errUnrecognized, truncate(b))})
		return
	}
	if cmd.Identifier == nil {
		c.logErr(&ProtocolError{Command: cmd.Command, Err: errors.New("identifier is missing")})
		return
	}
	id := *cmd.Identifier
	switch cmd.Command {
	case "subscribe":
		c.subscribe(ctx, id)
	case "unsubscribe":
		sub := c.sub(id)
		if sub == nil {
			c.logErr(&ProtocolError{Command: cmd.Command, Identifier: id, Err: errors.New("unable to find subscription")})
			return
		}
		c.unsubscribe(ctx, sub)
	case "message":
		c.message(ctx, id, cmd.Data, cmd.DataErr)
	}
}

// sub returns the subscription with identifier id, or nil.
func (c *Conn) sub(id string) *Subscription {
	s, _ := c.subs.get(id)
	return s
}

func (c *Conn) subscribe(ctx context.Context, id string) {
	if c.sub(id) != nil {
		// Rails ignores a subscribe for an identifier it already has
		// (connection/subscriptions.rb, add).
		c.logger.Debug("cable: ignoring duplicate subscribe", "identifier", id)
		return
	}
	// A map, not a struct: Rails reads params[:channel] by its exact key
	// (connection/subscriptions.rb, add), where encoding/json would also
	// match "Channel" or "CHANNEL"; the last of duplicate keys wins, as
	// in Ruby's JSON.parse.
	var params map[string]json.RawMessage
	raw := json.RawMessage(id)
	if err := json.Unmarshal(raw, &params); err != nil || !isObject(raw) {
		if err == nil {
			err = errors.New("identifier is not a JSON object")
		}
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: err})
		return
	}
	rawChannel, ok := params["channel"]
	if !ok {
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: errors.New("identifier has no channel")})
		return
	}
	var channel string
	if err := json.Unmarshal(rawChannel, &channel); err != nil || rawChannel[0] != '"' {
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: fmt.Errorf("identifier's channel is not a string: %s", rawChannel)})
		return
	}
	sub := &Subscription{conn: c, id: id, channel: channel, prefix: identifierPrefix(id)}
	newChannel := c.srv.channel(sub.channel)
	if newChannel == nil {
		// Rails only logs "Subscription class not found"; the official
		// client would then resend the subscribe every 500 ms forever, so
		// we reject it.
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: fmt.Errorf("subscription class not found: %q", sub.channel)})
		c.send(outFrame{data: typeFrame(sub.prefix, "reject_subscription")})
		return
	}
	if c.safely(sub.channel+" constructor", func() { sub.ch = newChannel() }) || sub.ch == nil {
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: errors.New("the channel constructor failed")})
		c.send(outFrame{data: typeFrame(sub.prefix, "reject_subscription")})
		return
	}
	var err error
	if c.safely(sub.channel+"#subscribed", func() { err = sub.ch.Subscribed(ctx, sub) }) && err == nil {
		err = errors.New("subscribed panicked")
	}
	if err != nil && !errors.Is(err, ErrRejected) {
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: err})
	}
	if err != nil || sub.rejected {
		// Rails runs the unsubscribe callbacks of a rejected subscription
		// before it transmits the rejection (channel/base.rb,
		// reject_subscription).
		sub.rejected = true
		c.teardown(ctx, sub)
		c.send(outFrame{data: typeFrame(sub.prefix, "reject_subscription")})
		c.logger.Debug("cable: subscription rejected", "identifier", id)
		return
	}
	c.subs.add(sub)
	sub.active = true
	if !sub.deferred {
		sub.confirm()
	}
	for _, t := range sub.timers {
		t.start()
	}
}

func (c *Conn) unsubscribe(ctx context.Context, sub *Subscription) {
	c.subs.remove(sub)
	c.teardown(ctx, sub)
}

// teardown runs Unsubscribed, then stops streams and timers
// (channel/base.rb, unsubscribe_from_channel).
func (c *Conn) teardown(ctx context.Context, sub *Subscription) {
	sub.active = false
	c.safely(sub.channel+"#unsubscribed", func() { sub.ch.Unsubscribed(ctx, sub) })
	sub.removed = true
	for _, t := range sub.timers {
		t.stop()
	}
	sub.timers = nil
	sub.StopAllStreams(ctx)
}

func (c *Conn) message(ctx context.Context, id string, data *string, dataErr error) {
	sub := c.sub(id)
	if sub == nil {
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: errors.New("unable to find subscription")})
		return
	}
	if dataErr != nil {
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: dataErr})
		return
	}
	if data == nil {
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: errors.New("data is missing")})
		return
	}
	raw := json.RawMessage(*data)
	var actionRaw json.RawMessage
	var err error
	if keysExact(raw, "action") {
		var d struct {
			Action json.RawMessage `json:"action"`
		}
		err = json.Unmarshal(raw, &d)
		actionRaw = d.Action
	} else {
		var d map[string]json.RawMessage
		err = json.Unmarshal(raw, &d)
		actionRaw = d["action"]
	}
	if err != nil || !isObject(raw) {
		if err == nil {
			err = errors.New("data is not a JSON object")
		}
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: err})
		return
	}
	action, err := actionOf(actionRaw)
	if err != nil {
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: err})
		return
	}
	if c.safely(sub.channel+"#"+action, func() { err = sub.ch.Perform(ctx, sub, action, raw) }) {
		return
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownAction):
		c.srv.stats.protocolErrors.Add(1)
		c.logger.Error(fmt.Sprintf("cable: unable to process %s#%s", sub.channel, action), "identifier", id)
	default:
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: fmt.Errorf("%s#%s: %w", sub.channel, action, err)})
	}
}

// internalMessage handles a message on the connection's internal stream
// action_cable/<id> (connection/internal_channel.rb,
// process_internal_message): a remote disconnect, in the Rails 7.1+ form
// {"type":"disconnect","reconnect":bool} or the older {"type":"disconnect"}.
func (c *Conn) internalMessage(payload []byte) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		c.logger.Error("cable: internal channel message is not JSON", "conn", c.connID, "err", err)
		return
	}
	switch m := v.(type) {
	case map[string]any:
		if m["type"] != "disconnect" {
			return
		}
		reconnect := true // message.fetch("reconnect", true)
		if r, ok := m["reconnect"]; ok {
			reconnect = r != nil && r != false
		}
		c.logger.Info("cable: removing connection", "conn", c.connID, "reconnect", reconnect)
		c.Close(ReasonRemote, reconnect)
	case string, nil:
		// "str"["type"] is nil in Ruby: ignored.
	default:
		// Indexing an Array or a number raises, and Rails' rescue closes
		// the connection without a reason.
		c.Close("", true)
	}
}

func (c *Conn) logErr(err *ProtocolError) {
	c.srv.stats.protocolErrors.Add(1)
	c.logger.Error(err.Error(), "conn", c.connID)
}

func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

func truncate(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
