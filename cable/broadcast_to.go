package cable

import "context"

// Broadcast sends msg to every subscriber of stream, on every node,
// through the server the subscription's connection belongs to: Rails'
// ActionCable.server.broadcast(stream, msg) from inside a channel, with no
// Broadcaster to inject. msg is encoded as in Server.Broadcast. It is safe
// from any goroutine.
func (s *Subscription) Broadcast(ctx context.Context, stream string, msg any) error {
	return s.conn.srv.Broadcast(ctx, stream, msg)
}

// BroadcastTo sends msg to the broadcasting this channel's StreamFor
// streams for the same parts, like Rails' broadcast_to(model, msg) called
// on the channel's class (actioncable/lib/action_cable/channel/broadcasting.rb:
// broadcast_to publishes to broadcasting_for(model), which names it after
// channel_name). The channel's class is its registered name, the
// identifier's "channel" key; parts are serialized as BroadcastingFor
// does, and a part it cannot name is an error before anything is sent. It
// is safe from any goroutine.
func (s *Subscription) BroadcastTo(ctx context.Context, msg any, parts ...any) error {
	name, err := BroadcastingFor(s.channel, parts...)
	if err != nil {
		return err
	}
	return s.Broadcast(ctx, name, msg)
}
