package redispubsub

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocable/gocable/cable/internal/pubsubkit"

	"github.com/gocable/gocable/cable"
	"github.com/redis/go-redis/v9"
)

var (
	// ErrClosed is returned by PubSub methods after Close.
	ErrClosed = errors.New("redispubsub: closed")

	// ErrUnavailable is wrapped into the errors of Publish and
	// Subscribe when they fail while the subscriber connection to Redis is
	// down, so that callers can tell an outage from a bad request with
	// errors.Is.
	ErrUnavailable = errors.New("redispubsub: redis unavailable")
)

// opError is the error of a PubSub operation on a channel: its message
// reads `redispubsub: <op> "<channel>": <kind>: <err>`, and it wraps both
// kind (a sentinel such as ErrUnavailable, or nil) and err.
type opError = pubsubkit.OpError

// Config configures a PubSub. The zero value is a valid configuration: no
// channel prefix, slog.Default, and the backoff and health check defaults
// below.
type Config struct {
	// ChannelPrefix is prepended to every stream name, followed by ":", as
	// Rails' channel_prefix setting in config/cable.yml does
	// (actioncable/lib/action_cable/subscription_adapter/channel_prefix.rb:
	// [prefix, stream].compact.join(":")). nil means no prefix: the Redis
	// channel is the stream name. A pointer to "" is a real, empty prefix,
	// as in Rails: stream "chat" becomes channel ":chat". For example
	// ChannelPrefix: new("myapp_production").
	ChannelPrefix *string

	// Logger receives the outage and recovery messages and errors in
	// deliver functions. nil means slog.Default().
	Logger *slog.Logger

	// MinBackoff and MaxBackoff bound the delay between reconnection
	// attempts, which doubles from MinBackoff up to MaxBackoff; each delay
	// is jittered to between half and all of its value, so that many nodes
	// don't reconnect in step. Zero means 100ms and 1s.
	MinBackoff, MaxBackoff time.Duration

	// HealthCheckInterval is how long the subscriber connection may stay
	// silent before it is sent a PING; when the PING gets no reply within
	// another interval, the connection is considered dead and replaced.
	// It catches connections that die without being closed (a host that
	// disappeared, a dropped NAT entry). Zero means 3s; a negative value
	// disables the check, leaving only TCP errors to detect an outage.
	HealthCheckInterval time.Duration
}

// State is the state of a PubSub's subscriber connection, as returned by
// PubSub.State. Its zero value is StateConnecting.
type State = pubsubkit.State

const (
	// StateConnecting means the first connection has not been made yet.
	StateConnecting = pubsubkit.Connecting
	// StateUp means the subscriber connection is established and every
	// stream in use has been subscribed on it.
	StateUp = pubsubkit.Up
	// StateDown means the connection was lost or could not be made; it is
	// being retried with backoff.
	StateDown = pubsubkit.Down
	// StateClosed means Close was called.
	StateClosed = pubsubkit.Closed
)

