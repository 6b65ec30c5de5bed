package solidcable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/solidcable"
)

// rubyScript writes and reads the table through ActiveRecord as the gem's
// model does.
var rubyScript = filepath.Join("..", "..", "testdata", "rails", "solid_cable", "message.rb")

// rubyConfig is the ActiveRecord configuration of tdb, as JSON; it skips
// the test when Ruby, ActiveRecord or the adapter's gem is missing
// (apt-get install ruby-activerecord ruby-sqlite3 ruby-pg ruby-mysql2).
func rubyConfig(t *testing.T, tdb *testDB) string {
	t.Helper()
	cfg := map[string]any{"adapter": tdb.cfg.Adapter}
	gem := map[solidcable.Dialect]string{solidcable.SQLite: "sqlite3", solidcable.PostgreSQL: "pg", solidcable.MySQL: "mysql2"}[tdb.dialect]
	switch tdb.dialect {
	case solidcable.SQLite:
		cfg["database"] = tdb.cfg.Path(tdb.appRoot)
	case solidcable.PostgreSQL:
		cfg["host"], cfg["port"], cfg["username"], cfg["database"] = tdb.cfg.Host, tdb.cfg.Port, tdb.cfg.Username, tdb.cfg.Database
		cfg["schema_search_path"] = tdb.cfg.Params["schema_search_path"]
	case solidcable.MySQL:
		cfg["host"], cfg["port"], cfg["username"], cfg["database"] = tdb.cfg.Host, tdb.cfg.Port, tdb.cfg.Username, tdb.cfg.Database
	}
	if out, err := exec.Command("ruby", "-e", `require "active_record"; require "`+gem+`"`).CombinedOutput(); err != nil {
		t.Fatalf("Ruby with ActiveRecord and the %s gem is not installed (apt-get install ruby-activerecord ruby-sqlite3 ruby-pg ruby-mysql2): %v %s", gem, err, out)
	}
	b, _ := json.Marshal(cfg)
	return string(b)
}

func ruby(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ruby", append([]string{rubyScript}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ruby %s: %v\n%s", args[1:], err, stderr.String())
	}
	return string(out)
}

// TestRubyInterop: a message broadcast through ActiveRecord, as the gem's
// model writes it, is delivered by a PubSub; a message a PubSub publishes
// is read back by the gem's broadcastable scope with the same channel,
// payload, channel_hash and created_at.
func TestRubyInterop(t *testing.T) {
	eachDialect(t, func(t *testing.T, tdb *testDB) {
		cfg := rubyConfig(t, tdb)
		db := tdb.open(t)
		ps := newPubSub(t, db, tdb.dialect, solidcable.Config{ChannelPrefix: new("app"), NoAutotrim: true})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		box := newInbox()
		unsub, err := ps.Subscribe(ctx, "chat_1", box.deliver)
		if err != nil {
			t.Fatal(err)
		}
		defer unsub()
		ruby(t, cfg, "broadcast", "app:chat_1", `{"from":"rails","é":"ü"}`)
		if got := box.waitN(t, 1, 10*time.Second); got[0] != `{"from":"rails","é":"ü"}` {
			t.Errorf("delivered %q", got)
		}

		if tdb.dialect == solidcable.SQLite {
			// What ActiveRecord stored is what Publish stores: blobs, and
			// created_at as quoted_date's text.
			var at, tc, tp string
			if err := db.QueryRowContext(ctx, `SELECT created_at, typeof(channel), typeof(payload) FROM solid_cable_messages ORDER BY id LIMIT 1`).Scan(&at, &tc, &tp); err != nil {
				t.Fatal(err)
			}
			if tc != "blob" || tp != "blob" || !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`).MatchString(at) {
				t.Errorf("ActiveRecord stored created_at %q, channel %s, payload %s", at, tc, tp)
			}
		}

		before := time.Now().UTC()
		if err := ps.Publish(ctx, "chat_2", []byte(`{"from":"go"}`)); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(ruby(t, cfg, "read", "app:chat_2")), "\n")
		if len(lines) != 1 {
			t.Fatalf("Rails read %d rows: %q", len(lines), lines)
		}
		var row struct {
			Channel   string `json:"channel"`
			Payload   string `json:"payload"`
			CreatedAt string `json:"created_at"`
			Hash      int64  `json:"channel_hash"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &row); err != nil {
			t.Fatal(err)
		}
		if row.Channel != "app:chat_2" || row.Payload != `{"from":"go"}` || row.Hash != solidcable.ChannelHash("app:chat_2") {
			t.Errorf("Rails read %s", lines[0])
		}
		at, err := time.Parse("2006-01-02 15:04:05.000000", row.CreatedAt)
		if err != nil || at.Before(before.Add(-time.Second)) || at.After(time.Now().UTC().Add(time.Second)) {
			t.Errorf("Rails read created_at %q (%v); want the UTC time of the Publish, %v", row.CreatedAt, err, before)
		}
	})
}
