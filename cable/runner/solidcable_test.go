package runner

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/solidcable"
	"github.com/gorilla/websocket"
)

// newRailsApp lays out a Rails 8 app's config/cable.yml and
// config/database.yml (SQLite), as `rails new` writes them, in a temporary
// directory, and makes the cable database's table as the gem's
// cable_schema.rb does. It returns the app's root and the cable database.
func newRailsApp(t *testing.T) (root string, db *sql.DB) {
	t.Helper()
	root = t.TempDir()
	fixtures := filepath.Join("..", "..", "testdata", "rails", "solid_cable")
	for src, dst := range map[string]string{"cable.yml": "config/cable.yml", "database.sqlite3.yml": "config/database.yml"} {
		b, err := os.ReadFile(filepath.Join(fixtures, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "storage"), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(root, "storage", "production_cable.sqlite3")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := solidcable.CreateTable(ctx, db, solidcable.SQLite, ""); err != nil {
		t.Fatal(err)
	}
	return root, db
}

// railsBroadcast writes a message as SolidCable::Message.broadcast does.
func railsBroadcast(t *testing.T, db *sql.DB, channel, payload string) {
	t.Helper()
	_, err := db.Exec(`INSERT INTO "solid_cable_messages" ("created_at","channel","payload","channel_hash") VALUES (?, ?, ?, ?)`,
		solidcable.CreatedAt(time.Now()), []byte(channel), []byte(payload), solidcable.ChannelHash(channel))
	if err != nil {
		t.Fatal(err)
	}
}

// A cable.yml with adapter solid_cable builds the Solid Cable pub/sub on
// the database that config/database.yml names, beside it.
func TestPubsubSolidCable(t *testing.T) {
	root, db := newRailsApp(t)
	c := newPubsubConfig(t, []string{"--cable-config", filepath.Join(root, "config", "cable.yml"), "--env", "production"}, envMap{})
	logs := new(bytes.Buffer)
	ps, state, closeFn, err := c.pubsub(slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 1)
	unsub, err := ps.Subscribe(ctx, "chat_1", func(p []byte) { got <- string(p) })
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); state() != "ok"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("state() = %q; want ok", state())
		}
	}
	railsBroadcast(t, db, "chat_1", `{"a":1}`)
	select {
	case p := <-got:
		if p != `{"a":1}` {
			t.Errorf("delivered %q", p)
		}
	case <-ctx.Done():
		t.Fatal("no delivery")
	}
	unsub()
	if err := closeFn(); err != nil {
		t.Errorf("closeFn() = %v", err)
	}
	if s := state(); s != "closed" {
		t.Errorf("state() after closeFn = %q; want closed", s)
	}
	for _, want := range []string{"gocable: solid_cable pub/sub", "storage/production_cable.sqlite3", "polling_interval=100ms", "message_retention=24h0m0s"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// Errors name the file and what to do: no database.yml beside cable.yml,
// a database.yml without the cable database.
func TestPubsubSolidCableErrors(t *testing.T) {
	root, _ := newRailsApp(t)
	cableYML := filepath.Join(root, "config", "cable.yml")
	c := newPubsubConfig(t, []string{"--cable-config", cableYML, "--env", "production", "--app-root", t.TempDir()}, envMap{})
	_, _, _, err := c.pubsub(slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "config/database.yml: no such file") || !strings.Contains(err.Error(), "--app-root") {
		t.Errorf("no database.yml: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "config", "database.yml"), []byte("production:\n  adapter: sqlite3\n  database: storage/production.sqlite3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = newPubsubConfig(t, []string{"--cable-config", cableYML, "--env", "production"}, envMap{})
	_, _, _, err = c.pubsub(slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `no database configuration named "cable" (found: primary)`) {
		t.Errorf("no cable database: %v", err)
	}
	// CABLE_DATABASE_URL stands in for it, as in Rails.
	c = newPubsubConfig(t, []string{"--cable-config", cableYML, "--env", "production"}, envMap{"CABLE_DATABASE_URL": "sqlite3:storage/production_cable.sqlite3"})
	_, _, closeFn, err := c.pubsub(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("with CABLE_DATABASE_URL: %v", err)
	}
	_ = closeFn()
}

// The whole server on a Rails 8 app's files: a message Rails writes to
// the table reaches a WebSocket client, and /health reports the pub/sub.
func TestRunSolidCable(t *testing.T) {
	root, db := newRailsApp(t)
	addr := startWith(t, Options{}, "--cable-config", filepath.Join(root, "config", "cable.yml"), "--env", "production", "--channels", "chat")
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	id, _ := json.Marshal(`{"channel":"ChatChannel","room":"lobby"}`)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":`+string(id)+`}`)); err != nil {
		t.Fatal(err)
	}
	read := func(want string) string {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if strings.Contains(string(msg), want) {
				return string(msg)
			}
		}
	}
	read("confirm_subscription")
	railsBroadcast(t, db, "chat_lobby", `{"user":"rails","message":"hi"}`)
	if got := read("message"); !strings.Contains(got, `"message":{"user":"rails","message":"hi"}`) {
		t.Errorf("got %s", got)
	}
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health: %d %s", resp.StatusCode, body)
	}
}
