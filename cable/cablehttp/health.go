package cablehttp

import (
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
// client connections. The status is 200 while the pub/sub is "ok", "up"
// or "memory" and 503 otherwise: a node that lost Redis still serves its
// clients but misses every other node's broadcasts, so it should be taken
// out of rotation. The status word in the body is http.StatusText of it.
//
// With a Canary, a pub/sub that says it is up but does not bring the
// canary's probes back in time is reported as pubsub "stalled", with 503:
// Redis frozen, say, or a proxy that swallows traffic.
//
// Health itself keeps that meaning; Live and Ready are the two questions
// an orchestrator asks separately (Kubernetes' liveness and readiness
// probes).
//
// The zero value answers 200 with pubsub "memory" and 0 connections.
type Health struct {
	// Server supplies the connection count, usually the *cable.Server.
	// Nil reports 0 connections.
	Server StatsSource
	// PubSubState returns the pub/sub's state (see the package doc).
	// Nil means "memory".
	PubSubState func() string
	// Canary, if not nil, proves that broadcasts come back through the
	// pub/sub (see Canary); its caller runs it. Nil means the pub/sub's
	// own state is believed.
	Canary *Canary
	// Draining, if not nil, reports that the program is shutting down;
	// Ready then answers 503, so that no new client is sent here. Nil
	// means never.
	Draining func() bool
}

var _ http.Handler = Health{}

// ServeHTTP writes the health report.
func (h Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	state, status := h.check()
	writeJSON(w, status, map[string]any{"status": http.StatusText(status), "pubsub": state, "connections": h.connections()})
}

// check returns the pub/sub's state word, "stalled" when the canary
// fails, and the status that goes with it.
func (h Health) check() (state string, status int) {
	state = pubsubState(h.PubSubState)
	if healthy(state) && h.Canary != nil && !h.Canary.Status().OK {
		state = "stalled"
	}
	if !healthy(state) {
		return state, http.StatusServiceUnavailable
	}
	return state, http.StatusOK
}

func (h Health) connections() int {
	if h.Server == nil {
		return 0
	}
	return h.Server.Stats().Connections
}

// Live returns the liveness handler: it answers 200 {"status":"OK"} to
// every request, whatever the pub/sub does, because a process that
// answers HTTP is alive; restarting it would not bring Redis back.
func (h Health) Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": http.StatusText(http.StatusOK)})
	})
}

// Ready returns the readiness handler: 200 while the node can serve new
// clients fully (its pub/sub is up and, with a Canary, proven to deliver),
// 503 otherwise and while Draining. The JSON is Health's plus
// "draining" (true or false) and, with a Canary, "canary" ("ok" or why
// it fails) and "canary_round_trip_seconds" (the last probe's).
func (h Health) Ready() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		state, status := h.check()
		draining := h.Draining != nil && h.Draining()
		if draining {
			status = http.StatusServiceUnavailable
		}
		body := map[string]any{"status": http.StatusText(status), "pubsub": state, "connections": h.connections(), "draining": draining}
		if h.Canary != nil {
			st := h.Canary.Status()
			body["canary"] = "ok"
			if !st.OK {
				body["canary"] = st.Reason
			}
			body["canary_round_trip_seconds"] = st.RoundTrip.Seconds()
		}
		writeJSON(w, status, body)
	})
}

// pubsubState calls state, if there is one; nil means in-process pub/sub.
func pubsubState(state func() string) string {
	if state == nil {
		return "memory"
	}
	return state()
}

// healthy reports whether a pub/sub state counts as reachable: "up" is
// what redispubsub.State's String says, so its State().String can be
// PubSubState as it is.
func healthy(state string) bool {
	return state == "ok" || state == "up" || state == "memory"
}
