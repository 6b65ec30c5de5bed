package runner

import (
	"fmt"
	"io"
	"net/http"
	"runtime"

	"github.com/gocable/gocable/cable"
)

// metric is one line of the Prometheus text exposition format.
type metric struct {
	name, kind, help string
	value            float64
}

// metricsHandler serves the server's counters in the Prometheus text
// format (version 0.0.4), which every metrics agent reads; no client
// library is needed for a handful of numbers. pubsubState is the health
// state of the pub/sub ("memory", "ok", "down", ...), nil for memory.
func metricsHandler(srv *cable.Server, pubsubState func() string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := srv.Stats()
		up := 1.0
		if pubsubState != nil {
			if s := pubsubState(); s != "ok" && s != "memory" {
				up = 0
			}
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
	}
}

func writeMetrics(w io.Writer, ms []metric) {
	for _, m := range ms {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", m.name, m.help, m.name, m.kind, m.name, m.value)
	}
}
