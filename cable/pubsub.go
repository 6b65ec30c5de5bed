package cable

import "context"

// PubSub carries broadcasts between the processes that serve one application.
//
// Delivery is at most once, like every ActionCable subscription adapter: a
// message published while a subscriber is being (re)connected may be lost.
// Implementations must be safe for concurrent use.
type PubSub interface {
	// Publish sends payload, a JSON document, to every subscriber of stream
	// in every process.
	Publish(ctx context.Context, stream string, payload []byte) error

	// Subscribe registers deliver for stream and returns once the
	// subscription is active (for Redis: once SUBSCRIBE is acknowledged), so
	// that a subscription is confirmed to the client only after it can
	// receive. deliver is called for each message until unsubscribe is
	// called; it must not block and must not retain payload after it returns
	// unless it copies it. Calls to deliver for one stream are not concurrent
	// with each other.
	Subscribe(ctx context.Context, stream string, deliver func(payload []byte)) (unsubscribe func(), err error)
}
