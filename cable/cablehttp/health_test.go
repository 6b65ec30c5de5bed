package cablehttp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gocable/gocable/cable/cablehttp"
	"github.com/gocable/gocable/cable/redispubsub"
)

// healthAnswer is the JSON the health endpoint writes.
type healthAnswer struct {
	Status      string `json:"status"`
	PubSub      string `json:"pubsub"`
	Connections int    `json:"connections"`
}

// get serves one GET request and returns the recorded answer.
func get(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

// The status follows the pub/sub state: only "ok" and "memory" are
// healthy; the body has exactly status, pubsub and connections.
func TestHealthPubSubState(t *testing.T) {
	state := func(s string) func() string { return func() string { return s } }
	tests := []struct {
		name       string
		state      func() string
		wantStatus int
		wantPubSub string
	}{
		{"nil is memory", nil, http.StatusOK, "memory"},
		{"memory", state("memory"), http.StatusOK, "memory"},
		{"ok", state("ok"), http.StatusOK, "ok"},
		{"redispubsub's up", state(redispubsub.StateUp.String()), http.StatusOK, "up"},
		{"connecting", state("connecting"), http.StatusServiceUnavailable, "connecting"},
		{"down", state("down"), http.StatusServiceUnavailable, "down"},
		{"closed", state("closed"), http.StatusServiceUnavailable, "closed"},
		{"empty", state(""), http.StatusServiceUnavailable, ""},
		{"case matters", state("OK"), http.StatusServiceUnavailable, "OK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(cablehttp.Health{PubSubState: tc.state}, "/health")
			if rec.Code != tc.wantStatus {
				t.Errorf("status %d; want %d", rec.Code, tc.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
			var keys map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &keys); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			var gotKeys []string
			for k := range keys {
				gotKeys = append(gotKeys, k)
			}
			if len(keys) != 3 || keys["status"] == nil || keys["pubsub"] == nil || keys["connections"] == nil {
				t.Errorf("body keys %v; want connections, pubsub, status", gotKeys)
			}
			var got healthAnswer
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			want := healthAnswer{Status: http.StatusText(tc.wantStatus), PubSub: tc.wantPubSub, Connections: 0}
			if got != want {
				t.Errorf("body %+v; want %+v", got, want)
			}
		})
	}
}

// connections counts the open connections of a real server, and is
// re-read on every request.
func TestHealthConnections(t *testing.T) {
	srv, url := startServer(t)
	h := cablehttp.Health{Server: srv}
	read := func() healthAnswer {
		t.Helper()
		rec := get(h, "/health")
		var a healthAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("body %s: %v", rec.Body, err)
		}
		return a
	}
	if got := read(); got.Connections != 0 {
		t.Fatalf("connections %d before any client; want 0", got.Connections)
	}
	a, b := dial(t, url), dial(t, url)
	a.subscribe()
	b.subscribe()
	want := healthAnswer{Status: "OK", PubSub: "memory", Connections: srv.Stats().Connections}
	if got := read(); got != want || want.Connections != 2 {
		t.Errorf("with two clients: %+v; want %+v with 2 connections", got, want)
	}
	a.ws.Close()
	waitFor(t, "the server to see a client leave", func() bool { return srv.Stats().Connections == 1 })
	if got := read(); got.Connections != 1 {
		t.Errorf("connections %d after one client left; want 1", got.Connections)
	}
}

// Any method gets the report: HEAD and POST probes are common.
func TestHealthMethods(t *testing.T) {
	for _, method := range []string{"GET", "HEAD", "POST"} {
		rec := httptest.NewRecorder()
		cablehttp.Health{}.ServeHTTP(rec, httptest.NewRequest(method, "/health", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s: status %d; want 200", method, rec.Code)
		}
	}
}
