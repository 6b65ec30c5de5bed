package cable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	// ErrRedisClosed is returned by RedisPubSub methods after Close.
	ErrRedisClosed = errors.New("cable: redis pubsub closed")

	// ErrRedisUnavailable is wrapped into the errors of Publish and
	// Subscribe when they fail while the subscriber connection to Redis is
	// down, so that callers can tell an outage from a bad request with
	// errors.Is.
	ErrRedisUnavailable = errors.New("cable: redis unavailable")
)

// redisOpError is the error of a RedisPubSub operation on a channel: its
// message reads `cable: redis <op> "<channel>": <kind>: <err>`, and it wraps
// both kind (a sentinel such as ErrRedisUnavailable, or nil) and err.
type redisOpError struct {
	op, channel string
	kind, err   error
}

func (e *redisOpError) Error() string {
	var b strings.Builder
	b.WriteString("cable: redis ")
	b.WriteString(e.op)
	b.WriteString(" ")
	b.WriteString(strconv.Quote(e.channel))
	if e.kind != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.kind.Error(), "cable: "))
	}
	if e.err != nil {
		b.WriteString(": ")
		b.WriteString(e.err.Error())
	}
	return b.String()
}

func (e *redisOpError) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

// RedisConfig configures a RedisPubSub. The zero value is a valid
// configuration: no channel prefix, slog.Default, and the backoff and health
// check defaults below.
type RedisConfig struct {
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

// RedisState is the state of a RedisPubSub's subscriber connection, as
// returned by State. Its zero value is RedisConnecting.
type RedisState int32

const (
	// RedisConnecting means the first connection has not been made yet.
	RedisConnecting RedisState = iota
	// RedisUp means the subscriber connection is established and every
	// stream in use has been subscribed on it.
	RedisUp
	// RedisDown means the connection was lost or could not be made; it is
	// being retried with backoff.
	RedisDown
	// RedisClosed means Close was called.
	RedisClosed
)

// String returns "connecting", "up", "down" or "closed".
func (s RedisState) String() string {
	switch s {
	case RedisConnecting:
		return "connecting"
	case RedisUp:
		return "up"
	case RedisDown:
		return "down"
	case RedisClosed:
		return "closed"
	}
	return fmt.Sprintf("RedisState(%d)", int32(s))
}

// RedisPubSub is a PubSub over Redis PUBLISH and SUBSCRIBE that is
// wire-compatible with Rails' redis subscription adapter
// (actioncable/lib/action_cable/subscription_adapter/redis.rb): with the same
// channel_prefix, a broadcast made by a Rails process
// (ActionCable.server.broadcast, remote_connections ... disconnect) reaches
// the subscribers of a RedisPubSub, and a Publish reaches the Rails
// subscribers. Payloads are published and delivered verbatim, as the JSON
// text that ActionCable.server.broadcast publishes
// (actioncable/lib/action_cable/server/broadcasting.rb).
//
// A RedisPubSub uses one subscriber connection, whatever the number of
// streams and subscribers: the first Subscribe of a stream sends SUBSCRIBE and
// the last unsubscribe sends UNSUBSCRIBE, as Rails' SubscriberMap does
// (actioncable/lib/action_cable/subscription_adapter/subscriber_map.rb).
// Publish uses the client's connection pool.
//
// # Outages
//
// When the subscriber connection fails, RedisPubSub reconnects, forever, with
// jittered exponential backoff (see RedisConfig), and subscribes again to
// every stream that still has subscribers, as Rails 7.1+ does with
// reconnect_attempts (Rails 6.1's listener thread instead raises
// Redis::ConnectionError, which abort_on_exception turns into the end of the
// process: observed with 6.1.7.10). The loss is logged once, at Warn,
// and the recovery once, at Info; the attempts in between are logged at
// Debug. Delivery is at most once, as in Rails: messages published while
// the connection is down are lost, and nothing is replayed. State and
// Healthy report the connection for health checks.
//
// During an outage Publish fails (it honours its ctx, and the error wraps
// ErrRedisUnavailable), and Subscribe waits until Redis is back and has
// acknowledged the subscription, or until its ctx is done; callers should
// give it a deadline. This mirrors Rails, which confirms a subscription
// only on Redis' acknowledgement, while the official JavaScript client
// resends the subscribe command until it is confirmed.
//
// # Goroutines
//
// NewRedisPubSub starts two goroutines, both owned by the RedisPubSub and
// both ended by Close, which waits for them: the reader, the only one to
// read from the subscriber connection, which connects, reconnects and calls
// every deliver function; and the keepalive, which sends PINGs (it is not
// started when HealthCheckInterval is negative). Because a single goroutine
// delivers, calls to deliver never overlap, for any stream; a deliver that
// blocks delays every stream. A panic in deliver is recovered and logged.
// The unsubscribe function returned by Subscribe must not be called from
// within a deliver function (it waits for deliver to return).
//
// The zero value is not usable; create a RedisPubSub with NewRedisPubSub.
type RedisPubSub struct {
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

	state    atomic.Int32 // a RedisState
	lastRecv atomic.Int64 // UnixNano of the last reply on the current session
	pingSent atomic.Int64 // UnixNano of the keepalive PING awaiting a reply, or 0

	mu        sync.Mutex
	closed    bool
	ps        *redis.PubSub            // current session; nil between sessions
	breakErr  error                    // why another goroutine ended the session
	channels  map[string]*redisChannel // by Redis channel name
	downSince time.Time                // start of the current outage
	sessionUp bool                     // the current session got its ready marker
	// sent are the commands written on the current session whose replies
	// have not all arrived, oldest first. Redis answers in order, so each
	// reply, an error reply included, belongs to the first of them. Every
	// command is appended here, under the command semaphore, just before
	// it is written.
	sent []redisCmd
}

// redisCmdKind is the kind of a command sent on a session.
type redisCmdKind uint8

const (
	cmdPing        redisCmdKind = iota // PING: one reply
	cmdMarker                          // PING readyMarker: one reply
	cmdSubscribe                       // SUBSCRIBE: one reply per channel
	cmdUnsubscribe                     // UNSUBSCRIBE: one reply per channel
)

// redisCmd is one command awaiting its replies.
type redisCmd struct {
	kind     redisCmdKind
	channels []string
	left     int // replies still to come
}

// redisReady is one round of waiting for a channel to be subscribed: done
// is closed when it is, or when Redis refused it, err then saying why. A
// waiter keeps the round it started with, so a later round cannot change
// its outcome.
type redisReady struct {
	done chan struct{}
	err  error
}

func newRedisReady() *redisReady { return &redisReady{done: make(chan struct{})} }

// redisChannel is the state of one Redis channel. It is guarded by
// RedisPubSub.mu.
type redisChannel struct {
	subs map[*redisSub]struct{}

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
	ready   *redisReady
	isReady bool
}

// release ends the channel's current ready round, with err if Redis
// refused the SUBSCRIBE.
func (ch *redisChannel) release(err error) {
	ch.ready.err = err
	close(ch.ready.done)
	ch.isReady = true
}

// refused tells whether Redis refused the channel's last SUBSCRIBE and no
// command for it is outstanding.
func (ch *redisChannel) refused() bool {
	return ch.isReady && ch.ready.err != nil && ch.pending == 0
}

// redisSub is one Subscribe call. Its mutex makes deliver and unsubscribe
// exclusive, so that deliver is never called after unsubscribe has returned.
type redisSub struct {
	mu      sync.Mutex
	deliver func([]byte)
	done    bool
}

// readyMarker is the payload of the PING sent after the SUBSCRIBE commands
// of a new session: its reply means every one of them was answered.
const readyMarker = "gocable:ready"

var _ PubSub = (*RedisPubSub)(nil)

// NewRedisPubSub returns a RedisPubSub that subscribes and publishes through
// client, and starts connecting in the background (see State). client is
// typically a *redis.Client, or a failover client for Sentinel
// (redis.NewFailoverClient); it stays owned by the caller, who closes it
// after Close.
func NewRedisPubSub(client redis.UniversalClient, cfg RedisConfig) *RedisPubSub {
	ctx, cancel := context.WithCancel(context.Background())
	r := &RedisPubSub{
		client:      client,
		log:         cfg.Logger,
		minBackoff:  cfg.MinBackoff,
		maxBackoff:  cfg.MaxBackoff,
		healthEvery: cfg.HealthCheckInterval,
		cancel:      cancel,
		done:        ctx.Done(),
		cmd:         make(chan struct{}, 1),
		channels:    make(map[string]*redisChannel),
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
func (r *RedisPubSub) Channel(stream string) string {
	if r.prefix == nil {
		return stream
	}
	return *r.prefix + ":" + stream
}

// State returns the state of the subscriber connection.
func (r *RedisPubSub) State() RedisState {
	return RedisState(r.state.Load())
}

// Healthy reports whether the subscriber connection is up, that is whether
// broadcasts published now will be delivered to this process.
func (r *RedisPubSub) Healthy() bool {
	return r.State() == RedisUp
}

// Publish sends payload verbatim to the Redis channel of stream with
// PUBLISH, as Rails' broadcast does. It returns after Redis has received
// it, or with an error when Redis can't be reached before ctx is done.
func (r *RedisPubSub) Publish(ctx context.Context, stream string, payload []byte) error {
	channel := r.Channel(stream)
	if r.isClosed() {
		return &redisOpError{op: "publish", channel: channel, kind: ErrRedisClosed}
	}
	if r.State() == RedisDown {
		// Fail at once, as Rails' broadcast raises at once: waiting out
		// go-redis's dial retries would hold the calling connection's
		// commands for seconds and publish them late, after the outage.
		return &redisOpError{op: "publish", channel: channel, kind: ErrRedisUnavailable}
	}
	if err := r.client.Publish(ctx, channel, payload).Err(); err != nil {
		e := &redisOpError{op: "publish", channel: channel, err: err}
		if r.State() != RedisUp {
			e.kind = ErrRedisUnavailable
		}
		return e
	}
	return nil
}

// Subscribe registers deliver for stream. It returns once Redis has
// acknowledged the SUBSCRIBE for the stream's channel, at once if the channel
// was already subscribed by an earlier call. During an outage it waits for
// Redis to come back, until ctx is done; its error then wraps ctx.Err() and,
// if Redis is down, ErrRedisUnavailable. When Redis refuses the SUBSCRIBE
// (NOPERM from an ACL), the error wraps Redis' error reply.
//
// The returned unsubscribe function may be called any number of times;
// after it returns, deliver is not called again. When it removes the last
// subscriber of the channel, UNSUBSCRIBE is sent.
func (r *RedisPubSub) Subscribe(ctx context.Context, stream string, deliver func(payload []byte)) (func(), error) {
	channel := r.Channel(stream)
	if err := ctx.Err(); err != nil {
		return nil, &redisOpError{op: "subscribe", channel: channel, err: err}
	}
	if err := r.lockCmd(ctx); err != nil {
		return nil, &redisOpError{op: "subscribe", channel: channel, err: err}
	}
	s := &redisSub{deliver: deliver}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.unlockCmd()
		return nil, &redisOpError{op: "subscribe", channel: channel, kind: ErrRedisClosed}
	}
	ch := r.channels[channel]
	if ch == nil {
		ch = &redisChannel{subs: make(map[*redisSub]struct{}), ready: newRedisReady()}
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
		ch.ready, ch.isReady = newRedisReady(), false
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
			return nil, &redisOpError{op: "subscribe", channel: channel, err: ready.err}
		}
		return unsubscribe, nil
	case <-ctx.Done():
		unsubscribe()
		e := &redisOpError{op: "subscribe", channel: channel, err: ctx.Err()}
		if r.State() != RedisUp {
			e.kind = ErrRedisUnavailable
		}
		return nil, e
	case <-r.done:
		unsubscribe()
		return nil, &redisOpError{op: "subscribe", channel: channel, kind: ErrRedisClosed}
	}
}

// unsubscriber returns the unsubscribe function of s.
func (r *RedisPubSub) unsubscriber(channel string, s *redisSub) func() {
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

// Close stops the RedisPubSub: it closes the subscriber connection and waits
// for its goroutines to end. Subscribe calls in progress return
// ErrRedisClosed; later Publish and Subscribe calls fail with it. Close does
// not close the client. It always returns nil; calling it again has no
// effect.
func (r *RedisPubSub) Close() error {
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
		r.state.Store(int32(RedisClosed))
	})
	return nil
}

