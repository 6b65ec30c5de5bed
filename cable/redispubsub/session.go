package redispubsub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file is the reader's side: a session on the subscriber connection
// from dial to end, the replies Redis sends on it, and the keepalive.

// run is the reader goroutine: it connects, reads and dispatches until the
// session fails, then reconnects after a backoff, until ctx is cancelled by
// Close.
func (r *PubSub) run(ctx context.Context) {
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
func (r *PubSub) backoff(n int) time.Duration {
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
func (r *PubSub) connect(ctx context.Context) (*redis.PubSub, error) {
	// Subscribe without channels does no I/O; the PING dials, authenticates
	// and selects the database.
	ps := r.client.Subscribe(ctx)
	r.mu.Lock()
	r.sent = append(r.sent[:0], pendingCmd{kind: cmdPing, left: 1})
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
		return nil, ErrClosed
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
func (r *PubSub) serve(ps *redis.PubSub) (up bool, err error) {
	var buf []*subscriber
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
func (r *PubSub) dispatch(m *redis.Message, buf []*subscriber) []*subscriber {
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
func (r *PubSub) deliver(s *subscriber, channel string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("redispubsub: deliver panicked", "channel", channel, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	s.deliver(payload)
}

// expect records, with r.mu and the command semaphore held, a command about
// to be written on the current session.
func (r *PubSub) expect(kind cmdKind, channels ...string) {
	left := len(channels)
	if kind == cmdPing || kind == cmdMarker {
		left = 1
	}
	r.sent = append(r.sent, pendingCmd{kind: kind, channels: channels, left: left})
}

// reply takes one reply of the oldest command awaiting replies, which must
// be of kind and, for SUBSCRIBE and UNSUBSCRIBE, name channel. It reports
// false if the reply does not match: then the session is out of step with
// what was sent (go-redis re-sending commands of its own, say), and the
// caller breaks it. r.mu must be held.
func (r *PubSub) reply(kind cmdKind, channel string) (pendingCmd, bool) {
	if len(r.sent) == 0 {
		return pendingCmd{}, false
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
func (r *PubSub) pong(ps *redis.PubSub) bool {
	r.mu.Lock()
	c, ok := r.reply(cmdPing, "")
	last := ok && c.kind == cmdMarker && !slices.ContainsFunc(r.sent, func(c pendingCmd) bool { return c.kind == cmdMarker })
	r.mu.Unlock()
	if !ok {
		r.breakSession(ps, errors.New("redispubsub: unexpected PONG"))
	}
	return last
}

// onError handles an error reply. NOPERM to a SUBSCRIBE is an ACL that
// forbids the channel: refuse deals with it and the session goes on. Any
// other error (LOADING while Redis loads its data, BUSY during a script, an
// error to a PING) ends the session, which is then retried with backoff.
func (r *PubSub) onError(ps *redis.PubSub, rerr redis.Error) {
	r.mu.Lock()
	var c pendingCmd
	if len(r.sent) > 0 {
		c = r.sent[0]
		r.sent = r.sent[1:]
	}
	r.mu.Unlock()
	if c.kind == cmdSubscribe && c.left > 0 && strings.HasPrefix(rerr.Error(), "NOPERM") {
		r.refuse(ps, c.channels, rerr)
		return
	}
	r.breakSession(ps, fmt.Errorf("redispubsub: error reply: %w", rerr))
}

// ack records Redis' reply to a SUBSCRIBE or UNSUBSCRIBE of one channel.
func (r *PubSub) ack(ps *redis.PubSub, m *redis.Subscription) {
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
		r.breakSession(ps, fmt.Errorf("redispubsub: unexpected %s reply for %s", m.Kind, m.Channel))
	}
}

// settle counts one answered command of channel name; refusal, if not nil,
// is why Redis refused it. r.mu must be held.
func (r *PubSub) settle(name string, refusal error) {
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
func (r *PubSub) refuse(ps *redis.PubSub, channels []string, rerr redis.Error) {
	if len(channels) > 1 {
		r.log.Warn("redispubsub: redis refused a SUBSCRIBE of several channels; subscribing them one by one", "channels", len(channels), "err", rerr)
		r.resubscribeEach(ps, channels)
		return
	}
	name := channels[0]
	// Logged before the waiters are released, so that their error
	// always follows the log line.
	r.log.Error("redispubsub: redis refused SUBSCRIBE; the stream gets no broadcasts", "channel", name, "err", rerr)
	r.mu.Lock()
	r.settle(name, fmt.Errorf("redis refused SUBSCRIBE: %w", rerr))
	r.mu.Unlock()
}

// resubscribeEach sends a SUBSCRIBE of its own for each of names still
// wanted on session ps, after Redis refused them together, then a ready
// marker: the session is up only once they are answered.
func (r *PubSub) resubscribeEach(ps *redis.PubSub, names []string) {
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
func (r *PubSub) breakSession(ps *redis.PubSub, err error) {
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
func (r *PubSub) endSession(ps *redis.PubSub, err error) error {
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
			ch.ready, ch.isReady = newReadyRound(), false
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
func (r *PubSub) markUp() {
	r.mu.Lock()
	prev := State(r.state.Swap(int32(StateUp)))
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
	case StateConnecting:
		r.log.Info("redispubsub: connected", "channels", n)
	case StateDown:
		r.log.Info("redispubsub: reconnected", "outage", time.Since(since).Round(time.Millisecond), "channels", n)
	}
}

// markDown records a failed session or connection attempt. The first
// failure after being up (or of the first connection) is logged at Warn;
// the following attempts at Debug.
func (r *PubSub) markDown(err error, attempt int) {
	switch State(r.state.Swap(int32(StateDown))) {
	case StateUp:
		r.mu.Lock()
		r.downSince = time.Now()
		r.mu.Unlock()
		r.log.Warn("redispubsub: connection lost; reconnecting; broadcasts are lost until it is back", "err", err)
	case StateConnecting:
		r.mu.Lock()
		r.downSince = time.Now()
		r.mu.Unlock()
		r.log.Warn("redispubsub: cannot connect; retrying", "err", err)
	default:
		r.log.Debug("redispubsub: reconnection failed", "attempt", attempt, "err", err)
	}
}

// keepalive is the keepalive goroutine: it PINGs a silent session and
// breaks a session whose PING stays unanswered, until ctx is cancelled by
// Close.
func (r *PubSub) keepalive(ctx context.Context) {
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
				r.breakSession(ps, fmt.Errorf("redispubsub: redis did not answer PING within %v", r.healthEvery))
			}
		case now.Sub(last) >= r.healthEvery:
			r.ping(ctx, ps, now)
		}
	}
}

// ping sends the keepalive PING on session ps, recorded with the commands
// awaiting replies.
func (r *PubSub) ping(ctx context.Context, ps *redis.PubSub, now time.Time) {
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
