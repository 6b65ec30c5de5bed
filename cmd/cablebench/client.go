package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// protocol is the subprotocol ActionCable servers require.
const protocol = "actioncable-v1-json"

// maxFrame bounds a server frame; a larger one fails the connection.
const maxFrame = 1 << 20

// writeWait bounds every write of a client.
const writeWait = 10 * time.Second

// errRemote is the refusal of a target that is not loopback; it is always
// wrapped in an error that says where it came from.
var errRemote = errors.New("refusing a host that is not loopback (use -allow-remote)")

// isLoopbackHost reports whether host (without port) is a loopback IP
// literal or "localhost". Other names are refused without being resolved,
// so checking sends no DNS query.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// guardedDial returns a DialContext that refuses addresses that are not
// loopback unless allowRemote, and checks the connected peer too.
func guardedDial(allowRemote bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{KeepAlive: -1}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !allowRemote {
			host, _, err := net.SplitHostPort(addr)
			if err != nil || !isLoopbackHost(host) {
				return nil, errRemote
			}
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if !allowRemote {
			if ta, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
				c.Close()
				return nil, errRemote
			}
		}
		return c, nil
	}
}

// target is an ActionCable endpoint and the subscription every client
// makes.
type target struct {
	url          string
	header       http.Header
	dialer       *websocket.Dialer
	identifier   string
	quotedID     []byte // identifier as a JSON string token
	subscribe    []byte // the subscribe command
	setupTimeout time.Duration
}

func newTarget(o *options) *target {
	h := http.Header{}
	h.Set("Origin", o.origin)
	return &target{
		url:    o.url,
		header: h,
		dialer: &websocket.Dialer{
			NetDialContext:   guardedDial(o.allowRemote),
			HandshakeTimeout: o.dialTimeout,
			// Small buffers keep 10k clients cheap; a frame larger
			// than the read buffer is still read whole.
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			WriteBufferPool: &sync.Pool{},
			Subprotocols:    []string{protocol},
		},
		identifier:   o.identifier,
		quotedID:     appendJSONString(nil, o.identifier),
		subscribe:    subscribeCommand(o.identifier),
		setupTimeout: o.dialTimeout,
	}
}

// client is one ActionCable connection with one subscription.
type client struct {
	ws  *websocket.Conn
	buf []byte // the last frame read
	out []byte // the last command written
}

// setupTimes are the moments of a connection's setup, from the start of
// the dial.
type setupTimes struct {
	handshake time.Duration // the 101 response
	welcome   time.Duration
	confirmed time.Duration
}

