package cable

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// hub indexes the local subscribers of every stream and holds one PubSub
// subscription per stream, however many local subscribers it has.
//
// Lock order: hub.mu before hubStream.mu; neither is held while calling the
// PubSub or writing to a socket.
type hub struct {
	ps     PubSub
	logger *slog.Logger
	stats  *counters
	wg     sync.WaitGroup // the streams' subscribe goroutines

	mu      sync.Mutex
	streams map[string]*hubStream
}

// hubStream is one stream's local state.
type hubStream struct {
	name    string
	hub     *hub
	ready   chan struct{}      // closed when the PubSub subscription is settled
	err     error              // the PubSub subscription's error; read after ready
	unsub   func()             // set, under hub.mu, before ready is closed
	refs    int                // guarded by hub.mu: subscribers added or being added
	cancel  context.CancelFunc // ends the PubSub subscribe call
	settled bool               // guarded by hub.mu: the PubSub has answered

	mu     sync.RWMutex
	groups keyedList[*group] // by identifier, in the order they first streamed
	conns  map[*Conn]int     // subscriptions per connection, for presence
	count  int               // subscriptions in groups

	// Broadcasts to deliver to everyone but one connection, matched by
	// their bytes when they come back from the PubSub.
	exMu       sync.Mutex
	exclusions []*exclusion
	nEx        atomic.Int32
}

// exclusion is one pending BroadcastExcept.
type exclusion struct {
	payload []byte
	conn    *Conn
	at      time.Time
}

// yieldEvery is how many connections a fan-out (a broadcast or a ping
// beat) wakes before it yields, so that the writers it started run and
// end before more are started: without it a beat to 10,000 connections
// has 10,000 writer goroutines alive at once, whose stacks and goroutine
// structs stay with the process.
const yieldEvery = 128

// exclusionTTL bounds how long a BroadcastExcept waits for its message to
// come back from the PubSub; one lost in an outage is forgotten then.
const exclusionTTL = 30 * time.Second

// group is the subscribers of one stream that share an identifier, so they
// share one encoded frame.
type group struct {
	id      string
	members map[*Subscription]struct{}
}

// key returns the group's identifier, for keyedList.
func (g *group) key() string { return g.id }

func newHub(ps PubSub, logger *slog.Logger, stats *counters) *hub {
	return &hub{ps: ps, logger: logger, stats: stats, streams: make(map[string]*hubStream)}
}

// add subscribes s to stream, subscribing the node in the PubSub if s is
// the first local subscriber. It returns once the PubSub subscription is
// active, or when ctx ends first.
//
// The PubSub subscription belongs to the stream, not to the subscriber
// that happened to come first: it runs on a goroutine of its own with a
// context of its own, so that subscriber leaving (its connection closing
// during a Redis outage, say) fails nobody else's subscription.
func (h *hub) add(ctx context.Context, stream string, s *Subscription) (*hubStream, error) {
	h.mu.Lock()
	st := h.streams[stream]
	if st == nil {
		subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		st = &hubStream{name: stream, hub: h, ready: make(chan struct{}), conns: make(map[*Conn]int), cancel: cancel}
		h.streams[stream] = st
		h.wg.Add(1)
		go st.subscribe(subCtx) // owner: the hub; ends when the PubSub answers or the last waiter leaves; Server.Shutdown waits on h.wg
	}
	st.refs++
	h.mu.Unlock()

	select {
	case <-st.ready:
	default:
		// Waiting on ctx.Done allocates its channel; most streams are
		// ready, so look first.
		select {
		case <-st.ready:
		case <-ctx.Done():
			h.release(st)
			return nil, ctx.Err()
		}
	}
	if st.err != nil {
		h.release(st)
		return nil, st.err
	}

	st.mu.Lock()
	g, ok := st.groups.get(s.id)
	if !ok {
		g = &group{id: s.id, members: make(map[*Subscription]struct{}, 1)}
		st.groups.add(g)
	}
	g.members[s] = struct{}{}
	st.count++
	st.conns[s.conn]++
	st.mu.Unlock()
	return st, nil
}

// subscribe subscribes the node to the stream in the PubSub. A failed
// stream leaves the index at once, so the next subscriber tries afresh;
// one whose subscribers all left meanwhile is unsubscribed at once.
func (st *hubStream) subscribe(ctx context.Context) {
	h := st.hub
	defer h.wg.Done()
	defer st.cancel()
	var unsub func()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("cable: PubSub.Subscribe panicked: %v", r)
				h.logger.Error(err.Error(), "stream", st.name, "stack", string(debug.Stack()))
			}
		}()
		unsub, err = h.ps.Subscribe(ctx, st.name, st.deliver)
	}()
	h.mu.Lock()
	abandoned := st.refs == 0
	if (err != nil || abandoned) && h.streams[st.name] == st {
		delete(h.streams, st.name)
	}
	if err == nil && !abandoned {
		st.unsub = unsub
	}
	st.err = err
	if err == nil && abandoned {
		st.err = errAbandoned
	}
	st.settled = true
	h.mu.Unlock()
	close(st.ready)
	if err == nil && abandoned {
		unsub()
	}
}

