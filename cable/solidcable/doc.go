// Package solidcable is a cable.PubSub over the messages table of Solid
// Cable, the database-backed Action Cable adapter that a new Rails 8 app
// uses in production (rails/solid_cable,
// lib/action_cable/subscription_adapter/solid_cable.rb), so that gocable
// serves a Rails 8 app's clients with nothing changed in the app but the
// cable URL: broadcasts made in Rails reach gocable's clients, and gocable's
// broadcasts reach the clients of Rails' own cable servers.
//
// It is a package of its own so that a program on cable's in-memory
// pub/sub does not link three database drivers.
//
// # Getting started
//
//	cfg, err := railsconfig.LoadCable("config/cable.yml", "production", nil)
//	dbc, err := railsconfig.LoadDatabase("config/database.yml", "production", cfg.SolidCable.DatabaseName(), nil)
//	db, dialect, err := solidcable.Open(dbc, appRoot) // appRoot: the Rails app's directory
//	ps, err := solidcable.New(solidcable.Config{DB: db, Dialect: dialect,
//		PollingInterval: cfg.SolidCable.Interval(), MessageRetention: cfg.SolidCable.Retention()})
//	srv := &cable.Server{PubSub: ps}
//	...
//	srv.Shutdown(ctx)
//	ps.Close()
//	db.Close()
//
// # Rails compatibility
//
// Reading is what the gem's Listener does: every polling interval one
// query, whatever the number of streams, for the rows whose channel_hash
// is one of the streams' hashes and whose id is past the last id read, in
// id order (SolidCable::Message.broadcastable,
// app/models/solid_cable/message.rb). The listener starts at the table's
// highest id, as the gem's does; the first subscriber of a stream reads
// the highest id too and receives only the messages after it
// (Listener#add_channel), and a row is delivered to a stream's subscribers
// only when its channel is the stream's channel (not just its hash) and its
// id is past the stream's own last id (broadcast_messages). Payloads are
// delivered verbatim. Unlike the gem's listener, whose last_id can move past
// a stream subscribed while a poll for other streams runs, the next poll
// never starts past a new stream's own last id, so its first messages are
// not skipped.
//
// Writing is what SolidCable::Message.broadcast does: one row with
// created_at, channel, payload and channel_hash. channel and payload are
// binary columns, written as bytes; created_at is the current UTC time as
// ActiveRecord quotes it (CreatedAt); channel_hash is the first 8 bytes of
// the SHA-256 of the channel as a signed big-endian integer (ChannelHash).
// Trimming is SolidCable::TrimJob's (app/jobs/solid_cable/trim_job.rb):
// after a write, with a chance of 2 in trim_batch_size, up to
// trim_batch_size rows older than message_retention are deleted, with
// FOR UPDATE SKIP LOCKED on PostgreSQL and MySQL (PubSub.Trim), so a
// gocable-only deployment does not grow the table forever either.
//
// Stream names get the channel_prefix of cable.yml, ":" and the stream, as
// every Rails adapter names channels
// (actioncable/lib/action_cable/subscription_adapter/channel_prefix.rb).
// The table is the one the gem's db/cable_schema.rb makes (Schema,
// CreateTable). The settings come from the app's config/cable.yml and
// config/database.yml through package railsconfig, and Open picks the
// driver of the database.yml adapter: modernc.org/sqlite (pure Go, so the
// binary stays static) for sqlite3, github.com/jackc/pgx/v5 for postgresql,
// github.com/go-sql-driver/mysql for mysql2 and trilogy.
//
// Where gocable bounds what the gem does not: a poll reads at most
// Config.MaxRowsPerPoll rows and polls again at once when it read that
// many; Publish refuses payloads over Config.MaxPayload, and a longer row
// written by Rails is skipped with a log line, without reading it; every
// query has Config.QueryTimeout.
//
// # Delivery guarantee
//
// Delivery is at most once, as with every Action Cable adapter, but the
// table gives more than Redis does: a stream receives, once each and in id
// order, every message of its channel committed after its first
// subscriber's Subscribe returned, including the messages written while
// the database was unreachable from this node, which are read when it is
// back, as long as they are not trimmed meanwhile (message_retention,
// a day by default). As with the gem, a row whose id is below one already
// read when it commits (concurrent transactions committing out of id
// order) is not delivered. Latency is about half the polling interval
// plus the query's time.
//
// # Outages
//
// When a query fails, the PubSub is down (State, Healthy): the loss is
// logged once at Warn, the recovery once at Info, the attempts in between
// at Debug. It retries forever, with jittered exponential backoff
// (Config.MinBackoff, Config.MaxBackoff), unlike the gem's listener, which
// gives up after reconnect_attempts. During an outage Publish fails (its
// error wraps ErrUnavailable) and Subscribe waits until its ctx is done.
//
// # Concurrency
//
// A PubSub is safe for concurrent use. New starts one goroutine, the
// listener, owned by the PubSub and ended by Close, which waits for it; it
// alone calls deliver functions, so they never overlap, and one that
// blocks delays every stream.
package solidcable
