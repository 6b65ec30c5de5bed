// Package pgpubsub is a cable.PubSub over PostgreSQL LISTEN and NOTIFY that
// is wire-compatible with Rails' postgresql subscription adapter
// (actioncable/lib/action_cable/subscription_adapter/postgresql.rb, the
// same wire format in Rails 6.1, 7.0, 7.1, 7.2, 8.0 and 8.1), so that Rails
// processes and gocable nodes that share a database broadcast to each
// other. It is a package of its own so that a program on another pub/sub
// does not link a PostgreSQL driver.
//
// # Getting started
//
//	ps, err := pgpubsub.New(os.Getenv("DATABASE_URL"), pgpubsub.Config{ChannelPrefix: new("myapp_production")})
//	...
//	srv := &cable.Server{PubSub: ps}
//	...
//	srv.Shutdown(ctx)
//	ps.Close()
//
// # Rails wire compatibility
//
// A stream is published and listened on the PostgreSQL channel that Rails'
// adapter names: the channel_prefix of config/cable.yml, ":" and the stream
// (channel_prefix.rb, prepended to the adapter in every version), replaced
// by its SHA-1 hex digest when longer than 63 characters
// (postgresql.rb, channel_identifier); see PubSub.Channel. Rails' main
// branch counts bytes instead of characters since commit 5b41c8a; no
// release does yet, see Config.HashByBytes. A multibyte name of more than
// 63 bytes that released Rails sends unhashed is truncated by PostgreSQL
// to 63 bytes; PubSub listens and notifies under that truncated name, so it
// receives those broadcasts too (Rails' own listener drops them, as the
// truncated name no longer matches its subscriber map).
//
// Publish sends SELECT pg_notify(channel, payload), which is what Rails'
// NOTIFY "channel", 'payload' does, with the payload verbatim: the JSON
// text that ActionCable.server.broadcast publishes. PostgreSQL refuses a
// payload of 8,000 bytes or more ("payload string too long"); Publish
// refuses it before sending, with an error wrapping ErrPayloadTooLarge. In
// Rails the same broadcast raises PG::InvalidParameterValue. Through
// cable.Server the error is returned by Server.Broadcast and by a channel's
// Broadcast, and logged like any failed command; no client sees it, and
// nothing is delivered.
//
// Like Rails' adapter, a PubSub holds one listener connection per process
// whatever the number of streams: the first Subscribe of a stream sends
// LISTEN and its last unsubscribe sends UNLISTEN (postgresql.rb's
// Listener, a SubscriberMap). Subscribe returns only once LISTEN has run,
// as Rails runs a subscription's success callback only then, so that a
// client told its subscription is confirmed already receives broadcasts.
// The listener connection's application_name is "gocable-PID-<pid>", as
// Rails sets "ActionCable-PID-<pid>". Publish uses a small pool of other
// connections (Config.MaxPublishConns), as Rails broadcasts on a
// connection of the Active Record pool.
//
// Rails' adapter takes its connection from Active Record (config/
// database.yml); New takes a connection string instead, a postgres:// URL
// or libpq key=value pairs.
//
// # Delivery guarantee
//
// Delivery is at most once, as in Rails and in LISTEN/NOTIFY itself: a
// notification sent while the listener connection is down, or before a
// stream's LISTEN has run, is not delivered, and nothing is replayed.
// PostgreSQL delivers the notifications of one transaction, and those of
// one publishing session, in the order they were sent.
//
// # Outages
//
// When the listener connection fails (the server restarts, the backend is
// terminated, the network is cut), a PubSub reconnects, forever, with
// jittered exponential backoff (Config.MinBackoff, Config.MaxBackoff), and
// LISTENs again on every stream that still has subscribers. Rails' listener
// thread instead raises, and abort_on_exception ends the process. A
// connection that dies without being closed is caught by an empty query
// sent after Config.HealthCheckInterval of silence. Every round trip is
// bounded by Config.QueryTimeout. The loss is logged once, at Warn, the
// recovery once, at Info, and the attempts in between at Debug.
// PubSub.State and PubSub.Healthy report the connection for health checks.
//
// During an outage Publish fails at once (its error wraps ErrUnavailable),
// as Rails' broadcast raises, and Subscribe waits until the database is
// back and the stream is LISTENed, or until its ctx is done: callers should
// give it a deadline. The official JavaScript client resends a subscribe
// command until it is confirmed, so its subscriptions recover.
//
// # Concurrency
//
// A PubSub is safe for concurrent use. New starts one goroutine, the
// listener, owned by the PubSub and ended by Close, which waits for it. It
// alone uses the listener connection: it connects, reconnects, sends
// LISTEN and UNLISTEN, and calls every deliver function, so calls to
// deliver never overlap, for any stream; a deliver that blocks delays every
// stream. A panic in deliver is recovered and logged.
package pgpubsub
