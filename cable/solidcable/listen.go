package solidcable

// This file is the listener: the goroutine that polls the messages table
// and delivers, as the gem's Listener thread does
// (lib/action_cable/subscription_adapter/solid_cable.rb).

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// message is one row read by a poll.
type message struct {
	id      int64
	channel string
	payload []byte // nil when longer than MaxPayload
	length  int64  // of the payload in the table
}

// listen reads the table's highest id, then polls every interval until
// Close. Any failed query marks the PubSub down, logged once; it is
// retried with backoff, forever, and polling resumes from the last id read,
// so messages written during the outage are delivered after it.
func (p *PubSub) listen(ctx context.Context) {
	defer p.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	started := false
	fails := 0
	var downSince time.Time
	for {
		var err error
		more := false
		if !started {
			// @last_id = last_message_id, when the Listener starts,
			// unless a Subscribe has set it already.
			var id int64
			if id, err = p.maxID(ctx); err == nil {
				p.mu.Lock()
				if !p.started {
					p.lastID.Store(id)
					p.started = true
				}
				p.mu.Unlock()
				started = true
			}
		} else {
			more, err = p.poll(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		wait := p.every
		if err != nil {
			if fails == 0 {
				downSince = time.Now()
				p.state.Store(int32(StateDown))
				p.log.Warn("solidcable: database unreachable: messages are not read until it is back; retrying with backoff",
					"err", err, "last_id", p.lastID.Load())
			} else {
				p.log.Debug("solidcable: database still unreachable", "err", err, "attempt", fails+1)
			}
			wait = p.backoff(fails)
			fails++
		} else {
			if fails > 0 {
				p.log.Info("solidcable: database reachable again: reading the messages written meanwhile",
					"down_for", time.Since(downSince).Round(time.Millisecond), "last_id", p.lastID.Load())
			}
			fails = 0
			p.state.Store(int32(StateUp))
			if more {
				wait = 0
			}
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		}
	}
}

// poll runs one query for every channel with subscribers and delivers
// what it reads. more tells that it read MaxRowsPerPoll rows, so that more
// may be waiting. Without channels it reads the highest id instead, which
// keeps State true and costs the same one query.
func (p *PubSub) poll(ctx context.Context) (more bool, err error) {
	p.mu.Lock()
	polled := make(map[int64]bool, len(p.channels))
	hashes := make([]int64, 0, len(p.channels))
	for _, ch := range p.channels {
		if !polled[ch.hash] {
			polled[ch.hash] = true
			hashes = append(hashes, ch.hash)
		}
	}
	from := p.lastID.Load()
	p.mu.Unlock()
	p.polls.Add(1)
	if len(hashes) == 0 {
		id, err := p.maxID(ctx)
		if err == nil {
			p.advance(max(id, from), polled)
		}
		return false, err
	}

	msgs, err := p.read(ctx, hashes, from)
	if err != nil {
		return false, err
	}
	read := from
	for _, m := range msgs {
		p.deliver(m)
		read = m.id // self.last_id = message.id
	}
	p.advance(read, polled)
	if len(msgs) == p.maxRows {
		p.mu.Lock()
		warn := !p.rowsWarn
		p.rowsWarn = true
		p.mu.Unlock()
		if warn {
			p.log.Warn("solidcable: a poll read MaxRowsPerPoll rows: polling again at once until caught up (logged once)",
				"max_rows_per_poll", p.maxRows, "last_id", read)
		}
		return true, nil
	}
	return false, nil
}

// advance moves lastID to read, the last id a poll read, but not past the
// last id of a channel subscribed while it ran, whose hash it did not
// query: that channel's rows after its last id are still to be read.
func (p *PubSub) advance(read int64, polled map[int64]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := read
	for _, ch := range p.channels {
		if !polled[ch.hash] && ch.lastID < next {
			next = ch.lastID
		}
	}
	p.lastID.Store(next)
}

// read runs the poll query and returns its rows, the connection released
// before anything is delivered.
func (p *PubSub) read(ctx context.Context, hashes []int64, from int64) ([]message, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	rows, err := p.db.QueryContext(ctx, p.st.poll(hashes, p.maxRows, p.maxLen), from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []message
	for rows.Next() {
		var m message
		var channel []byte
		var length sql.NullInt64
		if err := rows.Scan(&m.id, &channel, &m.payload, &length); err != nil {
			return nil, err
		}
		m.channel, m.length = string(channel), length.Int64
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// deliver hands m to the subscribers of its channel, as broadcast_messages
// does: only when the channel still has subscribers and m is newer than
// the channel's last id (compute_if_present ... channel_last_id >=
// message.id), which also drops the rows of another channel with the same
// hash.
func (p *PubSub) deliver(m message) {
	p.mu.Lock()
	ch := p.channels[m.channel]
	if ch == nil || ch.lastID >= m.id {
		p.mu.Unlock()
		return
	}
	ch.lastID = m.id
	subs := make([]*subscriber, 0, len(ch.subs))
	for s := range ch.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	if m.length > int64(p.maxLen) {
		p.log.Warn("solidcable: message not delivered: payload longer than MaxPayload",
			"id", m.id, "channel", m.channel, "bytes", m.length, "max_payload", p.maxLen)
		return
	}
	for _, s := range subs {
		p.call(s, m)
	}
}

// call runs one deliver function, recovering a panic.
func (p *PubSub) call(s *subscriber, m message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("solidcable: deliver panicked", "channel", m.channel, "id", m.id, "panic", fmt.Sprint(r))
		}
	}()
	s.deliver(m.payload)
}
