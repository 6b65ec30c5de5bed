package cable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Channel is the Go form of an ActionCable::Channel::Base subclass
// (actioncable/lib/action_cable/channel/base.rb). A new value is made for
// every subscription by the function given to Server.Handle, and every call
// for one connection (its commands and its timers) runs in order, one at a
// time, so implementations need no locks for their own state.
type Channel interface {
	// Subscribed runs when the client subscribes, like Rails' subscribed.
	// It usually calls StreamFrom. Returning ErrRejected (or calling
	// Subscription.Reject) rejects the subscription; any other error also
	// rejects it and is logged. Otherwise the server confirms the
	// subscription after Subscribed returns, so frames transmitted inside
	// Subscribed reach the client before the confirmation.
	Subscribed(ctx context.Context, s *Subscription) error

	// Unsubscribed runs when the client unsubscribes, when the connection
	// closes, and after a rejection, like Rails' unsubscribed. The server
	// stops the subscription's streams and timers after it returns.
	Unsubscribed(ctx context.Context, s *Subscription)

	// Perform runs an action the client requested with perform(action, data)
	// or send(data). action is data's "action" key, or "receive" when that
	// key is missing, null or empty (channel/base.rb, perform_action). data
	// is the whole JSON object the client sent, "action" key included.
	// Return ErrUnknownAction for an action the channel does not have.
	Perform(ctx context.Context, s *Subscription, action string, data json.RawMessage) error
}

// ChannelFunc adapts a function of the Subscribed shape into a Channel
// with no actions and nothing to do on unsubscribe, for channels that only
// stream.
type ChannelFunc func(ctx context.Context, s *Subscription) error

// Subscribed calls f(ctx, s).
func (f ChannelFunc) Subscribed(ctx context.Context, s *Subscription) error { return f(ctx, s) }

// Unsubscribed does nothing.
func (f ChannelFunc) Unsubscribed(ctx context.Context, s *Subscription) {}

// Perform returns ErrUnknownAction.
func (f ChannelFunc) Perform(ctx context.Context, s *Subscription, action string, data json.RawMessage) error {
	return ErrUnknownAction
}

// Subscription is one subscribed identifier on one connection: the
// receiver of a channel's helpers (params, stream_from, transmit, reject,
// periodically).
//
// Its methods must be called from the channel's hooks or timers, which run
// on the connection's command goroutine; Transmit, Identifier, Params,
// Param, Identity, Channel, Conn, Broadcast and BroadcastTo are also safe
// from any goroutine.
type Subscription struct {
	conn    *Conn
	id      string // the identifier exactly as the client sent it
	channel string // its "channel" key
	ch      Channel

	streams   []*hubStream // usually one or two, so a slice beats a map
	timers    []*timer
	rejected  bool
	active    bool // subscribed and not yet unsubscribed
	removed   bool
	deferred  bool // DeferConfirmation was called
	confirmed bool // confirm_subscription was queued
}

// Identifier returns the identifier exactly as the client sent it; it is
// echoed back byte for byte and compared by exact string equality, as in
// Rails (connection/subscriptions.rb).
func (s *Subscription) Identifier() string { return s.id }

// key returns the identifier, for keyedList.
func (s *Subscription) key() string { return s.id }

// Channel returns the identifier's "channel" key, e.g. "ChatChannel".
func (s *Subscription) Channel() string { return s.channel }

// Params returns the identifier's JSON object, "channel" key included,
// like Rails' params.
func (s *Subscription) Params() json.RawMessage { return json.RawMessage(s.id) }

// DecodeParams decodes the identifier's JSON object into v, like reading
// Rails' params. It uses encoding/json, so a struct field also takes a key
// that differs only in case when no key matches exactly, where Rails'
// params[:room] is exact; use Param, or Param(key).Decode, when that
// matters.
func (s *Subscription) DecodeParams(v any) error {
	if err := json.Unmarshal([]byte(s.id), v); err != nil {
		return fmt.Errorf("cable: params of %s: %w", s.id, err)
	}
	return nil
}

// Conn returns the connection the subscription belongs to.
func (s *Subscription) Conn() *Conn { return s.conn }

// Reject marks the subscription as rejected, like Rails' reject: when
// Subscribed returns, the client gets reject_subscription instead of the
// confirmation. Code after Reject still runs, as in Rails.
func (s *Subscription) Reject() { s.rejected = true }

// DeferConfirmation postpones the confirmation of a subscription that is
// not ready when Subscribed returns, like Rails'
// defer_subscription_confirmation! (channel/base.rb). It returns the
// function that sends the confirmation, like ensure_confirmation_sent; it
// may be called from any goroutine, and only its first call counts. It
// does nothing if the subscription was rejected or has ended. Meanwhile
// the client's repeated subscribes are ignored, as in Rails.
func (s *Subscription) DeferConfirmation() (confirm func()) {
	s.deferred = true
	var once sync.Once
	return func() {
		once.Do(func() {
			s.conn.enqueueTask(func(ctx context.Context) { s.confirm() })
		})
	}
}

