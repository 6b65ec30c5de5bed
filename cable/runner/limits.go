package runner

import (
	"flag"
	"time"

	"github.com/gocable/gocable/cable"
)

// limitsConfig is the per-connection limits of cable.Server (issue 11).
// Each flag's zero means the Server's default and a negative value no
// limit, as the Server fields read them.
type limitsConfig struct {
	maxSubscriptions   int
	maxIdentifierBytes int
	sendQueueBytes     int64
	commandRate        float64
	commandBurst       int
	maxProtocolErrors  int
	clientPingRate     float64
	peerPingInterval   time.Duration
	peerTimeout        time.Duration
}

func (c *limitsConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.maxSubscriptions, "max-subscriptions", int(envInt("GOCABLE_MAX_SUBSCRIPTIONS", 512)),
		"subscriptions one connection may hold; more are rejected with reject_subscription (env GOCABLE_MAX_SUBSCRIPTIONS); negative: no limit, as in Rails")
	fs.IntVar(&c.maxIdentifierBytes, "max-identifier-bytes", int(envInt("GOCABLE_MAX_IDENTIFIER_BYTES", 4<<10)),
		"longest subscription identifier in bytes; longer is rejected with reject_subscription (env GOCABLE_MAX_IDENTIFIER_BYTES); negative: no limit")
	fs.Int64Var(&c.sendQueueBytes, "send-queue-bytes", envInt("GOCABLE_SEND_QUEUE_BYTES", 16<<20),
		"bytes of frames queued for one client before it is disconnected as too slow (env GOCABLE_SEND_QUEUE_BYTES); negative: no limit")
	fs.Float64Var(&c.commandRate, "command-rate", envFloat("GOCABLE_COMMAND_RATE", 200),
		"commands a second one connection may send on average; past it the client gets the invalid_request disconnect (env GOCABLE_COMMAND_RATE); negative: no limit")
	fs.IntVar(&c.commandBurst, "command-burst", int(envInt("GOCABLE_COMMAND_BURST", 500)),
		"commands one connection may send at once, over --command-rate (env GOCABLE_COMMAND_BURST)")
	fs.IntVar(&c.maxProtocolErrors, "max-protocol-errors", int(envInt("GOCABLE_MAX_PROTOCOL_ERRORS", 50)),
		"bad commands one connection may send a minute; past it the client gets the invalid_request disconnect (env GOCABLE_MAX_PROTOCOL_ERRORS); negative: no limit")
	fs.Float64Var(&c.clientPingRate, "client-ping-rate", envFloat("GOCABLE_CLIENT_PING_RATE", 2),
		"WebSocket pings a second a client may send (burst: 5 times as many, at least 10); past it the connection is closed with 1008 (env GOCABLE_CLIENT_PING_RATE); negative: no limit")
	fs.DurationVar(&c.peerPingInterval, "peer-ping-interval", envDuration("GOCABLE_PEER_PING_INTERVAL", 10*time.Second),
		"how often to send clients a WebSocket ping, which browsers answer (env GOCABLE_PEER_PING_INTERVAL); negative: never")
	fs.DurationVar(&c.peerTimeout, "peer-timeout", envDuration("GOCABLE_PEER_TIMEOUT", 30*time.Second),
		"close a connection that sent nothing, not even a pong, for this long (env GOCABLE_PEER_TIMEOUT); at least two ping intervals; negative: never")
}

// apply sets the limits on srv.
func (c *limitsConfig) apply(srv *cable.Server) {
	srv.MaxSubscriptions = c.maxSubscriptions
	srv.MaxIdentifierBytes = c.maxIdentifierBytes
	srv.SendQueueBytes = c.sendQueueBytes
	srv.CommandRate = c.commandRate
	srv.CommandBurst = c.commandBurst
	srv.MaxProtocolErrors = c.maxProtocolErrors
	srv.ClientPingRate = c.clientPingRate
	srv.PeerPingInterval = c.peerPingInterval
	srv.PeerTimeout = c.peerTimeout
}
