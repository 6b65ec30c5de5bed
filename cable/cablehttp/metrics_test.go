package cablehttp_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/cablehttp"
)

// sample is one parsed sample of the text exposition format.
type sample struct {
	help, kind string
	value      float64
}

var (
	helpLine   = regexp.MustCompile(`^# HELP (\w+) (.+)$`)
	typeLine   = regexp.MustCompile(`^# TYPE (\w+) (gauge|counter)$`)
	sampleLine = regexp.MustCompile(`^(\w+)(\{\w+="[^"]*"\})? (\S+)$`)
)

// parseMetrics reads the text format strictly: every sample comes after
// its HELP and TYPE lines, and no sample appears twice. A labelled sample
// is keyed name{label="value"}.
func parseMetrics(t *testing.T, body string) (map[string]sample, []string) {
	t.Helper()
	got := make(map[string]sample)
	var order []string
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	for i := 0; i < len(lines); {
		if i+2 >= len(lines) {
			t.Fatalf("lines %d-: want HELP, TYPE and a sample:\n%s", i+1, body)
		}
		h, ty := helpLine.FindStringSubmatch(lines[i]), typeLine.FindStringSubmatch(lines[i+1])
		if h == nil || ty == nil || h[1] != ty[1] {
			t.Fatalf("lines %d-%d are not HELP and TYPE of one metric:\n%s", i+1, i+2, strings.Join(lines[i:i+2], "\n"))
		}
		i += 2
		n := 0
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "#"); i++ {
			s := sampleLine.FindStringSubmatch(lines[i])
			if s == nil || s[1] != h[1] {
				t.Fatalf("line %d is not a sample of %s: %s", i+1, h[1], lines[i])
			}
			v, err := strconv.ParseFloat(s[3], 64)
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			key := s[1] + s[2]
			if _, dup := got[key]; dup {
				t.Fatalf("%s appears twice", key)
			}
			got[key] = sample{help: h[2], kind: ty[2], value: v}
			order = append(order, key)
			n++
		}
		if n == 0 {
			t.Fatalf("%s has no sample", h[1])
		}
	}
	return got, order
}

// Every counter of a real server is served under its name, type and help
// text (what dashboards and alerts are written against), with the
// server's value.
func TestMetricsStats(t *testing.T) {
	srv, url := startServer(t)
	// Make the counters differ: two clients on one stream, a refused
	// one, a bad command and a broadcast; then one client leaves.
	a, b := dial(t, url), dial(t, url)
	a.subscribe()
	b.subscribe()
	dial(t, url+"?reject=1").expect(`"reason":"unauthorized"`)
	a.send(`not json`)
	waitFor(t, "the bad command to be counted", func() bool { return srv.Stats().ProtocolErrorsTotal == 1 })
	if err := srv.Broadcast(context.Background(), "echo", "x"); err != nil {
		t.Fatal(err)
	}
	a.expect(`"message":"x"`)
	b.expect(`"message":"x"`)
	b.ws.Close()
	waitFor(t, "the server to see a client leave", func() bool { return srv.Stats().Connections == 1 })

	before := srv.Stats()
	rec := get(cablehttp.Metrics{Server: srv}, "/metrics")
	after := srv.Stats()
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	got, order := parseMetrics(t, rec.Body.String())

	field := func(f func(cable.Stats) float64) [2]float64 { return [2]float64{f(before), f(after)} }
	tests := []struct {
		name, kind, help string
		want             [2]float64 // the value lies in [want[0], want[1]]
	}{
		{"gocable_connections", "gauge", "Open client connections.", field(func(s cable.Stats) float64 { return float64(s.Connections) })},
		{"gocable_streams", "gauge", "Streams this node is subscribed to in the pub/sub.", field(func(s cable.Stats) float64 { return float64(s.Streams) })},
		{"gocable_pubsub_up", "gauge", "1 if the pub/sub is reachable.", [2]float64{1, 1}},
		{"gocable_connections_total", "counter", "Connections accepted.", field(func(s cable.Stats) float64 { return float64(s.ConnectionsTotal) })},
		{"gocable_unauthorized_total", "counter", "Connections refused by the authenticator.", field(func(s cable.Stats) float64 { return float64(s.UnauthorizedTotal) })},
		{"gocable_slow_clients_total", "counter", "Connections dropped because their send queue was full.", field(func(s cable.Stats) float64 { return float64(s.SlowClientsTotal) })},
		{"gocable_commands_total", "counter", "Client commands received.", field(func(s cable.Stats) float64 { return float64(s.CommandsTotal) })},
		{"gocable_protocol_errors_total", "counter", "Client commands that could not be carried out.", field(func(s cable.Stats) float64 { return float64(s.ProtocolErrorsTotal) })},
		{"gocable_broadcasts_total", "counter", "Messages received from the pub/sub for a local stream.", field(func(s cable.Stats) float64 { return float64(s.BroadcastsTotal) })},
		{"gocable_frames_total", "counter", "Frames written to clients.", field(func(s cable.Stats) float64 { return float64(s.FramesTotal) })},
		{"gocable_goroutines", "gauge", "Goroutines in the process.", [2]float64{1, 1e6}},
		{"gocable_last_broadcast_received_timestamp_seconds", "gauge", "Unix time of the last message received from the pub/sub for a local stream; 0 if none.",
			field(func(s cable.Stats) float64 { return float64(s.LastBroadcast.UnixNano()) / 1e9 })},
	}
	limitHelp := "Requests and connections refused because they hit a limit, by limit."
	before.LimitHits.Each(func(limit string, n uint64) {
		tests = append(tests, struct {
			name, kind, help string
			want             [2]float64
		}{`gocable_limit_hits_total{limit="` + limit + `"}`, "counter", limitHelp, [2]float64{float64(n), float64(n)}})
	})
	tests = append(tests, []struct {
		name, kind, help string
		want             [2]float64
	}{
		{"gocable_process_resident_memory_bytes", "gauge", "Resident memory of the process in bytes.", [2]float64{1 << 20, 1 << 40}},
		{"gocable_process_open_fds", "gauge", "Open file descriptors of the process.", [2]float64{3, 1e6}},
	}...)
	if len(order) != len(tests) {
		t.Errorf("metrics %v; want %d", order, len(tests))
	}
	for i, tc := range tests {
		if i < len(order) && order[i] != tc.name {
			t.Errorf("metric %d is %s; want %s", i, order[i], tc.name)
		}
		s, ok := got[tc.name]
		switch {
		case !ok:
			t.Errorf("%s missing", tc.name)
		case s.kind != tc.kind || s.help != tc.help:
			t.Errorf("%s: %s %q; want %s %q", tc.name, s.kind, s.help, tc.kind, tc.help)
		case s.value < tc.want[0] || s.value > tc.want[1]:
			t.Errorf("%s = %g; want %g (to %g)", tc.name, s.value, tc.want[0], tc.want[1])
		}
	}
	// The scenario above must have made the counters non-zero, or the
	// comparison proves little.
	if before.UnauthorizedTotal == 0 || before.ProtocolErrorsTotal == 0 || before.BroadcastsTotal == 0 || before.ConnectionsTotal == uint64(before.Connections) {
		t.Errorf("scenario left counters at rest: %+v", before)
	}
}

