package cable

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// sinkConn is a wsConn that counts what is written instead of writing to
// a socket, for benchmarks and fuzzing of everything above the socket.
type sinkConn struct {
	frames atomic.Int64
	bytes  atomic.Int64
	closed atomic.Bool
	mu     sync.Mutex
	last   []byte
	keep   bool
}

func (s *sinkConn) SetWriteDeadline(time.Time) error { return nil }
func (s *sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (s *sinkConn) WriteMessage(typ int, data []byte) error {
	s.frames.Add(1)
	s.bytes.Add(int64(len(data)))
	if s.keep {
		s.mu.Lock()
		s.last = append(s.last[:0], data...)
		s.mu.Unlock()
	}
	return nil
}
func (s *sinkConn) WritePreparedMessage(pm *websocket.PreparedMessage) error {
	s.frames.Add(1)
	return nil
}
func (s *sinkConn) WriteControl(int, []byte, time.Time) error { return nil }
func (s *sinkConn) Close() error                              { s.closed.Store(true); return nil }

// newSinkConn returns a connection of srv that writes to a sink.
func newSinkConn(srv *Server, identity Identity) (*Conn, *sinkConn) {
	srv.init()
	ctx, cancel := context.WithCancel(context.Background())
	sink := &sinkConn{}
	c := &Conn{
		srv: srv, ws: sink, identity: identity, connID: identity.ConnectionIdentifier(),
		cancel: cancel, ctx: ctx, maxQueue: 1 << 20,
		logger: srv.logger,
	}
	return c, sink
}

// finish tears the connection down as serve does.
func (c *Conn) finish() {
	c.mu.Lock()
	c.closed = true
	c.stopped = true
	c.mu.Unlock()
	c.wg.Wait()
	for _, sub := range c.subs.items {
		c.teardown(c.ctx, sub)
	}
	c.cancel()
}

func quietServer() *Server {
	return &Server{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// streamChannel streams the "stream" param, or "all".
type streamChannel struct{}

func (streamChannel) Subscribed(ctx context.Context, s *Subscription) error {
	var p struct{ Stream string }
	s.DecodeParams(&p)
	if p.Stream == "" {
		p.Stream = "all"
	}
	return s.StreamFrom(ctx, p.Stream)
}
func (streamChannel) Unsubscribed(ctx context.Context, s *Subscription) {}
func (streamChannel) Perform(ctx context.Context, s *Subscription, action string, data json.RawMessage) error {
	switch action {
	case "echo":
		return s.Transmit(ctx, data)
	case "panic":
		panic("boom")
	}
	return ErrUnknownAction
}
