package cable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// handleFrame runs one client command on the command goroutine
// (connection/subscriptions.rb, execute_command). No error reaches the
// client: everything is logged, and the connection stays open.
func (c *Conn) handleFrame(ctx context.Context, b []byte) {
	cmd, err := decodeCommand(b)
	if err != nil {
		c.logErr(&ProtocolError{Err: fmt.Errorf("could not decode %q: %w", truncate(b), err)})
		return
	}
	if cmd.Command != "subscribe" && cmd.Command != "unsubscribe" && cmd.Command != "message" {
		c.logErr(&ProtocolError{Command: cmd.Command, Err: fmt.Errorf("%w in %q", errUnrecognized, truncate(b))})
		return
	}
	if cmd.Identifier == nil {
		c.logErr(&ProtocolError{Command: cmd.Command, Err: errors.New("identifier is missing")})
		return
	}
	id := *cmd.Identifier
	switch cmd.Command {
	case "subscribe":
		c.subscribe(ctx, id)
	case "unsubscribe":
		sub := c.sub(id)
		if sub == nil {
			c.logErr(&ProtocolError{Command: cmd.Command, Identifier: id, Err: errors.New("unable to find subscription")})
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

func (c *Conn) subscribe(ctx context.Context, id string) {
	if c.sub(id) != nil {
		// Rails ignores a subscribe for an identifier it already has
		// (connection/subscriptions.rb, add).
		c.logger.Debug("cable: ignoring duplicate subscribe", "identifier", id)
		return
	}
	// A map, not a struct: Rails reads params[:channel] by its exact key
	// (connection/subscriptions.rb, add), where encoding/json would also
	// match "Channel" or "CHANNEL"; the last of duplicate keys wins, as
	// in Ruby's JSON.parse.
	var params map[string]json.RawMessage
	raw := json.RawMessage(id)
	if err := json.Unmarshal(raw, &params); err != nil || !isObject(raw) {
		if err == nil {
			err = errors.New("identifier is not a JSON object")
		}
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: err})
		return
	}
	rawChannel, ok := params["channel"]
	if !ok {
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: errors.New("identifier has no channel")})
		return
	}
	var channel string
	if err := json.Unmarshal(rawChannel, &channel); err != nil || rawChannel[0] != '"' {
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: fmt.Errorf("identifier's channel is not a string: %s", rawChannel)})
		return
	}
	sub := &Subscription{conn: c, id: id, channel: channel, prefix: identifierPrefix(id)}
	newChannel := c.srv.channel(sub.channel)
	if newChannel == nil {
		// Rails only logs "Subscription class not found"; the official
		// client would then resend the subscribe every 500 ms forever, so
		// we reject it.
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: fmt.Errorf("subscription class not found: %q", sub.channel)})
		c.send(outFrame{data: typeFrame(sub.prefix, "reject_subscription")})
		return
	}
	if c.safely(sub.channel+" constructor", func() { sub.ch = newChannel() }) || sub.ch == nil {
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: errors.New("the channel constructor failed")})
		c.send(outFrame{data: typeFrame(sub.prefix, "reject_subscription")})
		return
	}
	var err error
	if c.safely(sub.channel+"#subscribed", func() { err = sub.ch.Subscribed(ctx, sub) }) && err == nil {
		err = errors.New("subscribed panicked")
	}
	if err != nil && !errors.Is(err, ErrRejected) {
		c.logErr(&ProtocolError{Command: "subscribe", Identifier: id, Err: err})
	}
	if err != nil || sub.rejected {
		// Rails runs the unsubscribe callbacks of a rejected subscription
		// before it transmits the rejection (channel/base.rb,
		// reject_subscription).
		sub.rejected = true
		c.teardown(ctx, sub)
		c.send(outFrame{data: typeFrame(sub.prefix, "reject_subscription")})
		c.logger.Debug("cable: subscription rejected", "identifier", id)
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
}

func (c *Conn) unsubscribe(ctx context.Context, sub *Subscription) {
	c.subs.remove(sub)
	c.teardown(ctx, sub)
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

func (c *Conn) message(ctx context.Context, id string, data *string, dataErr error) {
	sub := c.sub(id)
	if sub == nil {
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: errors.New("unable to find subscription")})
		return
	}
	if dataErr != nil {
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: dataErr})
		return
	}
	if data == nil {
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: errors.New("data is missing")})
		return
	}
	raw := json.RawMessage(*data)
	var actionRaw json.RawMessage
	var err error
	if keysExact(raw, "action") {
		var d struct {
			Action json.RawMessage `json:"action"`
		}
		err = json.Unmarshal(raw, &d)
		actionRaw = d.Action
	} else {
		var d map[string]json.RawMessage
		err = json.Unmarshal(raw, &d)
		actionRaw = d["action"]
	}
	if err != nil || !isObject(raw) {
		if err == nil {
			err = errors.New("data is not a JSON object")
		}
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: err})
		return
	}
	action, err := actionOf(actionRaw)
	if err != nil {
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: err})
		return
	}
	if c.safely(sub.channel+"#"+action, func() { err = sub.ch.Perform(ctx, sub, action, raw) }) {
		return
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownAction):
		c.srv.stats.protocolErrors.Add(1)
		c.logger.Error(fmt.Sprintf("cable: unable to process %s#%s", sub.channel, action), "identifier", id)
	default:
		c.logErr(&ProtocolError{Command: "message", Identifier: id, Err: fmt.Errorf("%s#%s: %w", sub.channel, action, err)})
	}
}

// internalMessage handles a message on the connection's internal stream
// action_cable/<id> (connection/internal_channel.rb,
// process_internal_message): a remote disconnect, in the Rails 7.1+ form
// {"type":"disconnect","reconnect":bool} or the older {"type":"disconnect"}.
func (c *Conn) internalMessage(payload []byte) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		c.logger.Error("cable: internal channel message is not JSON", "conn", c.connID, "err", err)
		return
	}
	switch m := v.(type) {
	case map[string]any:
		if m["type"] != "disconnect" {
			return
		}
		reconnect := true // message.fetch("reconnect", true)
		if r, ok := m["reconnect"]; ok {
			reconnect = r != nil && r != false
		}
		c.logger.Info("cable: removing connection", "conn", c.connID, "reconnect", reconnect)
		c.Close(ReasonRemote, reconnect)
	case string, nil:
		// "str"["type"] is nil in Ruby: ignored.
	default:
		// Indexing an Array or a number raises, and Rails' rescue closes
		// the connection without a reason.
		c.Close("", true)
	}
}

func (c *Conn) logErr(err *ProtocolError) {
	c.srv.stats.protocolErrors.Add(1)
	c.logger.Error(err.Error(), "conn", c.connID)
}