// PubSub is a cable.PubSub over Redis PUBLISH and SUBSCRIBE, wire-compatible
// with Rails' redis subscription adapter
// (actioncable/lib/action_cable/subscription_adapter/redis.rb); the package
// documentation describes its compatibility, its at-most-once delivery and
// its behaviour during outages.
//
// New starts two goroutines, both owned by the PubSub and both ended by
// Close, which waits for them: the reader, the only one to read from the
// subscriber connection, which connects, reconnects and calls every
// deliver function; and the keepalive, which sends PINGs (it is not started
// when HealthCheckInterval is negative). Because a single goroutine
// delivers, calls to deliver never overlap, for any stream; a deliver that
// blocks delays every stream. A panic in deliver is recovered and logged.
// The unsubscribe function returned by Subscribe must not be called from
// within a deliver function (it waits for deliver to return).
//
// A PubSub is safe for concurrent use. The zero value is not usable; create
// a PubSub with New.
type PubSub struct {
	client      redis.UniversalClient
	prefix      *string
	log         *slog.Logger
	minBackoff  time.Duration
	maxBackoff  time.Duration
	healthEvery time.Duration

	cancel    context.CancelFunc // cancels the context of both goroutines
	done      <-chan struct{}    // closed by Close
	wg        sync.WaitGroup     // the reader and the keepalive
	closeOnce sync.Once

	// cmd is a one-slot semaphore. Its holder is the only one to write
	// SUBSCRIBE or UNSUBSCRIBE or to switch sessions, so that the commands
	// for a channel reach Redis in the order their effects were recorded
	// in channels.
	cmd chan struct{}

	state    atomic.Int32 // a State
	lastRecv atomic.Int64 // UnixNano of the last reply on the current session
	pingSent atomic.Int64 // UnixNano of the keepalive PING awaiting a reply, or 0

	mu        sync.Mutex
	closed    bool
	ps        *redis.PubSub            // current session; nil between sessions
	breakErr  error                    // why another goroutine ended the session
	channels  map[string]*channelState // by Redis channel name
	downSince time.Time                // start of the current outage
	sessionUp bool                     // the current session got its ready marker
	// sent are the commands written on the current session whose replies
	// have not all arrived, oldest first. Redis answers in order, so each
	// reply, an error reply included, belongs to the first of them. Every
	// command is appended here, under the command semaphore, just before
	// it is written.
	sent []pendingCmd
}

// cmdKind is the kind of a command sent on a session.
type cmdKind uint8

const (
	cmdPing        cmdKind = iota // PING: one reply
	cmdMarker                     // PING readyMarker: one reply
	cmdSubscribe                  // SUBSCRIBE: one reply per channel
	cmdUnsubscribe                // UNSUBSCRIBE: one reply per channel
)

// pendingCmd is one command awaiting its replies.
type pendingCmd struct {
	kind     cmdKind
	channels []string
	left     int // replies still to come
}

// readyRound is one round of waiting for a channel to be subscribed: done
// is closed when it is, or when Redis refused it, err then saying why. A
// waiter keeps the round it started with, so a later round cannot change
// its outcome.
type readyRound struct {
	done chan struct{}
	err  error
}

func newReadyRound() *readyRound { return &readyRound{done: make(chan struct{})} }

// channelState is the state of one Redis channel. It is guarded by
// PubSub.mu.
type channelState struct {
	subs map[*subscriber]struct{}

	// pending counts the SUBSCRIBE and UNSUBSCRIBE commands sent for this
	// channel on the current session that Redis has not acknowledged yet;
	// lastSub tells whether the last one sent was SUBSCRIBE. Redis answers
	// in order, so the channel is subscribed once pending is 0 and lastSub
	// is true.
	pending int
	lastSub bool

	// ready is the current round of waiting for the channel to be
	// subscribed on the current session; isReady tells whether that
	// round has ended (subscribed, or refused). A new round starts when
	// the subscription is lost or asked for again.
	ready   *readyRound
	isReady bool
}

// release ends the channel's current ready round, with err if Redis
// refused the SUBSCRIBE.
func (ch *channelState) release(err error) {
	ch.ready.err = err
	close(ch.ready.done)
	ch.isReady = true
}

// refused tells whether Redis refused the channel's last SUBSCRIBE and no
// command for it is outstanding.
func (ch *channelState) refused() bool {
	return ch.isReady && ch.ready.err != nil && ch.pending == 0
}

// subscriber is one Subscribe call. Its mutex makes deliver and unsubscribe
// exclusive, so that deliver is never called after unsubscribe has returned.
type subscriber struct {
	mu      sync.Mutex
	deliver func([]byte)
	done    bool
}

// readyMarker is the payload of the PING sent after the SUBSCRIBE commands
// of a new session: its reply means every one of them was answered.
const readyMarker = "gocable:ready"

var _ cable.PubSub = (*PubSub)(nil)