// confirm queues confirm_subscription once, on the command goroutine.
func (s *Subscription) confirm() {
	if !s.active || s.confirmed || s.rejected {
		return
	}
	s.confirmed = true
	s.conn.send(outFrame{data: typeFrame(s.id, "confirm_subscription")})
}

// Transmit sends msg to this subscriber only, as
// {"identifier":<id>,"message":<msg>} (channel/base.rb, transmit). msg is
// encoded as in Server.Broadcast.
func (s *Subscription) Transmit(ctx context.Context, msg any) error {
	payload, err := encodeMessage(msg)
	if err != nil {
		return fmt.Errorf("cable: transmit: %w", err)
	}
	if !s.conn.send(outFrame{data: dataFrame(s.id, payload)}) {
		return ErrConnClosed
	}
	return nil
}

// StreamFrom subscribes to a broadcasting, like Rails' stream_from: every
// message broadcast to stream, on any node, is transmitted to this
// subscriber. It returns once the pub/sub has confirmed the stream, so a
// subscription is confirmed only when it can receive. Streaming the same
// name twice is a no-op (Rails would deliver every message twice).
func (s *Subscription) StreamFrom(ctx context.Context, stream string) error {
	if s.removed {
		// Rails 7.2.3+ ignores stream_from after unsubscribe
		// (channel/streams.rb, 2fe62541b15).
		return nil
	}
	if s.stream(stream) >= 0 {
		return nil
	}
	st, err := s.conn.srv.hub.add(ctx, stream, s)
	if err != nil {
		return fmt.Errorf("cable: stream_from %q: %w", stream, err)
	}
	s.streams = append(s.streams, st)
	return nil
}

// stream returns the index of stream in s.streams, or -1.
func (s *Subscription) stream(name string) int {
	for i, st := range s.streams {
		if st.name == name {
			return i
		}
	}
	return -1
}

// StreamFor streams the broadcasting Rails names for this channel and
// model, like stream_for: see BroadcastingFor.
func (s *Subscription) StreamFor(ctx context.Context, parts ...any) error {
	name, err := BroadcastingFor(s.channel, parts...)
	if err != nil {
		return err
	}
	return s.StreamFrom(ctx, name)
}

// StopStream stops one broadcasting, like stop_stream_from.
func (s *Subscription) StopStream(ctx context.Context, stream string) error {
	i := s.stream(stream)
	if i < 0 {
		return nil
	}
	st := s.streams[i]
	s.streams = append(s.streams[:i], s.streams[i+1:]...)
	s.conn.srv.hub.remove(st, s)
	return nil
}

// StopStreamFor stops the broadcasting of StreamFor, like stop_stream_for.
func (s *Subscription) StopStreamFor(ctx context.Context, parts ...any) error {
	name, err := BroadcastingFor(s.channel, parts...)
	if err != nil {
		return err
	}
	return s.StopStream(ctx, name)
}

// StopAllStreams stops every broadcasting, like stop_all_streams.
func (s *Subscription) StopAllStreams(ctx context.Context) {
	streams := s.streams
	s.streams = nil
	for _, st := range streams {
		s.conn.srv.hub.remove(st, s)
	}
}

// Streams returns the names of the broadcastings the subscription streams.
func (s *Subscription) Streams() []string {
	names := make([]string, 0, len(s.streams))
	for _, st := range s.streams {
		names = append(names, st.name)
	}
	return names
}

var errBadInterval = errors.New("cable: periodically: interval must be positive")

// Periodically runs fn every interval while the subscription lives, like
// Rails' periodically (channel/periodic_timers.rb). Ticks run on the
// connection's command goroutine, in order with its commands; timers start
// once the subscription is confirmed and stop when it ends. A non-positive
// interval is an error, as Rails raises ArgumentError.
func (s *Subscription) Periodically(every time.Duration, fn func(ctx context.Context)) error {
	if every <= 0 {
		return errBadInterval
	}
	t := &timer{sub: s, every: every, fn: fn}
	s.timers = append(s.timers, t)
	if s.active {
		t.start()
	}
	return nil
}

// timer is one periodically; its ticks are queued on the connection's
// command goroutine.
type timer struct {
	sub     *Subscription
	every   time.Duration
	fn      func(ctx context.Context)
	t       *time.Timer
	stopped bool // read and written on the command goroutine only
}

func (t *timer) start() {
	// The runtime owns the AfterFunc goroutine; it only queues the tick.
	t.t = time.AfterFunc(t.every, func() {
		t.sub.conn.enqueueTask(func(ctx context.Context) {
			if t.stopped {
				return
			}
			// Re-arm even if fn panics (the panic is recovered and logged
			// by the command goroutine): Rails runs each tick as its own
			// job, so one failing tick does not stop the timer.
			defer func() {
				if !t.stopped {
					t.t.Reset(t.every)
				}
			}()
			t.fn(ctx)
		})
	})
}

func (t *timer) stop() {
	t.stopped = true
	if t.t != nil {
		t.t.Stop()
	}
}
