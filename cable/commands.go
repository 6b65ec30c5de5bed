package cable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// The command handlers: what a decoded client command does, on the
// connection's command goroutine. Decoding is in protocol.go; frames go
// out through Conn.send (conn.go).

// handleFrame runs one client command on the command goroutine
// (connection/subscriptions.rb, execute_command). No error reaches the
// client: everything is logged, and the connection stays open.
func (c *Conn) handleFrame(ctx context.Context, b []byte) {
	cmd, err := decodeCommand(b)
	if err != nil {
		c.logErr(protocolError{err: fmt.Errorf("could not decode %q: %w", truncate(b), err)})
		return
	}
	if cmd.Command != "subscribe" && cmd.Command != "unsubscribe" && cmd.Command != "message" {
		c.logErr(protocolError{command: cmd.Command, err: fmt.Errorf("%w in %q", errUnrecognized, truncate(b))})
		return
	}
	if cmd.Identifier == nil {
		c.logErr(protocolError{command: cmd.Command, err: errors.New("identifier is missing")})
		return
	}
	id := *cmd.Identifier
	switch cmd.Command {
	case "subscribe":
		c.subscribe(ctx, id)
	case "unsubscribe":
		sub := c.sub(id)
		if sub == nil {
			c.logErr(protocolError{command: cmd.Command, identifier: id, err: errors.New("unable to find subscription")})
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

// subscribe is connection/subscriptions.rb's add: it makes the channel
// named by the identifier, runs Subscribed, and confirms or rejects.
func (c *Conn) subscribe(ctx context.Context, id string) {
	if c.sub(id) != nil {
		// Rails ignores a subscribe for an identifier it already has
		// (connection/subscriptions.rb, add).
		c.logger.Debug("cable: ignoring duplicate subscribe", "conn", c.connID, "identifier", id)
		return
	}
	if !c.admitSubscription(id) {
		return
	}
	channel, err := identifierChannel(id)
	if err != nil {
		c.logErr(protocolError{command: "subscribe", identifier: id, err: err})
		return
	}
	sub := &Subscription{conn: c, id: id, channel: channel}
	newChannel := c.srv.channel(sub.channel)
	if newChannel == nil {
		// Rails only logs "Subscription class not found"; the official
		// client would then resend the subscribe every 500 ms forever, so
		// we reject it.
		c.logErr(protocolError{command: "subscribe", identifier: id, err: fmt.Errorf("subscription class not found: %q", sub.channel)})
		c.send(outFrame{data: typeFrame(sub.id, "reject_subscription")})
		return
	}
	if c.safely(sub.channel+" constructor", func() { sub.ch = newChannel() }) || sub.ch == nil {
		c.logErr(protocolError{command: "subscribe", identifier: id, err: errors.New("the channel constructor failed"), channel: true})
		c.send(outFrame{data: typeFrame(sub.id, "reject_subscription")})
		return
	}
	if c.safely(sub.channel+"#subscribed", func() { err = sub.ch.Subscribed(ctx, sub) }) && err == nil {
		err = errors.New("subscribed panicked")
	}
	if err != nil && !errors.Is(err, ErrRejected) {
		c.logErr(protocolError{command: "subscribe", identifier: id, err: err, channel: true})
	}
	if err != nil || sub.rejected {
		// Rails runs the unsubscribe callbacks of a rejected subscription
		// before it transmits the rejection (channel/base.rb,
		// reject_subscription).
		sub.rejected = true
		c.teardown(ctx, sub)
		c.send(outFrame{data: typeFrame(sub.id, "reject_subscription")})
		// Rails logs "<Channel> is transmitting the subscription
		// rejection" (channel/base.rb); a refusal is worth info here.
		c.logger.Info("cable: subscription rejected", "conn", c.connID, "channel", sub.channel, "identifier", id)
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
	// Rails logs "<Channel> is transmitting the subscription confirmation"
	// and "<Channel> is streaming from <stream>" (channel/base.rb,
	// channel/streams.rb).
	if c.logger.Enabled(ctx, slog.LevelDebug) {
		c.logger.DebugContext(ctx, "cable: subscribed", "conn", c.connID, "channel", sub.channel, "identifier", id,
			"streams", sub.Streams(), "deferred", sub.deferred)
	}
}

// unsubscribe is connection/subscriptions.rb's remove, which logs
// "Unsubscribing from channel: <identifier>".
func (c *Conn) unsubscribe(ctx context.Context, sub *Subscription) {
	c.subs.remove(sub)
	c.teardown(ctx, sub)
	if c.logger.Enabled(ctx, slog.LevelDebug) {
		c.logger.DebugContext(ctx, "cable: unsubscribed", "conn", c.connID, "channel", sub.channel, "identifier", sub.id)
	}
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

// message is connection/subscriptions.rb's perform_action: it runs the
// action data names on the subscription's channel.
func (c *Conn) message(ctx context.Context, id string, data *string, dataErr error) {
	sub := c.sub(id)
	if sub == nil {
		c.logErr(protocolError{command: "message", identifier: id, err: errors.New("unable to find subscription")})
		return
	}
	if dataErr != nil {
		c.logErr(protocolError{command: "message", identifier: id, err: dataErr})
		return
	}
	if data == nil {
		c.logErr(protocolError{command: "message", identifier: id, err: errors.New("data is missing")})
		return
	}
	raw, action, err := decodeData(*data)
	if err != nil {
		c.logErr(protocolError{command: "message", identifier: id, err: err})
		return
	}
	if c.safely(sub.channel+"#"+action, func() { err = sub.ch.Perform(ctx, sub, action, raw) }) {
		return
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownAction):
		if c.countProtocolError() {
			c.logError(fmt.Sprintf("cable: unable to process %s#%s", sub.channel, action), slog.String("conn", c.connID), slog.String("identifier", logIdentifier(id)))
		}
	default:
		c.logErr(protocolError{command: "message", identifier: id, err: fmt.Errorf("%s#%s: %w", sub.channel, action, err), channel: true})
	}
}

// internalMessage handles a message on the connection's internal stream
// action_cable/<id> (connection/internal_channel.rb,
// process_internal_message): a remote disconnect closes the connection.
func (c *Conn) internalMessage(payload []byte) {
	kind, reconnect, err := decodeInternal(payload)
	switch {
	case err != nil:
		c.logger.Error("cable: internal channel message is not JSON", "conn", c.connID, "err", err)
	case kind == internalDisconnect:
		// Rails logs "Removing connection (<id>)".
		c.logger.Info("cable: removing connection", "conn", c.connID, "reconnect", reconnect)
		c.Close(ReasonRemote, reconnect)
	case kind == internalInvalid:
		// Rails' rescue closes the connection without a reason.
		c.Close("", true)
	}
}

// protocolError is a client command the server could not carry out. As
// in Rails, it is logged and never sent to the client
// (connection/subscriptions.rb, execute_command, which logs
// "Could not execute command from ...").
type protocolError struct {
	command    string // "subscribe", "unsubscribe", "message", or "" if unknown
	identifier string // the subscription identifier, if any
	err        error
	// channel is set when the channel's own code failed (its constructor,
	// Subscribed or Perform returned an error, say a Broadcast during a
	// Redis outage): not the client's doing, so it does not spend the
	// connection's budget of protocol errors.
	channel bool
}

// logErr logs e at error level, its fields as attributes, and counts it.
// Past the connection's budget of protocol errors the connection is
// closed; its lines are rate-limited (logError).
func (c *Conn) logErr(e protocolError) {
	if e.channel {
		c.srv.stats.protocolErrors.Add(1)
	} else if !c.countProtocolError() {
		return
	}
	attrs := make([]slog.Attr, 0, 4)
	attrs = append(attrs, slog.String("conn", c.connID))
	if e.command != "" {
		attrs = append(attrs, slog.String("command", e.command))
	}
	if e.identifier != "" {
		attrs = append(attrs, slog.String("identifier", logIdentifier(e.identifier)))
	}
	attrs = append(attrs, slog.Any("err", e.err))
	c.logError("cable: could not execute command", attrs...)
}

// countProtocolError counts a command that could not be carried out. It
// reports false, having closed the connection with Rails' invalid_request
// disconnect, when the connection has spent its budget
// (Server.MaxProtocolErrors a minute); Rails keeps such a connection open.
func (c *Conn) countProtocolError() bool {
	c.srv.stats.protocolErrors.Add(1)
	if c.errorBudget.allow(time.Now()) {
		return true
	}
	if !c.errorsSpent {
		c.errorsSpent = true
		c.srv.limitHit(limitProtocolErrors, "cable: closing a connection that sent too many commands that could not be carried out",
			"conn", c.connID, "per_minute", c.errorBudget.burst)
		c.closeWith(disconnectFrame(reasonInvalidRequest, false))
	}
	return false
}

// admitSubscription checks a subscribe against the connection's limits
// (Server.MaxIdentifierBytes, Server.MaxSubscriptions). A refused one gets
// reject_subscription, which the official client understands (it calls the
// subscription's rejected callback and does not retry), and a warn line
// naming the limit. Rails has neither limit.
func (c *Conn) admitSubscription(id string) bool {
	s := c.srv
	if n := orDefault(s.MaxIdentifierBytes, defaultMaxIdentifierBytes); n > 0 && len(id) > n {
		s.limitHit(limitIdentifierBytes, "cable: subscription rejected: identifier over the limit", "conn", c.connID,
			"identifier", logIdentifier(id), "bytes", len(id), "max", n)
		c.send(outFrame{data: typeFrame(id, "reject_subscription")})
		return false
	}
	if n := orDefault(s.MaxSubscriptions, defaultMaxSubscriptions); n > 0 && len(c.subs.items) >= n {
		s.limitHit(limitSubscriptions, "cable: subscription rejected: the connection has as many subscriptions as allowed", "conn", c.connID,
			"identifier", logIdentifier(id), "max", n)
		c.send(outFrame{data: typeFrame(id, "reject_subscription")})
		return false
	}
	return true
}

// logIdentifier shortens an identifier for a log line.
func logIdentifier(id string) string {
	if len(id) <= 200 {
		return id
	}
	return truncate([]byte(id[:201]))
}
