package cable

import "sync/atomic"

// Stats is a snapshot of a Server's counters, for health checks and
// metrics. Totals count since the Server started.
type Stats struct {
	Connections         int    // open connections now
	Streams             int    // streams this node is subscribed to in the PubSub
	ConnectionsTotal    uint64 // connections accepted (welcomed)
	UnauthorizedTotal   uint64 // connections the Authenticator refused
	SlowClientsTotal    uint64 // connections dropped because their send queue was full
	CommandsTotal       uint64 // client commands received
	ProtocolErrorsTotal uint64 // client commands that could not be carried out (logged)
	BroadcastsTotal     uint64 // messages received from the PubSub for a local stream
	FramesTotal         uint64 // frames written to clients (pings included)

	// LimitHits counts the requests and connections refused by each
	// limit: gocable_limit_hits_total{limit="..."}.
	LimitHits LimitHits
}

// LimitHits counts, per limit, the requests and connections a limit
// refused since the Server started. The zero value is no hits.
type LimitHits struct {
	MaxConnections uint64 // upgrades refused by Server.MaxConnections (503)
	ConnectionRate uint64 // upgrades refused by Server.ConnectionRate (429)

	// HTTPReadTimeout and HTTPWriteTimeout count HTTP requests cut short
	// because reading them, or writing their response, took longer than
	// allowed. The http.Server is the program's, so the program counts
	// them (package runner does); a Server's own Stats leaves them zero.
	HTTPReadTimeout  uint64
	HTTPWriteTimeout uint64
}

// Limit names of the HTTP timeouts, in LimitHits.ByName.
const (
	LimitHTTPReadTimeout  = "http_read_timeout"
	LimitHTTPWriteTimeout = "http_write_timeout"
)

// ByName returns the counts by limit name (LimitMaxConnections,
// LimitConnectionRate, LimitHTTPReadTimeout, LimitHTTPWriteTimeout), the
// label values of gocable_limit_hits_total; every limit is present, with
// its zero count if it was never hit.
func (h LimitHits) ByName() map[string]uint64 {
	return map[string]uint64{
		LimitMaxConnections:   h.MaxConnections,
		LimitConnectionRate:   h.ConnectionRate,
		LimitHTTPReadTimeout:  h.HTTPReadTimeout,
		LimitHTTPWriteTimeout: h.HTTPWriteTimeout,
	}
}

// counters are the Server's Stats totals.
type counters struct {
	conns, unauthorized, slow, commands, protocolErrors, broadcasts, frames atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.init()
	s.mu.Lock()
	conns := len(s.conns)
	s.mu.Unlock()
	s.hub.mu.Lock()
	streams := len(s.hub.streams)
	s.hub.mu.Unlock()
	return Stats{
		Connections:         conns,
		Streams:             streams,
		ConnectionsTotal:    s.stats.conns.Load(),
		UnauthorizedTotal:   s.stats.unauthorized.Load(),
		SlowClientsTotal:    s.stats.slow.Load(),
		CommandsTotal:       s.stats.commands.Load(),
		ProtocolErrorsTotal: s.stats.protocolErrors.Load(),
		BroadcastsTotal:     s.stats.broadcasts.Load(),
		FramesTotal:         s.stats.frames.Load(),
		LimitHits: LimitHits{
			MaxConnections: s.adm.capHits.load(),
			ConnectionRate: s.adm.rateHits.load(),
		},
	}
}
