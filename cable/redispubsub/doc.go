// Package redispubsub is a cable.PubSub over Redis PUBLISH and SUBSCRIBE
// that is wire-compatible with Rails' redis subscription adapter
// (actioncable/lib/action_cable/subscription_adapter/redis.rb), so that Rails
// processes and gocable nodes that share a Redis broadcast to each other.
//
// It is a package of its own so that a program on cable's in-memory
// pub/sub (cable.MemoryPubSub, the default) does not link a Redis client.
//
// # Getting started
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	ps := redispubsub.New(client, redispubsub.Config{ChannelPrefix: new("myapp_production")})
//	srv := &cable.Server{PubSub: ps}
//	...
//	srv.Shutdown(ctx)
//	ps.Close()
//	client.Close()
//
// # Rails wire compatibility
//
// A stream is published and subscribed on the Redis channel named by the
// channel_prefix of config/cable.yml, ":" and the stream, as Rails names it
// (actioncable/lib/action_cable/subscription_adapter/channel_prefix.rb);
// see Config.ChannelPrefix. Payloads are published and delivered verbatim,
// as the JSON text that ActionCable.server.broadcast publishes
// (actioncable/lib/action_cable/server/broadcasting.rb). So, with the same
// Redis and channel_prefix, a broadcast made by a Rails process
// (ActionCable.server.broadcast, remote_connections.where(...).disconnect)
// reaches the subscribers of a PubSub,
// and a Publish reaches the subscribers of Rails' adapter.
//
// Like Rails' adapter, a PubSub holds one subscriber connection whatever
// the number of streams and subscribers: the first Subscribe of a stream
// sends SUBSCRIBE and its last unsubscribe sends UNSUBSCRIBE, as Rails'
// SubscriberMap does
// (actioncable/lib/action_cable/subscription_adapter/subscriber_map.rb).
// Publish uses the client's connection pool. Subscribe returns only once
// Redis has acknowledged the SUBSCRIBE, as Rails confirms a subscription
// only then (redis.rb's Listener runs the on_success callback on Redis'
// "subscribe" reply), so that a
// client told its subscription is confirmed already receives broadcasts.
//
// # Delivery guarantee
//
// Delivery is at most once, as in Rails and in Redis pub/sub itself: a
// message published while the subscriber connection is down, or before
// Redis has acknowledged a stream's SUBSCRIBE, is not delivered, and
// nothing is replayed. Messages of one
// stream published by one publisher are delivered in the order Redis
// received them.
//
// # Outages
//
// When the subscriber connection fails, a PubSub reconnects, forever, with
// jittered exponential backoff (Config.MinBackoff, Config.MaxBackoff), and
// subscribes again to every stream that still has subscribers, as Rails
// 7.1+ does with reconnect_attempts (Rails 6.1's listener thread instead
// raises Redis::ConnectionError, which abort_on_exception turns into the end
// of the process). A connection that dies without being closed is caught by
// a PING health check (Config.HealthCheckInterval). The loss is logged
// once, at Warn, the recovery once, at Info, and the attempts in between at
// Debug. PubSub.State and PubSub.Healthy report the connection for health
// checks.
//
// During an outage Publish fails at once (its error wraps ErrUnavailable),
// as Rails' broadcast raises at once, and Subscribe waits until Redis is
// back and has acknowledged the subscription, or until its ctx is done:
// callers should give it a deadline. The official JavaScript client resends
// a subscribe command until it is confirmed, so its subscriptions recover.
// A channel that a Redis ACL forbids (NOPERM) fails its Subscribe calls
// with Redis' error instead of making them wait.
//
// # Concurrency
//
// A PubSub is safe for concurrent use. New starts two goroutines, owned by
// the PubSub and ended by Close, which waits for them: the reader, which
// alone reads the subscriber connection and calls every deliver function,
// and the keepalive, which sends the health check's PINGs. Calls to deliver
// therefore never overlap, for any stream: a deliver that blocks delays
// every stream.
package redispubsub
