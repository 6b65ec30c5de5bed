package cablehttp

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"

	"github.com/gocable/gocable/cable"
)

// metric is one sample of the Prometheus text exposition format.
type metric struct {
	name, kind, help string
	value            float64
	labels           string // `limit="subscriptions"`, or empty
}

// Metrics is an http.Handler that serves a server's counters in the
// Prometheus text format (version 0.0.4), which every metrics agent
// reads; no client library is needed for a handful of numbers. The
// samples are the fields of cable.Stats as
// gocable_connections, gocable_streams, gocable_connections_total,
// gocable_unauthorized_total, gocable_slow_clients_total,
// gocable_commands_total, gocable_protocol_errors_total,
// gocable_broadcasts_total and gocable_frames_total, plus
// gocable_pubsub_up (1 while the pub/sub is "ok" or "memory", else 0),
// gocable_goroutines (of the process),
// gocable_last_broadcast_received_timestamp_seconds (Unix time of
// Stats.LastBroadcast, 0 before the first), and one labelled counter,
// gocable_limit_hits_total{limit="..."}, with a sample for each field of
// cable.LimitHits (limit="subscriptions", "identifier_bytes", "commands",
// "protocol_errors", "client_pings", "peer_timeout", "send_queue_bytes",
// "origin_headers", "message_size", "pending_commands", "max_connections",
// "connection_rate", "http_read_timeout", "http_write_timeout"), zeros included,
// so that alerts see every series. Where /proc/self can be read (Linux)
// it adds gocable_process_resident_memory_bytes and
// gocable_process_open_fds. With a Canary it adds
// gocable_canary_up (1 while its Status is OK),
// gocable_canary_round_trip_seconds (the last probe's round trip, 0 before
// the first) and gocable_canary_failures_total (times it started failing).
//
// The zero value serves every counter as 0 and gocable_pubsub_up as 1.
type Metrics struct {
	// Server supplies the counters, usually the *cable.Server. Nil
	// reports every counter as 0.
	Server StatsSource
	// PubSubState returns the pub/sub's state (see the package doc).
	// Nil means "memory".
	PubSubState func() string
	// Canary, if not nil, adds the canary's samples. Nil leaves them out.
	Canary *Canary
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
		{"gocable_connections", "gauge", "Open client connections.", float64(st.Connections), ""},
		{"gocable_streams", "gauge", "Streams this node is subscribed to in the pub/sub.", float64(st.Streams), ""},
		{"gocable_pubsub_up", "gauge", "1 if the pub/sub is reachable.", up, ""},
		{"gocable_connections_total", "counter", "Connections accepted.", float64(st.ConnectionsTotal), ""},
		{"gocable_unauthorized_total", "counter", "Connections refused by the authenticator.", float64(st.UnauthorizedTotal), ""},
		{"gocable_slow_clients_total", "counter", "Connections dropped because their send queue was full.", float64(st.SlowClientsTotal), ""},
		{"gocable_commands_total", "counter", "Client commands received.", float64(st.CommandsTotal), ""},
		{"gocable_protocol_errors_total", "counter", "Client commands that could not be carried out.", float64(st.ProtocolErrorsTotal), ""},
		{"gocable_broadcasts_total", "counter", "Messages received from the pub/sub for a local stream.", float64(st.BroadcastsTotal), ""},
		{"gocable_frames_total", "counter", "Frames written to clients.", float64(st.FramesTotal), ""},
		{"gocable_goroutines", "gauge", "Goroutines in the process.", float64(runtime.NumGoroutine()), ""},
		{"gocable_last_broadcast_received_timestamp_seconds", "gauge", "Unix time of the last message received from the pub/sub for a local stream; 0 if none.", unixSeconds(st.LastBroadcast), ""},
	}
	st.LimitHits.Each(func(limit string, n uint64) {
		ms = append(ms, metric{"gocable_limit_hits_total", "counter", "Requests and connections refused because they hit a limit, by limit.", float64(n), `limit="` + limit + `"`})
	})
	if m.Canary != nil {
		cs := m.Canary.Status()
		up := 0.0
		if cs.OK {
			up = 1
		}
		ms = append(ms,
			metric{"gocable_canary_up", "gauge", "1 if the canary's probes come back through the pub/sub in time.", up, ""},
			metric{"gocable_canary_round_trip_seconds", "gauge", "Round trip of the last canary probe through the pub/sub.", cs.RoundTrip.Seconds(), ""},
			metric{"gocable_canary_failures_total", "counter", "Times the canary started failing.", float64(cs.Failures), ""},
		)
	}
	ms = append(ms, processMetrics()...)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writeMetrics(w, ms)
}

// unixSeconds returns t as Unix seconds, and the zero time as 0.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// writeMetrics writes ms with their HELP and TYPE lines. Write errors are
// dropped: the scraper has gone.
func writeMetrics(w io.Writer, ms []metric) {
	for i, m := range ms {
		if i == 0 || ms[i-1].name != m.name {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.kind)
		}
		if m.labels != "" {
			fmt.Fprintf(w, "%s{%s} %g\n", m.name, m.labels, m.value)
		} else {
			fmt.Fprintf(w, "%s %g\n", m.name, m.value)
		}
	}
}