// open dials, waits for welcome, subscribes and waits for the
// confirmation, as the official client does.
func (t *target) open(ctx context.Context) (*client, setupTimes, error) {
	var st setupTimes
	ctx, cancel := context.WithTimeout(ctx, t.setupTimeout)
	defer cancel()
	start := time.Now()
	ws, resp, err := t.dialer.DialContext(ctx, t.url, t.header)
	if err != nil {
		if resp != nil {
			return nil, st, fmt.Errorf("cablebench: dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, st, fmt.Errorf("cablebench: dial: %w", err)
	}
	st.handshake = time.Since(start)
	ws.SetReadLimit(maxFrame)
	c := &client{ws: ws}
	deadline, _ := ctx.Deadline()
	ws.SetReadDeadline(deadline)
	ws.SetWriteDeadline(deadline)
	if err := c.await(typeWelcome, nil); err != nil {
		ws.Close()
		return nil, st, err
	}
	st.welcome = time.Since(start)
	if err := ws.WriteMessage(websocket.TextMessage, t.subscribe); err != nil {
		ws.Close()
		return nil, st, fmt.Errorf("cablebench: subscribe: %w", err)
	}
	if err := c.await(typeConfirm, t); err != nil {
		ws.Close()
		return nil, st, err
	}
	st.confirmed = time.Since(start)
	ws.SetReadDeadline(time.Time{})
	ws.SetWriteDeadline(time.Time{})
	return c, st, nil
}

// await reads frames until one of type typ arrives (for t's
// subscription, if t is not nil). A rejection or a disconnect is an error.
func (c *client) await(typ string, t *target) error {
	for {
		f, err := c.next()
		if err != nil {
			return fmt.Errorf("cablebench: waiting for %s: %w", typ, err)
		}
		switch f.Type {
		case typeDisconnect:
			return fmt.Errorf("cablebench: server disconnected (reason %q) while waiting for %s", f.Reason, typ)
		case typeReject:
			if t == nil || t.matches(f.Identifier) {
				return fmt.Errorf("cablebench: subscription rejected")
			}
		case typ:
			if t == nil || t.matches(f.Identifier) {
				return nil
			}
		}
	}
}

// matches reports whether a frame's identifier token is t's identifier.
func (t *target) matches(tok []byte) bool {
	if string(tok) == string(t.quotedID) {
		return true
	}
	var id string
	return json.Unmarshal(tok, &id) == nil && id == t.identifier
}

// next reads and parses the next text frame. The frame aliases c.buf and is
// valid until the next call.
func (c *client) next() (frame, error) {
	for {
		b, err := c.read()
		if err != nil {
			return frame{}, err
		}
		f, err := parseFrame(b)
		if err != nil {
			continue // not ours to judge; ActionCable frames are objects
		}
		return f, nil
	}
}

// read reads the next text frame into c.buf.
func (c *client) read() ([]byte, error) {
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			return nil, err
		}
		if typ != websocket.TextMessage {
			continue
		}
		b := c.buf[:0]
		for {
			if len(b) == cap(b) {
				b = append(b, 0)[:len(b)]
			}
			n, err := r.Read(b[len(b):cap(b)])
			b = b[:len(b)+n]
			if err == io.EOF {
				c.buf = b
				return b, nil
			}
			if err != nil {
				return nil, err
			}
		}
	}
}

// perform sends a message command with data, a JSON object.
func (c *client) perform(t *target, data []byte) error {
	c.out = messageCommand(c.out[:0], t.quotedID, data)
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, c.out)
}

// close sends a close frame and closes the socket.
func (c *client) close() {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	c.ws.Close()
}

// dialResult is the outcome of connecting many clients.
type dialResult struct {
	clients   []*client // the connected clients, if kept
	connected int
	setup     []time.Duration // dial to confirmation, per connected client
	handshake []time.Duration // dial to 101
	subscribe []time.Duration // welcome to confirmation
	errors    errorTally
	aborted   bool
	wall      time.Duration
}

// connectAll opens n clients, conc at a time, counting each confirmed
// one in done. Kept clients are returned; the others are closed as soon as
// they are confirmed. It gives up early when more than 100 dials have
// failed and failures outnumber successes.
func connectAll(ctx context.Context, t *target, n, conc int, keep bool, done *atomic.Int64) *dialResult {
	r := &dialResult{}
	type slot struct {
		c  *client
		st setupTimes
		ok bool
	}
	slots := make([]slot, n)
	var next, failed atomic.Int64
	var aborted atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range min(conc, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if f := failed.Load(); f > 100 && f > done.Load() {
					aborted.Store(true)
					return
				}
				c, st, err := t.open(ctx)
				if err != nil {
					failed.Add(1)
					r.errors.add(err)
					continue
				}
				if keep {
					slots[i].c = c
				} else {
					c.close()
				}
				slots[i].st, slots[i].ok = st, true
				done.Add(1)
			}
		})
	}
	wg.Wait()
	r.wall = time.Since(start)
	r.aborted = aborted.Load()
	for _, s := range slots {
		if !s.ok {
			continue
		}
		r.connected++
		if s.c != nil {
			r.clients = append(r.clients, s.c)
		}
		r.setup = append(r.setup, s.st.confirmed)
		r.handshake = append(r.handshake, s.st.handshake)
		r.subscribe = append(r.subscribe, s.st.confirmed-s.st.welcome)
	}
	if ctx.Err() != nil && r.connected < n {
		r.errors.add(fmt.Errorf("cablebench: connecting: %w", context.Cause(ctx)))
	}
	return r
}

// closeAll closes clients, conc at a time.
func closeAll(clients []*client, conc int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(conc, len(clients)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(clients) {
					return
				}
				clients[i].close()
			}
		})
	}
	wg.Wait()
}