// New returns a PubSub that subscribes and publishes through
// client, and starts connecting in the background (see State). client is
// typically a *redis.Client, or a failover client for Sentinel
// (redis.NewFailoverClient); it stays owned by the caller, who closes it
// after Close.
func New(client redis.UniversalClient, cfg Config) *PubSub {
	ctx, cancel := context.WithCancel(context.Background())
	r := &PubSub{
		client:      client,
		log:         cfg.Logger,
		minBackoff:  cfg.MinBackoff,
		maxBackoff:  cfg.MaxBackoff,
		healthEvery: cfg.HealthCheckInterval,
		cancel:      cancel,
		done:        ctx.Done(),
		cmd:         make(chan struct{}, 1),
		channels:    make(map[string]*channelState),
	}
	if cfg.ChannelPrefix != nil {
		p := *cfg.ChannelPrefix
		r.prefix = &p
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.minBackoff <= 0 {
		r.minBackoff = 100 * time.Millisecond
	}
	if r.maxBackoff <= 0 {
		r.maxBackoff = time.Second
	}
	r.maxBackoff = max(r.maxBackoff, r.minBackoff)
	if r.healthEvery == 0 {
		r.healthEvery = 3 * time.Second
	}
	r.wg.Add(1)
	go r.run(ctx) // ended by Close, which waits on r.wg
	if r.healthEvery > 0 {
		r.wg.Add(1)
		go r.keepalive(ctx) // ended by Close, which waits on r.wg
	}
	return r
}

// Channel returns the Redis channel name of stream: stream itself without a
// prefix, else the prefix, ":" and stream, as Rails names it
// (actioncable/lib/action_cable/subscription_adapter/channel_prefix.rb).
func (r *PubSub) Channel(stream string) string {
	if r.prefix == nil {
		return stream
	}
	return *r.prefix + ":" + stream
}

// State returns the state of the subscriber connection.
func (r *PubSub) State() State {
	return State(r.state.Load())
}

// Healthy reports whether the subscriber connection is up, that is whether
// broadcasts published now will be delivered to this process.
func (r *PubSub) Healthy() bool {
	return r.State() == StateUp
}

// Publish sends payload verbatim to the Redis channel of stream with
// PUBLISH, as Rails' broadcast does. It returns after Redis has received
// it, or with an error when Redis can't be reached before ctx is done.
func (r *PubSub) Publish(ctx context.Context, stream string, payload []byte) error {
	channel := r.Channel(stream)
	if r.isClosed() {
		return &opError{Pkg: "redispubsub", Op: "publish", Channel: channel, Kind: ErrClosed}
	}
	if r.State() == StateDown {
		// Fail at once, as Rails' broadcast raises at once: waiting out
		// go-redis's dial retries would hold the calling connection's
		// commands for seconds and publish them late, after the outage.
		return &opError{Pkg: "redispubsub", Op: "publish", Channel: channel, Kind: ErrUnavailable}
	}
	if err := r.client.Publish(ctx, channel, payload).Err(); err != nil {
		e := &opError{Pkg: "redispubsub", Op: "publish", Channel: channel, Err: err}
		if r.State() != StateUp {
			e.Kind = ErrUnavailable
		}
		return e
	}
	return nil
}

// Subscribe registers deliver for stream. It returns once Redis has
// acknowledged the SUBSCRIBE for the stream's channel, at once if the channel
// was already subscribed by an earlier call. During an outage it waits for
// Redis to come back, until ctx is done; its error then wraps ctx.Err() and,
// if Redis is down, ErrUnavailable. When Redis refuses the SUBSCRIBE
// (NOPERM from an ACL), the error wraps Redis' error reply.
//
// The returned unsubscribe function may be called any number of times;
// after it returns, deliver is not called again. When it removes the last
// subscriber of the channel, UNSUBSCRIBE is sent.
func (r *PubSub) Subscribe(ctx context.Context, stream string, deliver func(payload []byte)) (func(), error) {
	channel := r.Channel(stream)
	if err := ctx.Err(); err != nil {
		return nil, &opError{Pkg: "redispubsub", Op: "subscribe", Channel: channel, Err: err}
	}
	if err := r.lockCmd(ctx); err != nil {
		return nil, &opError{Pkg: "redispubsub", Op: "subscribe", Channel: channel, Err: err}
	}
	s := &subscriber{deliver: deliver}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.unlockCmd()
		return nil, &opError{Pkg: "redispubsub", Op: "subscribe", Channel: channel, Kind: ErrClosed}
	}
	ch := r.channels[channel]
	if ch == nil {
		ch = &channelState{subs: make(map[*subscriber]struct{}), ready: newReadyRound()}
		r.channels[channel] = ch
	}
	ch.subs[s] = struct{}{}
	ps := r.ps
	// A refused channel is asked for again: the ACL may have changed.
	again := ch.refused()
	send := (len(ch.subs) == 1 || again) && ps != nil
	if (len(ch.subs) == 1 && ch.isReady) || again {
		// Subscribing again while the UNSUBSCRIBE of the previous last
		// subscriber may still be unanswered, or after a refused SUBSCRIBE.
		ch.ready, ch.isReady = newReadyRound(), false
	}
	if send {
		ch.pending++
		ch.lastSub = true
		r.expect(cmdSubscribe, channel)
	}
	// Without a session, the next session subscribes to the channel.
	ready := ch.ready
	r.mu.Unlock()
	var err error
	if send {
		// The command is written now; its reply is read by the reader.
		// context.Background: a caller's short deadline must not become
		// the write deadline of the shared connection.
		err = ps.Subscribe(context.Background(), channel)
	}
	r.unlockCmd()
	if err != nil {
		// The session is replaced and the channel subscribed on the next
		// one; keep waiting.
		r.breakSession(ps, err)
	}

	unsubscribe := r.unsubscriber(channel, s)
	select {
	case <-ready.done:
		if ready.err != nil {
			unsubscribe()
			return nil, &opError{Pkg: "redispubsub", Op: "subscribe", Channel: channel, Err: ready.err}
		}
		return unsubscribe, nil
	case <-ctx.Done():
		unsubscribe()
		e := &opError{Pkg: "redispubsub", Op: "subscribe", Channel: channel, Err: ctx.Err()}
		if r.State() != StateUp {
			e.Kind = ErrUnavailable
		}
		return nil, e
	case <-r.done:
		unsubscribe()
		return nil, &opError{Pkg: "redispubsub", Op: "subscribe", Channel: channel, Kind: ErrClosed}
	}
}