var errAbandoned = errors.New("cable: stream abandoned")

// remove undoes a successful add.
func (h *hub) remove(st *hubStream, s *Subscription) {
	st.mu.Lock()
	if g, ok := st.groups.get(s.id); ok {
		if _, ok := g.members[s]; ok {
			delete(g.members, s)
			st.count--
			if st.conns[s.conn]--; st.conns[s.conn] <= 0 {
				delete(st.conns, s.conn)
			}
		}
		if len(g.members) == 0 {
			st.groups.remove(g)
		}
	}
	st.mu.Unlock()
	h.release(st)
}

// release drops one reference. The last one unsubscribes the node from the
// stream, or, if the PubSub has not answered yet, gives up waiting for it.
func (h *hub) release(st *hubStream) {
	h.mu.Lock()
	st.refs--
	last := st.refs == 0
	if last && h.streams[st.name] == st {
		delete(h.streams, st.name)
	}
	settled, unsub := st.settled, st.unsub
	h.mu.Unlock()
	switch {
	case !last:
	case !settled:
		st.cancel()
	case unsub != nil:
		unsub()
	}
}

// stream returns the local state of stream, or nil.
func (h *hub) stream(stream string) *hubStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[stream]
}

// counts returns the number of local subscriptions to stream and of the
// connections they belong to.
func (h *hub) counts(stream string) (subs, conns int) {
	st := h.stream(stream)
	if st == nil {
		return 0, 0
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.count, len(st.conns)
}

// exclude registers that the next delivery of payload on st must skip c.
// It reports false when c does not stream st, so nothing needs skipping.
func (st *hubStream) exclude(payload []byte, c *Conn) (undo func(), ok bool) {
	st.mu.RLock()
	_, member := st.conns[c]
	st.mu.RUnlock()
	if !member {
		return nil, false
	}
	e := &exclusion{payload: payload, conn: c, at: time.Now()}
	st.exMu.Lock()
	st.exclusions = append(st.exclusions, e)
	st.nEx.Store(int32(len(st.exclusions)))
	st.exMu.Unlock()
	return func() { st.dropExclusion(e) }, true
}

// dropExclusion forgets e, whose message was not published.
func (st *hubStream) dropExclusion(e *exclusion) {
	st.exMu.Lock()
	defer st.exMu.Unlock()
	for i, x := range st.exclusions {
		if x == e {
			st.exclusions = append(st.exclusions[:i], st.exclusions[i+1:]...)
			st.nEx.Store(int32(len(st.exclusions)))
			return
		}
	}
}

// takeExclusion removes and returns the connection to skip for payload,
// forgetting exclusions whose message never came back.
func (st *hubStream) takeExclusion(payload []byte) *Conn {
	st.exMu.Lock()
	defer st.exMu.Unlock()
	var skip *Conn
	now := time.Now()
	kept := st.exclusions[:0]
	for _, e := range st.exclusions {
		switch {
		case skip == nil && bytes.Equal(e.payload, payload):
			skip = e.conn
		case now.Sub(e.at) < exclusionTTL:
			kept = append(kept, e)
		}
	}
	clear(st.exclusions[len(kept):])
	st.exclusions = kept
	st.nEx.Store(int32(len(kept)))
	return skip
}

// deliver fans one PubSub message out to the stream's local subscribers.
// The payload is normalized once; the frame is built once per identifier
// and, when several connections share it, framed once for all of them.
// Enqueueing never blocks: a subscriber whose queue is full is disconnected.
func (st *hubStream) deliver(payload []byte) {
	st.hub.stats.broadcasts.Add(1)
	st.hub.stats.lastBroadcast.Store(time.Now().UnixNano())
	msg, err := normalizeJSON(payload)
	if err != nil {
		// Rails' default stream handler fails to decode it and drops it
		// (channel/streams.rb); the client gets nothing.
		st.hub.logger.Warn("cable: dropping a broadcast that is not valid JSON in UTF-8", "stream", st.name, "bytes", len(payload))
		return
	}
	var skip *Conn
	if st.nEx.Load() > 0 {
		skip = st.takeExclusion(payload)
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	sent := 0
	for _, g := range st.groups.items {
		f := outFrame{data: dataFrame(g.id, msg)}
		if len(g.members) > 1 {
			pm, err := websocket.NewPreparedMessage(websocket.TextMessage, f.data)
			if err == nil {
				f.pm = pm
			}
		}
		for s := range g.members {
			if s.conn == skip {
				continue
			}
			s.conn.send(f)
			if sent++; sent%yieldEvery == 0 {
				runtime.Gosched()
			}
		}
	}
}
