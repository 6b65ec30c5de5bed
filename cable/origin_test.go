package cable_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gocable/gocable/cable"
)

// RailsOrigins.Check follows allow_request_origin?
// (actioncable/lib/action_cable/connection/base.rb) case by case.
func TestRailsOriginsCheck(t *testing.T) {
	rails := cable.RailsOrigins{
		Allowed:  []string{"http://exact.example"},
		Patterns: []*regexp.Regexp{regexp.MustCompile(`^https://[a-z]+\.allowed\.example$`)},
	}
	tests := []struct {
		name    string
		origins cable.RailsOrigins
		origin  string // "" for no header
		header  http.Header
		tls     bool
		want    bool
	}{
		{"zero value: same origin", cable.RailsOrigins{}, "http://cable.example", nil, false, true},
		{"zero value: other origin", cable.RailsOrigins{}, "http://evil.example", nil, false, false},
		{"zero value: no origin", cable.RailsOrigins{}, "", nil, false, false},
		{"same host, other scheme", cable.RailsOrigins{}, "https://cable.example", nil, false, false},
		{"same origin over TLS", cable.RailsOrigins{}, "https://cable.example", nil, true, true},
		{"X-Forwarded-Proto https", cable.RailsOrigins{}, "https://cable.example", http.Header{"X-Forwarded-Proto": {"https, http"}}, false, true},
		{"X-Forwarded-Ssl on", cable.RailsOrigins{}, "https://cable.example", http.Header{"X-Forwarded-Ssl": {"on"}}, false, true},
		{"X-Forwarded-Scheme https", cable.RailsOrigins{}, "https://cable.example", http.Header{"X-Forwarded-Scheme": {"https"}}, false, true},
		{"same origin disabled", cable.RailsOrigins{DisableSameOrigin: true}, "http://cable.example", nil, false, false},
		{"exact entry", rails, "http://exact.example", nil, false, true},
		{"exact entry is exact", rails, "http://exact.example:80", nil, false, false},
		{"pattern entry", rails, "https://app.allowed.example", nil, false, true},
		{"pattern anchored by its author", rails, "https://app.allowed.example.evil", nil, false, false},
		{"entries keep the same origin", rails, "http://cable.example", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://cable.example/cable", nil)
			for k, v := range tt.header {
				r.Header[k] = v
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := tt.origins.Check(r); got != tt.want {
				t.Errorf("Check(Origin %q, %v) = %v; want %v", tt.origin, tt.header, got, tt.want)
			}
		})
	}
}

// A nil CheckOrigin is Rails' default and logs a refusal as Rails does;
// a CheckOrigin that is set logs its own, so the Server says nothing.
func TestOriginRefusalLog(t *testing.T) {
	tests := []struct {
		name    string
		check   func(*http.Request) bool
		wantLog bool
	}{
		{"default rule", nil, true},
		{"own check", cable.RailsOrigins{}.Check, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(s *cable.Server) { s.CheckOrigin = tt.check })
			_, err := ts.tryDial(t, http.Header{"Origin": {"http://evil.example"}})
			if err == nil || !strings.Contains(err.Error(), "404") {
				t.Fatalf("dial = %v; want a 404 refusal", err)
			}
			logged := strings.Contains(ts.Logs.String(), "origin not allowed") && strings.Contains(ts.Logs.String(), "origin=http://evil.example")
			if logged != tt.wantLog {
				t.Errorf("refusal logged %v; want %v:\n%s", logged, tt.wantLog, ts.Logs)
			}
		})
	}
}

// Rails' config.action_cable.allowed_request_origins, carried over:
// Strings stay strings, a Regexp is written /re/.
func ExampleRailsOrigins() {
	origins, err := cable.ParseOrigins([]string{"https://app.example", `/\Ahttps:\/\/.+\.app\.example\z/`})
	if err != nil {
		log.Fatal(err)
	}
	srv := &cable.Server{CheckOrigin: origins.Check}
	_ = srv // mount it: http.Handle("/cable", srv)

	for _, origin := range []string{"https://app.example", "https://eu.app.example", "https://evil.example"} {
		r := httptest.NewRequest("GET", "https://cable.example/cable", nil)
		r.Header.Set("Origin", origin)
		fmt.Println(origin, origins.Check(r))
	}
	// Output:
	// https://app.example true
	// https://eu.app.example true
	// https://evil.example false
}

// Ruby's regexp flags i and m, \Z, \/ and an escaped backslash before A
// are read as Ruby reads them; what Go cannot honour is an error, never a
// pattern that silently matches nothing.
func TestParseOriginsRubySyntax(t *testing.T) {
	tests := []struct {
		entry   string
		origin  string
		match   bool
		wantErr bool
	}{
		{`/\Ahttps:\/\/app\.example\z/i`, "HTTPS://APP.EXAMPLE", true, false},
		{`/\Ahttps:\/\/app\.example\z/`, "HTTPS://APP.EXAMPLE", false, false},
		{`/\Ahttps:\/\/a{1,3}\.example\Z/`, "https://aa.example", true, false},
		{`/x\\Ay/`, `x\Ay`, true, false},
		{`/x\\Ay/`, "xy", false, false},
		{`/app/m`, "https://app.example", true, false},
		{`/app/x`, "", false, true},
		{`/app/o`, "", false, true},
		{`/app`, "", false, true},
		{`/(/`, "", false, true},
	}
	for _, tt := range tests {
		o, err := cable.ParseOrigins([]string{tt.entry})
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseOrigins(%q) error = %v; want error %v", tt.entry, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		r := httptest.NewRequest("GET", "http://cable.example/cable", nil)
		r.Header.Set("Origin", tt.origin)
		if got := o.Check(r); got != tt.match {
			t.Errorf("ParseOrigins(%q).Check(Origin %q) = %v; want %v", tt.entry, tt.origin, got, tt.match)
		}
	}
}
