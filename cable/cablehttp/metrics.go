package cablehttp

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"

	"github.com/gocable/gocable/cable"
)

// metric is one sample of the Prometheus text exposition format.
type metric struct {
	name, kind, help string
	value            float64
}

// Metrics is an http.Handler that serves a server's counters in the
// Prometheus text format (version 0.0.4), which every metrics agent
// reads; no client library is needed for a handful of numbers. The
// unlabelled samples are the fields of cable.Stats as
// gocable_connections, gocable_streams, gocable_connections_total,
// gocable_unauthorized_total, gocable_slow_clients_total,
// gocable_commands_total, gocable_protocol_errors_total,
// gocable_broadcasts_total and gocable_frames_total, plus
// gocable_pubsub_up (1 while the pub/sub is "ok" or "memory", else 0) and
// gocable_goroutines (of the process); and gocable_limit_hits_total, one
// sample per limit of cable.Stats.LimitHits, labelled limit="<name>".
//
// The zero value serves every counter as 0 and gocable_pubsub_up as 1.
type Metrics struct {
	// Server supplies the counters, usually the *cable.Server. Nil
	// reports every counter as 0.
	Server StatsSource
	// PubSubState returns the pub/sub's state (see the package doc).
	// Nil means "memory".
	PubSubState func() string
}

var _ http.Handler = Metrics{}

// ServeHTTP writes the samples.
func (m Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var st cable.Stats
	if m.Server != nil {
		st = m.Server.Stats()
	}
	up := 0.0
	if healthy(pubsubState(m.PubSubState)) {
		up = 1
	}
	ms := []metric{
		{"gocable_connections", "gauge", "Open client connections.", float64(st.Connections)},
		{"gocable_streams", "gauge", "Streams this node is subscribed to in the pub/sub.", float64(st.Streams)},
		{"gocable_pubsub_up", "gauge", "1 if the pub/sub is reachable.", up},
		{"gocable_connections_total", "counter", "Connections accepted.", float64(st.ConnectionsTotal)},
		{"gocable_unauthorized_total", "counter", "Connections refused by the authenticator.", float64(st.UnauthorizedTotal)},
		{"gocable_slow_clients_total", "counter", "Connections dropped because their send queue was full.", float64(st.SlowClientsTotal)},
		{"gocable_commands_total", "counter", "Client commands received.", float64(st.CommandsTotal)},
		{"gocable_protocol_errors_total", "counter", "Client commands that could not be carried out.", float64(st.ProtocolErrorsTotal)},
		{"gocable_broadcasts_total", "counter", "Messages received from the pub/sub for a local stream.", float64(st.BroadcastsTotal)},
		{"gocable_frames_total", "counter", "Frames written to clients.", float64(st.FramesTotal)},
		{"gocable_goroutines", "gauge", "Goroutines in the process.", float64(runtime.NumGoroutine())},
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writeMetrics(w, ms)
	writeLabelled(w, "gocable_limit_hits_total", "counter",
		"Requests and connections refused because they hit a limit.", "limit", st.LimitHits.ByName())
}

// writeLabelled writes one counter with a sample per label value, in
// sorted order, under a single HELP and TYPE. Nothing is written for an
// empty byLabel.
func writeLabelled(w io.Writer, name, kind, help, label string, byLabel map[string]uint64) {
	if len(byLabel) == 0 {
		return
	}
	values := make([]string, 0, len(byLabel))
	for v := range byLabel {
		values = append(values, v)
	}
	sort.Strings(values)
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	for _, v := range values {
		fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, v, byLabel[v])
	}
}

// writeMetrics writes ms with their HELP and TYPE lines. Write errors are
// dropped: the scraper has gone.
func writeMetrics(w io.Writer, ms []metric) {
	for _, m := range ms {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", m.name, m.help, m.name, m.kind, m.name, m.value)
	}
}