// unsubscriber returns the unsubscribe function of s.
func (r *PubSub) unsubscriber(channel string, s *subscriber) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock() // waits for a deliver in progress
			s.done = true
			s.mu.Unlock()

			r.lockCmdWait()
			defer r.unlockCmd()
			r.mu.Lock()
			ch := r.channels[channel]
			if ch == nil {
				return // cannot happen: s keeps its channel in the map
			}
			delete(ch.subs, s)
			ps := r.ps
			send := len(ch.subs) == 0 && ps != nil
			if send {
				ch.pending++
				ch.lastSub = false
				r.expect(cmdUnsubscribe, channel)
			}
			if len(ch.subs) == 0 && ch.pending == 0 {
				delete(r.channels, channel)
			}
			r.mu.Unlock()
			if send {
				if err := ps.Unsubscribe(context.Background(), channel); err != nil {
					r.breakSession(ps, err)
				}
			}
		})
	}
}

// Close stops the PubSub: it closes the subscriber connection and waits
// for its goroutines to end. Subscribe calls in progress return
// ErrClosed; later Publish and Subscribe calls fail with it. Close does
// not close the client. It always returns nil; calling it again has no
// effect.
func (r *PubSub) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		ps := r.ps
		r.mu.Unlock()
		r.cancel()
		if ps != nil {
			_ = ps.Close() // ends the reader's Receive
		}
		r.wg.Wait()
		r.state.Store(int32(StateClosed))
	})
	return nil
}

func (r *PubSub) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// lockCmd takes the command semaphore, or fails when ctx is done first.
func (r *PubSub) lockCmd(ctx context.Context) error {
	select {
	case r.cmd <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lockCmdWait takes the command semaphore; it is held only while writing a
// command, so at most the client's WriteTimeout.
func (r *PubSub) lockCmdWait() { r.cmd <- struct{}{} }

func (r *PubSub) unlockCmd() { <-r.cmd }
