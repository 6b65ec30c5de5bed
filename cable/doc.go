// Package cable is an ActionCable server: it speaks actioncable-v1-json,
// the protocol of Rails' ActionCable, to the official @rails/actioncable
// client and to Turbo's <turbo-cable-stream-source>, and runs channels
// written in Go.
//
// # Getting started
//
// A Server is an http.Handler. Register channel types under the Ruby class
// name clients put in their identifiers, and mount the server:
//
//	srv := &cable.Server{}
//	srv.Handle("ChatChannel", func() cable.Channel { return &Chat{Broadcaster: srv} })
//	http.Handle("/cable", srv)
//
// A Channel is the Go form of an ActionCable::Channel::Base subclass: its
// Subscribed, Unsubscribed and Perform hooks receive a *Subscription that
// offers what a Rails channel has: params[:room] (Param, a Value with
// Ruby's present?, to_s and to_i; DecodeParams), stream_from
// (StreamFrom), stream_for (StreamFor), broadcast_to (BroadcastTo),
// stop_stream_from (StopStream), stop_all_streams, transmit, reject,
// periodically and the connection's identifiers (Identity, with
// Identity.GlobalID for a model). Data(data) reads an action's data as
// Rails' data["key"]. An Authenticator plays the connection's connect and
// identified_by; Server.Broadcast is ActionCable.server.broadcast and
// Server.Disconnect is remote_connections.where(...).disconnect.
//
// # Compatibility
//
// Frames are those Rails writes, byte for byte: keys in Rails' order, <, >
// and & escaped as ActiveSupport::JSON does, disconnect frames always with
// a reason and a reconnect flag. Broadcast payloads stay JSON text, so
// large integers survive. Bad commands are logged and never answered with
// an error frame; the connection stays open, as in Rails, until it passes
// its budget of protocol errors (see Limits). Three choices
// differ from Rails on purpose: a connection's commands run in the order
// they arrived (Rails runs them on a thread pool); a subscription to an
// unknown channel is rejected (Rails only logs it, and the official client
// then re-sends it every 500 ms forever); and a subscription whose
// Subscribed fails is rejected rather than left unconfirmed.
//
// A lone UTF-16 surrogate escape in client JSON, such as "\ud800" (what
// the official client's JSON.stringify writes for an unpaired surrogate),
// is accepted: encoding/json decodes it as U+FFFD where a string is read
// (the "channel" key, DecodeParams, a Perform's own decoding), while the
// identifier and the data keep the escape as the client wrote it, so the
// identifier is echoed back unchanged. Ruby's JSON parser (json 2.6, as Debian ships it)
// raises "incomplete surrogate pair" instead, and Rails logs
// "Could not execute command" and drops the whole command
// (connection/subscriptions.rb, execute_command).
//
// # Limits
//
// Rails bounds nothing a client may cost; the Server bounds, per
// connection, with defaults no real app reaches (Server fields; a negative
// value turns a limit off): subscriptions (512) and identifier bytes
// (4 KiB), refused with reject_subscription, which the official client
// understands; frames and bytes queued for a slow reader (1024, 16 MiB),
// past which it is dropped; commands (200 a second, bursts of 500) and
// protocol errors (50 a minute), past which it gets Rails'
// {"type":"disconnect","reason":"invalid_request","reconnect":false} and
// is closed; WebSocket pings from the client (2 a second, bursts of 10),
// past which it is closed with 1008; and silence: the server sends a
// WebSocket ping every 10s (browsers answer with a pong) and closes a
// connection that sent nothing for 30s, running its hooks. A request with
// more than one Origin header is refused. Each hit is counted in
// Stats.LimitHits and logged at warn, at most once a second per limit; a
// connection's error lines are limited to 10 a second, with a count of
// those left out. Each subscription keeps its identifier once.
//
// # Data flow
//
// A byte from the client passes through the files in this order:
//
//   - server.go: Server.ServeHTTP checks the upgrade request and its
//     origin (CheckOrigin, or RailsOrigins in origin.go), admits it under
//     MaxConnections and ConnectionRate (admission.go), runs the
//     Authenticator, upgrades, and hands the socket to the connection's
//     goroutine.
//   - conn.go: the connection's read loop reads each text frame, bounds
//     what waits, and queues it for the command goroutine.
//   - protocol.go: the command is decoded as Rails' JSON decode and a Ruby
//     Hash see it, and so are the identifier and a message's data.
//   - commands.go: the handlers of subscribe, unsubscribe, message and the
//     internal channel (remote disconnects) call the channel.
//   - channel.go: the Channel's hooks run with their Subscription, which
//     streams, transmits, rejects and runs timers.
//   - hub.go: a broadcast comes back from the PubSub (pubsub.go) to the
//     hub, which finds the stream's local subscribers and builds one frame
//     per identifier.
//   - protocol.go: frames are encoded as ActiveSupport::JSON writes them.
//   - conn.go: Conn.send queues each frame without blocking, and the write
//     loop writes it to the socket.
//
// # Logging
//
// The Server logs to its Logger what Rails logs, with the connection
// identifier as "conn": a registered connection, a subscription and an
// unsubscription at debug; refusals (an unauthorized connection, a
// rejected subscription, and an origin not allowed by the default
// CheckOrigin) at info; commands it could not carry out, with their
// command and identifier, at error, at most 10 lines a second per
// connection; limit hits and slow clients at warn, at most one line a
// second per kind.
//
// # Pub/sub
//
// Broadcasts travel through a PubSub. The default, MemoryPubSub, serves
// one process. Package cable/redispubsub speaks the wire format of Rails'
// redis adapter, so Rails processes and gocable nodes broadcast to each
// other; it is a package of its own, so that a program on MemoryPubSub does
// not link a Redis client. Delivery is at most once.
//
// # Concurrency
//
// Every connection is served by one goroutine that the Server starts
// after the upgrade (ServeHTTP then returns, so net/http's buffers are
// freed) and that Shutdown waits for. It reads frames and waits, before it
// ends, for the two goroutines it may start: a writer, which runs only while frames are queued for the
// client, and a command goroutine, which runs only while commands or timer
// ticks are queued. So an idle connection costs one goroutine, and nothing
// outlives its connection.
//
// All calls into one connection's channels (Subscribed, Unsubscribed,
// Perform and periodic timers) run one at a time, in the order their
// causes arrived, so channel values need no locks of their own.
//
// Writes never block a broadcast: frames are queued without blocking, and
// a client whose queue is full (Server.SendQueueLen frames or
// Server.SendQueueBytes bytes) or that does not take a frame within
// Server.WriteTimeout is disconnected as slow. A
// broadcast is encoded once per identifier, not once per subscriber, and
// framed once for all the connections that share it. No lock is held while
// writing to a socket.
//
// Server.Shutdown sends every client a server_restart disconnect (spread
// over ShutdownDrain, admission.go), runs every hook, and returns when every connection goroutine has ended. A panic in
// channel code is recovered and logged with its stack; the server and the
// connection live on.
package cable
