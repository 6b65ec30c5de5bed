package pgpubsub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// listenBatch is the number of LISTEN or UNLISTEN statements sent in one
// round trip, so that re-LISTENing thousands of channels after a reconnect
// takes a few round trips, each within Config.QueryTimeout.
const listenBatch = 200

// run is the listener goroutine: it connects, LISTENs on every channel in
// use, delivers notifications, and reconnects with backoff, forever, until
// Close cancels ctx.
func (p *PubSub) run(ctx context.Context) {
	defer p.wg.Done()
	backoff := p.minBackoff
	var downSince time.Time
	var lastErr error
	for attempt := 1; ; attempt++ {
		conn, err := p.connect(ctx)
		if err == nil {
			up := false
			err = p.session(ctx, conn, func() {
				up = true
				if !downSince.IsZero() {
					p.log.Info("pgpubsub: connection to PostgreSQL restored", "target", p.target,
						"down_for", time.Since(downSince).Round(time.Millisecond), "attempts", attempt)
				}
				downSince, attempt = time.Time{}, 0
				backoff = p.minBackoff
			})
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(closeCtx)
			cancel()
			if up {
				p.lost()
			}
		}
		if ctx.Err() != nil {
			return
		}
		p.state.Store(int32(StateDown))
		if downSince.IsZero() {
			downSince = time.Now()
			p.log.Warn("pgpubsub: PostgreSQL listener connection down; reconnecting with backoff, broadcasts are not delivered meanwhile",
				"target", p.target, "err", err)
		} else if lastErr == nil || err.Error() != lastErr.Error() {
			p.log.Debug("pgpubsub: reconnect failed", "target", p.target, "attempt", attempt, "err", err)
		}
		lastErr = err
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, p.maxBackoff)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
}

// connect opens the listener connection within the query timeout.
func (p *PubSub) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.queryTimeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, p.connConfig)
}

// lost marks every channel as no longer LISTENed: their next Subscribe
// calls wait for the next session.
func (p *PubSub) lost() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ch := range p.channels {
		if ch.isReady {
			ch.ready, ch.isReady = make(chan struct{}), false
		}
	}
}

// session serves one listener connection until it fails or ctx is done. It
// LISTENs on every channel in use, calls up, then waits for notifications,
// interrupted when channels change (to LISTEN or UNLISTEN) and every
// healthEvery (to check the connection).
func (p *PubSub) session(ctx context.Context, conn *pgx.Conn, up func()) error {
	listened := make(map[string]bool)
	if err := p.sync(ctx, conn, listened, true); err != nil {
		return err
	}
	up()
	for {
		if err := p.sync(ctx, conn, listened, false); err != nil {
			return err
		}
		var waitCtx context.Context
		var cancel context.CancelFunc
		if p.healthEvery > 0 {
			waitCtx, cancel = context.WithTimeout(ctx, p.healthEvery)
		} else {
			waitCtx, cancel = context.WithCancel(ctx)
		}
		p.mu.Lock()
		if p.dirty {
			p.mu.Unlock()
			cancel()
			continue
		}
		p.wake = cancel
		p.mu.Unlock()
		n, err := conn.WaitForNotification(waitCtx)
		p.mu.Lock()
		p.wake = nil
		p.mu.Unlock()
		timedOut := errors.Is(waitCtx.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case err == nil:
			p.deliver(n.Channel, n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case conn.IsClosed() || waitCtx.Err() == nil:
			return err
		case timedOut:
			// Silent for healthEvery: check the connection is alive.
			pingCtx, cancel := context.WithTimeout(ctx, p.queryTimeout)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return fmt.Errorf("health check: %w", err)
			}
		}
		// Otherwise woken by a change: the next sync handles it.
	}
}

// sync makes the connection LISTEN on exactly the channels in use: LISTEN
// on those not yet listened, UNLISTEN on those without subscribers.
// listened holds the channels of this connection. With first, it also
// sets the state to StateUp, before any Subscribe waiting for the session
// returns.
func (p *PubSub) sync(ctx context.Context, conn *pgx.Conn, listened map[string]bool, first bool) error {
	p.mu.Lock()
	p.dirty = false
	var add, drop []string
	for name, ch := range p.channels {
		switch {
		case len(ch.subs) > 0 && (!listened[name] || !ch.isReady):
			// Not ready though listened: subscribed again after its
			// last subscriber left, so an UNLISTEN may have been
			// planned; LISTEN again (a no-op if it was not sent).
			add = append(add, name)
		case len(ch.subs) == 0 && !listened[name]:
			delete(p.channels, name) // never listened: nothing to undo
		}
	}
	for name := range listened {
		if ch := p.channels[name]; ch == nil || len(ch.subs) == 0 {
			drop = append(drop, name)
		}
	}
	p.mu.Unlock()

	if err := p.exec(ctx, conn, "LISTEN", add); err != nil {
		return err
	}
	if err := p.exec(ctx, conn, "UNLISTEN", drop); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if first {
		p.state.Store(int32(StateUp))
	}
	for _, name := range add {
		listened[name] = true
		if ch := p.channels[name]; ch != nil && !ch.isReady {
			close(ch.ready)
			ch.isReady = true
		}
	}
	for _, name := range drop {
		delete(listened, name)
		if ch := p.channels[name]; ch != nil {
			if len(ch.subs) == 0 {
				delete(p.channels, name)
			} else {
				// Subscribed again while UNLISTEN was on its way: the
				// next sync LISTENs again, and the new subscribers
				// wait for it.
				if ch.isReady {
					ch.ready, ch.isReady = make(chan struct{}), false
				}
				p.dirty = true
			}
		}
	}
	return nil
}

// exec sends cmd ("LISTEN" or "UNLISTEN") for names, listenBatch at a time,
// each batch one simple-protocol round trip bounded by the query timeout.
func (p *PubSub) exec(ctx context.Context, conn *pgx.Conn, cmd string, names []string) error {
	for len(names) > 0 {
		n := min(len(names), listenBatch)
		var b strings.Builder
		for _, name := range names[:n] {
			b.WriteString(cmd)
			b.WriteByte(' ')
			b.WriteString(pgx.Identifier{name}.Sanitize())
			b.WriteString(";")
		}
		qctx, cancel := context.WithTimeout(ctx, p.queryTimeout)
		err := conn.PgConn().Exec(qctx, b.String()).Close()
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", strings.ToLower(cmd), err)
		}
		names = names[n:]
	}
	return nil
}

// deliver calls the deliver function of every subscriber of channel, one
// after the other, on the listener goroutine.
func (p *PubSub) deliver(channel, payload string) {
	p.mu.Lock()
	ch := p.channels[channel]
	var subs []*subscriber
	if ch != nil {
		subs = make([]*subscriber, 0, len(ch.subs))
		for s := range ch.subs {
			subs = append(subs, s)
		}
	}
	p.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	b := []byte(payload)
	for _, s := range subs {
		p.call(s, channel, b)
	}
}

// call runs s.deliver unless s was unsubscribed, recovering a panic.
func (p *PubSub) call(s *subscriber, channel string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			p.log.Error("pgpubsub: panic in deliver", "channel", channel, "panic", v)
		}
	}()
	s.deliver(payload)
}