// fixedStats is a StatsSource that always reports the same counters.
type fixedStats cable.Stats

func (f fixedStats) Stats() cable.Stats { return cable.Stats(f) }

// Each counter is served under its own name: with every field distinct,
// a sample showing another field's value is caught.
func TestMetricsFieldNames(t *testing.T) {
	st := cable.Stats{Connections: 2, Streams: 3, ConnectionsTotal: 5, UnauthorizedTotal: 7, SlowClientsTotal: 11,
		CommandsTotal: 13, ProtocolErrorsTotal: 17, BroadcastsTotal: 19, FramesTotal: 1 << 40,
		LimitHits: cable.LimitHits{Subscriptions: 23, IdentifierBytes: 29, Commands: 31, ProtocolErrors: 37,
			ClientPings: 41, PeerTimeout: 43, SendQueueBytes: 47, OriginHeaders: 53, MessageSize: 59, PendingCommands: 61,
			MaxConnections: 67, ConnectionRate: 71, HTTPReadTimeout: 73, HTTPWriteTimeout: 79}}
	rec := get(cablehttp.Metrics{Server: fixedStats(st)}, "/metrics")
	got, _ := parseMetrics(t, rec.Body.String())
	for name, want := range map[string]float64{
		"gocable_connections":                                  float64(st.Connections),
		"gocable_streams":                                      float64(st.Streams),
		"gocable_connections_total":                            float64(st.ConnectionsTotal),
		"gocable_unauthorized_total":                           float64(st.UnauthorizedTotal),
		"gocable_slow_clients_total":                           float64(st.SlowClientsTotal),
		"gocable_commands_total":                               float64(st.CommandsTotal),
		"gocable_protocol_errors_total":                        float64(st.ProtocolErrorsTotal),
		"gocable_broadcasts_total":                             float64(st.BroadcastsTotal),
		"gocable_frames_total":                                 float64(st.FramesTotal),
		`gocable_limit_hits_total{limit="subscriptions"}`:      23,
		`gocable_limit_hits_total{limit="identifier_bytes"}`:   29,
		`gocable_limit_hits_total{limit="commands"}`:           31,
		`gocable_limit_hits_total{limit="protocol_errors"}`:    37,
		`gocable_limit_hits_total{limit="client_pings"}`:       41,
		`gocable_limit_hits_total{limit="peer_timeout"}`:       43,
		`gocable_limit_hits_total{limit="send_queue_bytes"}`:   47,
		`gocable_limit_hits_total{limit="origin_headers"}`:     53,
		`gocable_limit_hits_total{limit="message_size"}`:       59,
		`gocable_limit_hits_total{limit="pending_commands"}`:   61,
		`gocable_limit_hits_total{limit="max_connections"}`:    67,
		`gocable_limit_hits_total{limit="connection_rate"}`:    71,
		`gocable_limit_hits_total{limit="http_read_timeout"}`:  73,
		`gocable_limit_hits_total{limit="http_write_timeout"}`: 79,
	} {
		if s, ok := got[name]; !ok || s.value != want {
			t.Errorf("%s = %g (present %v); want %g", name, s.value, ok, want)
		}
	}
}

// gocable_pubsub_up follows the pub/sub state as health does; the zero
// value reports an idle server.
func TestMetricsPubSubUp(t *testing.T) {
	state := func(s string) func() string { return func() string { return s } }
	tests := []struct {
		name   string
		state  func() string
		wantUp float64
	}{
		{"nil is memory", nil, 1},
		{"memory", state("memory"), 1},
		{"ok", state("ok"), 1},
		{"connecting", state("connecting"), 0},
		{"down", state("down"), 0},
		{"closed", state("closed"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(cablehttp.Metrics{PubSubState: tc.state}, "/metrics")
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			got, _ := parseMetrics(t, rec.Body.String())
			if up := got["gocable_pubsub_up"].value; up != tc.wantUp {
				t.Errorf("gocable_pubsub_up = %g; want %g", up, tc.wantUp)
			}
			for name, s := range got {
				if name != "gocable_pubsub_up" && name != "gocable_goroutines" && !strings.HasPrefix(name, "gocable_process_") && s.value != 0 {
					t.Errorf("%s = %g without a Server; want 0", name, s.value)
				}
			}
		})
	}
}