func (r *RedisPubSub) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// lockCmd takes the command semaphore, or fails when ctx is done first.
func (r *RedisPubSub) lockCmd(ctx context.Context) error {
	select {
	case r.cmd <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lockCmdWait takes the command semaphore; it is held only while writing a
// command, so at most the client's WriteTimeout.
func (r *RedisPubSub) lockCmdWait() { r.cmd <- struct{}{} }

func (r *RedisPubSub) unlockCmd() { <-r.cmd }

// run is the reader goroutine: it connects, reads and dispatches until the
// session fails, then reconnects after a backoff, until ctx is cancelled by
// Close.
func (r *RedisPubSub) run(ctx context.Context) {
	defer r.wg.Done()
	attempt := 0
	for ctx.Err() == nil {
		ps, err := r.connect(ctx)
		if ps != nil {
			var up bool
			if err == nil {
				up, err = r.serve(ps)
			}
			err = r.endSession(ps, err)
			if up {
				attempt = 0
			}
		}
		if ctx.Err() != nil {
			return
		}
		r.markDown(err, attempt)
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.backoff(attempt)):
		}
		attempt++
	}
}

// backoff returns the jittered delay before reconnection attempt n (from 0).
func (r *RedisPubSub) backoff(n int) time.Duration {
	d := r.maxBackoff
	if n < 30 {
		d = min(r.minBackoff<<n, r.maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// connect starts a session: it dials, then subscribes to every channel that
// has subscribers, then sends the ready marker. A non-nil *redis.PubSub is
// the new current session, which the caller must end with endSession, even
// if err is not nil.
func (r *RedisPubSub) connect(ctx context.Context) (*redis.PubSub, error) {
	// Subscribe without channels does no I/O; the PING dials, authenticates
	// and selects the database.
	ps := r.client.Subscribe(ctx)
	r.mu.Lock()
	r.sent = append(r.sent[:0], redisCmd{kind: cmdPing, left: 1})
	r.mu.Unlock()
	if err := ps.Ping(ctx); err != nil {
		_ = ps.Close()
		return nil, err
	}
	if err := r.lockCmd(ctx); err != nil {
		_ = ps.Close()
		return nil, err
	}
	defer r.unlockCmd()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		_ = ps.Close()
		return nil, ErrRedisClosed
	}
	names := make([]string, 0, len(r.channels))
	for name, ch := range r.channels {
		if len(ch.subs) == 0 {
			delete(r.channels, name)
			continue
		}
		names = append(names, name)
		ch.pending, ch.lastSub = 1, true
	}
	if len(names) > 0 {
		r.expect(cmdSubscribe, names...)
	}
	r.expect(cmdMarker)
	r.ps = ps
	r.breakErr = nil
	r.lastRecv.Store(time.Now().UnixNano())
	r.pingSent.Store(0)
	r.mu.Unlock()
	if len(names) > 0 {
		if err := ps.Subscribe(context.Background(), names...); err != nil {
			return ps, err
		}
	}
	return ps, ps.Ping(context.Background(), readyMarker)
}

// serve reads the replies and messages of a session until it fails. up
// tells whether the session got as far as the ready marker.
func (r *RedisPubSub) serve(ps *redis.PubSub) (up bool, err error) {
	var buf []*redisSub
	for {
		msg, err := ps.Receive(context.Background())
		if err != nil {
			var rerr redis.Error
			if !errors.As(err, &rerr) {
				return up, err
			}
			// An error reply: the connection itself is fine.
			r.lastRecv.Store(time.Now().UnixNano())
			r.onError(ps, rerr)
			continue
		}
		r.lastRecv.Store(time.Now().UnixNano())
		switch m := msg.(type) {
		case *redis.Message:
			buf = r.dispatch(m, buf)
		case *redis.Subscription:
			r.ack(ps, m)
		case *redis.Pong:
			if r.pong(ps) && !up {
				up = true
				r.markUp()
			}
		}
	}
}

// dispatch calls the deliver functions of m's channel; buf is scratch space
// for the list of subscribers, returned for reuse.
func (r *RedisPubSub) dispatch(m *redis.Message, buf []*redisSub) []*redisSub {
	buf = buf[:0]
	r.mu.Lock()
	if ch := r.channels[m.Channel]; ch != nil {
		for s := range ch.subs {
			buf = append(buf, s)
		}
	}
	r.mu.Unlock()
	if len(buf) == 0 {
		return buf
	}
	payload := []byte(m.Payload)
	for _, s := range buf {
		r.deliver(s, m.Channel, payload)
	}
	clear(buf)
	return buf
}

// deliver calls s.deliver unless s is unsubscribed, recovering a panic.
func (r *RedisPubSub) deliver(s *redisSub, channel string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("cable: redis pubsub deliver panicked", "channel", channel, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	s.deliver(payload)
}

// expect records, with r.mu and the command semaphore held, a command about
// to be written on the current session.
func (r *RedisPubSub) expect(kind redisCmdKind, channels ...string) {
	left := len(channels)
	if kind == cmdPing || kind == cmdMarker {
		left = 1
	}
	r.sent = append(r.sent, redisCmd{kind: kind, channels: channels, left: left})
}

// reply takes one reply of the oldest command awaiting replies, which must
// be of kind and, for SUBSCRIBE and UNSUBSCRIBE, name channel. It reports
// false if the reply does not match: then the session is out of step with
// what was sent (go-redis re-sending commands of its own, say), and the
// caller breaks it. r.mu must be held.
func (r *RedisPubSub) reply(kind redisCmdKind, channel string) (redisCmd, bool) {
	if len(r.sent) == 0 {
		return redisCmd{}, false
	}
	c := &r.sent[0]
	ok := c.kind == kind || (kind == cmdPing && c.kind == cmdMarker)
	if ok && (kind == cmdSubscribe || kind == cmdUnsubscribe) {
		// Redis answers a command's channels one by one, in order.
		ok = c.channels[len(c.channels)-c.left] == channel
	}
	if !ok {
		return *c, false
	}
	c.left--
	got := *c
	if c.left == 0 {
		r.sent = r.sent[1:]
	}
	return got, true
}

// pong takes a PONG; it reports whether it answered the last ready marker
// sent, so that the session is now up.
func (r *RedisPubSub) pong(ps *redis.PubSub) bool {
	r.mu.Lock()
	c, ok := r.reply(cmdPing, "")
	last := ok && c.kind == cmdMarker && !slices.ContainsFunc(r.sent, func(c redisCmd) bool { return c.kind == cmdMarker })
	r.mu.Unlock()
	if !ok {
		r.breakSession(ps, errors.New("cable: redis pubsub: unexpected PONG"))
	}
	return last
}

// onError handles an error reply. NOPERM to a SUBSCRIBE is an ACL that
// forbids the channel: refuse deals with it and the session goes on. Any
// other error (LOADING while Redis loads its data, BUSY during a script, an
// error to a PING) ends the session, which is then retried with backoff.
func (r *RedisPubSub) onError(ps *redis.PubSub, rerr redis.Error) {
	r.mu.Lock()
	var c redisCmd
	if len(r.sent) > 0 {
		c = r.sent[0]
		r.sent = r.sent[1:]
	}
	r.mu.Unlock()
	if c.kind == cmdSubscribe && c.left > 0 && strings.HasPrefix(rerr.Error(), "NOPERM") {
		r.refuse(ps, c.channels, rerr)
		return
	}
	r.breakSession(ps, fmt.Errorf("cable: redis pubsub: error reply: %w", rerr))
}

// ack records Redis' reply to a SUBSCRIBE or UNSUBSCRIBE of one channel.
func (r *RedisPubSub) ack(ps *redis.PubSub, m *redis.Subscription) {
	kind := cmdSubscribe
	switch m.Kind {
	case "subscribe":
	case "unsubscribe":
		kind = cmdUnsubscribe
	default:
		return
	}
	r.mu.Lock()
	_, ok := r.reply(kind, m.Channel)
	if ok {
		r.settle(m.Channel, nil)
	}
	r.mu.Unlock()
	if !ok {
		r.breakSession(ps, fmt.Errorf("cable: redis pubsub: unexpected %s reply for %s", m.Kind, m.Channel))
	}
}

// settle counts one answered command of channel name; refusal, if not nil,
// is why Redis refused it. r.mu must be held.
func (r *RedisPubSub) settle(name string, refusal error) {
	ch := r.channels[name]
	if ch == nil || ch.pending == 0 {
		return
	}
	ch.pending--
	if ch.pending > 0 {
		return
	}
	switch {
	case ch.lastSub && !ch.isReady:
		// Before the session's ready marker, markUp releases the
		// waiters, so that a Subscribe that returned finds State up.
		if refusal != nil || r.sessionUp {
			ch.release(refusal)
		}
	case !ch.lastSub && len(ch.subs) == 0:
		delete(r.channels, name)
	}
}

// refuse handles NOPERM to a SUBSCRIBE of channels: an ACL forbids one of
// them. A SUBSCRIBE of one channel fails that channel: the Subscribe calls
// waiting for it fail with the error instead of waiting forever. Redis
// refuses a SUBSCRIBE of several channels (a session's resubscription)
// whole, so those are sent again one by one, and only the forbidden ones
// fail.
func (r *RedisPubSub) refuse(ps *redis.PubSub, channels []string, rerr redis.Error) {
	if len(channels) > 1 {
		r.log.Warn("cable: redis refused a SUBSCRIBE of several channels; subscribing them one by one", "channels", len(channels), "err", rerr)
		r.resubscribeEach(ps, channels)
		return
	}
	name := channels[0]
	// Logged before the waiters are released, so that their error
	// always follows the log line.
	r.log.Error("cable: redis refused SUBSCRIBE; the stream gets no broadcasts", "channel", name, "err", rerr)
	r.mu.Lock()
	r.settle(name, fmt.Errorf("redis refused SUBSCRIBE: %w", rerr))
	r.mu.Unlock()
}

// resubscribeEach sends a SUBSCRIBE of its own for each of names still
// wanted on session ps, after Redis refused them together, then a ready
// marker: the session is up only once they are answered.
func (r *RedisPubSub) resubscribeEach(ps *redis.PubSub, names []string) {
	r.lockCmdWait()
	defer r.unlockCmd()
	for _, name := range names {
		r.mu.Lock()
		if r.ps != ps {
			r.mu.Unlock()
			return
		}
		ch := r.channels[name]
		if ch == nil || ch.pending == 0 {
			r.mu.Unlock()
			continue
		}
		ch.pending-- // the refused command
		if len(ch.subs) == 0 || !ch.lastSub {
			// Unsubscribed meanwhile; its UNSUBSCRIBE, if any, is
			// still counted.
			if ch.pending == 0 && len(ch.subs) == 0 {
				delete(r.channels, name)
			}
			r.mu.Unlock()
			continue
		}
		ch.pending++
		r.expect(cmdSubscribe, name)
		r.mu.Unlock()
		if err := ps.Subscribe(context.Background(), name); err != nil {
			r.breakSession(ps, err)
			return
		}
	}
	r.mu.Lock()
	current := r.ps == ps
	if current {
		r.expect(cmdMarker)
	}
	r.mu.Unlock()
	if current {
		if err := ps.Ping(context.Background(), readyMarker); err != nil {
			r.breakSession(ps, err)
		}
	}
}

// breakSession ends session ps because of err, if it is still the current
// one: closing it makes the reader's Receive fail.
func (r *RedisPubSub) breakSession(ps *redis.PubSub, err error) {
	r.mu.Lock()
	current := r.ps == ps
	if current && r.breakErr == nil {
		r.breakErr = err
	}
	r.mu.Unlock()
	if current {
		_ = ps.Close()
	}
}

// endSession closes session ps and forgets what was subscribed on it. It
// returns the reason the session ended: the error of whoever broke it, or
// else err.
func (r *RedisPubSub) endSession(ps *redis.PubSub, err error) error {
	r.lockCmdWait()
	r.mu.Lock()
	if r.breakErr != nil {
		err = r.breakErr
		r.breakErr = nil
	}
	r.ps = nil
	r.sessionUp = false
	r.sent = r.sent[:0]
	for name, ch := range r.channels {
		ch.pending, ch.lastSub = 0, false
		switch {
		case len(ch.subs) == 0:
			delete(r.channels, name)
		case ch.isReady:
			ch.ready, ch.isReady = newRedisReady(), false
		}
	}
	r.mu.Unlock()
	r.unlockCmd()
	_ = ps.Close()
	return err
}

// markUp records that a session is ready, releases the Subscribe calls
// whose channel Redis acknowledged before the ready marker, and logs the
// recovery.
func (r *RedisPubSub) markUp() {
	r.mu.Lock()
	prev := RedisState(r.state.Swap(int32(RedisUp)))
	r.sessionUp = true
	for _, ch := range r.channels {
		if ch.pending == 0 && ch.lastSub && !ch.isReady {
			ch.release(nil)
		}
	}
	n := len(r.channels)
	since := r.downSince
	r.mu.Unlock()
	switch prev {
	case RedisConnecting:
		r.log.Info("cable: redis pubsub connected", "channels", n)
	case RedisDown:
		r.log.Info("cable: redis pubsub reconnected", "outage", time.Since(since).Round(time.Millisecond), "channels", n)
	}
}

// markDown records a failed session or connection attempt. The first
// failure after being up (or of the first connection) is logged at Warn;
// the following attempts at Debug.
func (r *RedisPubSub) markDown(err error, attempt int) {
	switch RedisState(r.state.Swap(int32(RedisDown))) {
	case RedisUp:
		r.mu.Lock()
		r.downSince = time.Now()
		r.mu.Unlock()
		r.log.Warn("cable: redis pubsub connection lost; reconnecting; broadcasts are lost until it is back", "err", err)
	case RedisConnecting:
		r.mu.Lock()
		r.downSince = time.Now()
		r.mu.Unlock()
		r.log.Warn("cable: redis pubsub cannot connect; retrying", "err", err)
	default:
		r.log.Debug("cable: redis pubsub reconnection failed", "attempt", attempt, "err", err)
	}
}

// keepalive is the keepalive goroutine: it PINGs a silent session and
// breaks a session whose PING stays unanswered, until ctx is cancelled by
// Close.
func (r *RedisPubSub) keepalive(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(max(r.healthEvery/2, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		ps := r.ps
		r.mu.Unlock()
		if ps == nil {
			continue
		}
		now := time.Now()
		last := time.Unix(0, r.lastRecv.Load())
		sent := r.pingSent.Load()
		switch {
		case sent != 0 && time.Unix(0, sent).After(last):
			if now.Sub(time.Unix(0, sent)) >= r.healthEvery {
				r.breakSession(ps, fmt.Errorf("cable: redis did not answer PING within %v", r.healthEvery))
			}
		case now.Sub(last) >= r.healthEvery:
			r.ping(ctx, ps, now)
		}
	}
}

// ping sends the keepalive PING on session ps, recorded with the commands
// awaiting replies.
func (r *RedisPubSub) ping(ctx context.Context, ps *redis.PubSub, now time.Time) {
	if err := r.lockCmd(ctx); err != nil {
		return // Close
	}
	defer r.unlockCmd()
	r.mu.Lock()
	current := r.ps == ps
	if current {
		r.expect(cmdPing)
	}
	r.mu.Unlock()
	if !current {
		return
	}
	r.pingSent.Store(now.UnixNano())
	if err := ps.Ping(ctx); err != nil {
		r.breakSession(ps, err)
	}
}
