package cablehttp

import (
	"encoding/json"
	"net/http"

	"github.com/gocable/gocable/cable"
)

// StatsSource reports a server's counters. *cable.Server implements it.
type StatsSource interface {
	Stats() cable.Stats
}

var _ StatsSource = (*cable.Server)(nil)

// Health is an http.Handler for load balancer and orchestrator health
// checks. It answers every request with JSON such as
//
//	{"connections":3,"pubsub":"ok","status":"OK"}
//
// where pubsub is the word PubSubState returns and connections the open
// client connections. The status is 200 while the pub/sub is "ok" or
// "memory" and 503 otherwise: a node that lost Redis still serves its
// clients but misses every other node's broadcasts, so it should be taken
// out of rotation. The status word in the body is http.StatusText of it.
//
// The zero value answers 200 with pubsub "memory" and 0 connections.
type Health struct {
	// Server supplies the connection count, usually the *cable.Server.
	// Nil reports 0 connections.
	Server StatsSource
	// PubSubState returns the pub/sub's state (see the package doc).
	// Nil means "memory".
	PubSubState func() string
}

var _ http.Handler = Health{}

// ServeHTTP writes the health report.
func (h Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	state := pubsubState(h.PubSubState)
	connections := 0
	if h.Server != nil {
		connections = h.Server.Stats().Connections
	}
	w.Header().Set("Content-Type", "application/json")
	status := http.StatusOK
	if !healthy(state) {
		status = http.StatusServiceUnavailable
	}
	w.WriteHeader(status)
	// The write error is dropped: the client has gone.
	_ = json.NewEncoder(w).Encode(map[string]any{"status": http.StatusText(status), "pubsub": state, "connections": connections})
}

// pubsubState calls state, if there is one; nil means in-process pub/sub.
func pubsubState(state func() string) string {
	if state == nil {
		return "memory"
	}
	return state()
}

// healthy reports whether a pub/sub state counts as reachable.
func healthy(state string) bool {
	return state == "ok" || state == "memory"
}
