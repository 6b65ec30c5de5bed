package cable

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Server's counters, for health checks and
// metrics. Totals count since the Server started.
type Stats struct {
	Connections         int       // open connections now
	Streams             int       // streams this node is subscribed to in the PubSub
	ConnectionsTotal    uint64    // connections accepted (welcomed)
	UnauthorizedTotal   uint64    // connections the Authenticator refused
	SlowClientsTotal    uint64    // connections dropped as too slow: send queue full (frames or bytes) or a write timed out
	CommandsTotal       uint64    // client commands received
	ProtocolErrorsTotal uint64    // client commands that could not be carried out (logged)
	BroadcastsTotal     uint64    // messages received from the PubSub for a local stream
	FramesTotal         uint64    // frames written to clients (pings included)
	LimitHits           LimitHits // per-client limits hit; zero: none
	// LastBroadcast is when the last message for a local stream came
	// from the PubSub; the zero time if none has yet.
	LastBroadcast time.Time
}

// counters are the Server's Stats totals.
type counters struct {
	conns, unauthorized, slow, commands, protocolErrors, broadcasts, frames atomic.Uint64
	lastBroadcast                                                           atomic.Int64 // UnixNano; 0: none
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
	var last time.Time
	if ns := s.stats.lastBroadcast.Load(); ns != 0 {
		last = time.Unix(0, ns)
	}
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
		LimitHits:           s.limitHits(),
		LastBroadcast:       last,
	}
}
