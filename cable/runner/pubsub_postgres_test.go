package runner

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
)

// postgresTestURL is the PostgreSQL of the runner's tests: PGPUBSUB_TEST_URL,
// else the machine's own server (trust auth, database test).
func postgresTestURL() string {
	if u := os.Getenv("PGPUBSUB_TEST_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

func TestPostgresResolve(t *testing.T) {
	pgYML := writeFile(t, "cable.yml", "production:\n  adapter: postgresql\n  channel_prefix: app_production\n")
	pgURLYML := writeFile(t, "cable.yml", "production:\n  adapter: postgresql\n  url: postgres://db.example/app\n")
	redisYML := writeFile(t, "cable.yml", "production:\n  adapter: redis\n  url: redis://r:6379\n")
	asyncYML := writeFile(t, "cable.yml", "production:\n  adapter: async\n")
	// An app whose cable.yml names no url: Rails' adapter takes Active
	// Record's primary database from config/database.yml.
	app := t.TempDir()
	if err := os.MkdirAll(filepath.Join(app, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	appYML := filepath.Join(app, "config", "cable.yml")
	for name, content := range map[string]string{
		"cable.yml": "production:\n  adapter: postgresql\n",
		"database.yml": "default: &default\n  adapter: postgresql\n  username: app\n" +
			"production:\n  <<: *default\n  host: db.internal\n  port: 5433\n  database: app_production\n",
	} {
		if err := os.WriteFile(filepath.Join(app, "config", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		args       []string
		env        envMap
		wantURL    string
		wantPrefix string // "(nil)" for none
	}{
		{"cable.yml, DATABASE_URL", []string{"--cable-config", pgYML, "--env", "production"},
			envMap{"DATABASE_URL": "postgres://from-env/app"}, "postgres://from-env/app", "app_production"},
		{"cable.yml url wins over the environment", []string{"--cable-config", pgURLYML, "--env", "production"},
			envMap{"DATABASE_URL": "postgres://from-env/app", "GOCABLE_POSTGRES_URL": "postgres://gocable-env/app"}, "postgres://db.example/app", "(nil)"},
		{"GOCABLE_POSTGRES_URL before DATABASE_URL", []string{"--cable-config", pgYML, "--env", "production"},
			envMap{"DATABASE_URL": "postgres://from-env/app", "GOCABLE_POSTGRES_URL": "postgres://gocable-env/app"}, "postgres://gocable-env/app", "app_production"},
		{"flag wins over cable.yml", []string{"--cable-config", pgURLYML, "--env", "production", "--postgres-url", "postgres://flag/app", "--channel-prefix", "p"},
			nil, "postgres://flag/app", "p"},
		{"flag over a redis cable.yml", []string{"--cable-config", redisYML, "--env", "production", "--postgres-url", "postgres://flag/app"},
			nil, "postgres://flag/app", "(nil)"},
		{"flag over an in-process cable.yml", []string{"--cable-config", asyncYML, "--env", "production", "--postgres-url", "postgres://flag/app"},
			nil, "postgres://flag/app", "(nil)"},
		{"flag alone", []string{"--postgres-url", "postgres://flag/app"},
			envMap{"CABLE_CHANNEL_PREFIX": "e", "REDIS_URL": "redis://ignored"}, "postgres://flag/app", "e"},
		{"config/database.yml's primary", []string{"--cable-config", appYML, "--env", "production"},
			envMap{"GOCABLE_POSTGRES_URL": "postgres://gocable-env/app"}, "postgres://app@db.internal:5433/app_production?connect_timeout=5", "(nil)"},
		{"DATABASE_URL merged into database.yml's primary", []string{"--cable-config", appYML, "--env", "production"},
			envMap{"DATABASE_URL": "postgres://env-host/env_db"}, "postgres://app@env-host:5433/env_db?connect_timeout=5", "(nil)"}, // the port stays: Rails merges the URL over the keys
		{"environment alone", nil,
			envMap{"GOCABLE_POSTGRES_URL": "postgres://gocable-env/app"}, "postgres://gocable-env/app", "(nil)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newPubsubConfig(t, tt.args, tt.env)
			s, _, _, err := c.resolve()
			if err != nil || s == nil {
				t.Fatalf("resolve = %v, %v; want PostgreSQL settings", s, err)
			}
			prefix := "(nil)"
			if s.ChannelPrefix != nil {
				prefix = *s.ChannelPrefix
			}
			if s.Adapter != "postgresql" || s.URL != tt.wantURL || prefix != tt.wantPrefix {
				t.Errorf("resolve = adapter %q url %q prefix %q; want postgresql %q %q", s.Adapter, s.URL, prefix, tt.wantURL, tt.wantPrefix)
			}
		})
	}

	// A redis cable.yml is not overridden by the environment variable.
	c := newPubsubConfig(t, []string{"--cable-config", redisYML, "--env", "production"}, envMap{"GOCABLE_POSTGRES_URL": "postgres://x/y"})
	if s, _, _, err := c.resolve(); err != nil || s.Adapter != "redis" {
		t.Errorf("resolve(redis cable.yml, GOCABLE_POSTGRES_URL) = %+v, %v; want redis", s, err)
	}
}

func TestPostgresResolveErrors(t *testing.T) {
	pgYML := writeFile(t, "cable.yml", "production:\n  adapter: postgresql\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no database", []string{"--cable-config", pgYML, "--env", "production"}, "the postgresql adapter needs a database"},
		{"both adapters", []string{"--postgres-url", "postgres://a/b", "--redis-url", "redis://c"}, "give one"},
		{"bad url", []string{"--postgres-url", "postgres://u:hunter2@h:notaport/db"}, "pgpubsub: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newPubsubConfig(t, tt.args, nil)
			ps, _, closeFn, err := c.pubsub(slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				_ = closeFn()
				t.Fatalf("pubsub(%q) = %v; want an error containing %q", tt.args, ps, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("pubsub(%q) error = %q; want it to contain %q and no password", tt.args, err, tt.wantErr)
			}
		})
	}
}

// TestRunPostgres runs gocable with --postgres-url against the real
// database: a NOTIFY sent as Rails' adapter sends it reaches a WebSocket
// client, /health reports the pub/sub up, and a /_broadcast too large for
// NOTIFY is refused with a message saying so.
func TestRunPostgres(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	raw, err := pgx.Connect(ctx, postgresTestURL())
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	defer raw.Close(context.Background())
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := "run" + hex.EncodeToString(b)
	secret := strings.Repeat("s", 32)

	ready := make(chan string, 1)
	done := make(chan error, 1)
	args := []string{"--addr", "127.0.0.1:0", "--disable-forgery-protection", "--log-level", "error",
		"--postgres-url", postgresTestURL(), "--channel-prefix", prefix, "--channels", "chat", "--broadcast-secret", secret}
	go func() { done <- run(ctx, args, io.Discard, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	defer func() {
		cancel()
		<-done
	}()

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	read := func() string {
		t.Helper()
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(msg, []byte(`"type":"ping"`)) {
				return string(msg)
			}
		}
	}
	if m := read(); m != `{"type":"welcome"}` {
		t.Fatalf("first frame %s", m)
	}
	id := `{"channel":"ChatChannel","room":"lobby"}`
	_ = ws.WriteJSON(map[string]string{"command": "subscribe", "identifier": id})
	if m := read(); !strings.Contains(m, "confirm_subscription") {
		t.Fatalf("got %s; want confirm_subscription", m)
	}
	// What ActionCable.server.broadcast("chat_lobby", {body: "hi"}) sends.
	if _, err := raw.Exec(ctx, `NOTIFY "`+prefix+`:chat_lobby", '{"body":"hi"}'`); err != nil {
		t.Fatal(err)
	}
	if m, want := read(), `{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}","message":{"body":"hi"}}`; m != want {
		t.Errorf("got %s; want %s", m, want)
	}

	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || health["pubsub"] != "ok" {
		t.Errorf("/health = %d %v; want 200 and pubsub ok", resp.StatusCode, health)
	}

	big := `{"stream":"chat_lobby","data":{"body":"` + strings.Repeat("x", 9000) + `"}}`
	req, _ := http.NewRequest("POST", "http://"+addr+"/_broadcast", strings.NewReader(big))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 || !strings.Contains(string(body), "payload too large for NOTIFY") {
		t.Errorf("/_broadcast of 9,000 bytes = %d %s; want an error naming the NOTIFY limit", resp.StatusCode, body)
	}
}

// TestRunPostgresDown: with the database down, gocable starts, serves
// WebSocket clients, and /health answers 503 with the pub/sub down.
func TestRunPostgresDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args := []string{"--addr", "127.0.0.1:0", "--disable-forgery-protection", "--log-level", "error",
		"--postgres-url", "postgres://postgres@" + dead + "/test?sslmode=disable"}
	go func() { done <- run(ctx, args, io.Discard, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err != nil {
			t.Fatal(err)
		}
		var health map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&health)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && health["pubsub"] == "down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health = %d %v; want 503 and pubsub down", resp.StatusCode, health)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != `{"type":"welcome"}` {
		t.Fatalf("first frame %s, %v", msg, err)
	}
}
