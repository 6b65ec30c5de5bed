package solidcable_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/railsconfig"
	"github.com/gocable/gocable/cable/solidcable"
)

// TestChannelHash checks ChannelHash against Ruby:
// ruby -rdigest -e 'p Digest::SHA256.digest("chat_1").unpack1("q>")'.
func TestChannelHash(t *testing.T) {
	for channel, want := range map[string]int64{
		"chat_1":                  -1934204123788821583,
		"myapp_production:chat_1": 5436408392182857105,
		"x":                       3274422879871479876,
	} {
		if got := solidcable.ChannelHash(channel); got != want {
			t.Errorf("ChannelHash(%q) = %d; want %d", channel, got, want)
		}
	}
}

func TestCreatedAt(t *testing.T) {
	at := time.Date(2026, 12, 8, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
	if got, want := solidcable.CreatedAt(at), "2026-12-08 02:04:05.123456"; got != want {
		t.Errorf("CreatedAt = %q; want %q", got, want)
	}
	// quoted_date appends the microseconds only when there are some.
	if got, want := solidcable.CreatedAt(at.Truncate(time.Second)), "2026-12-08 02:04:05"; got != want {
		t.Errorf("CreatedAt = %q; want %q", got, want)
	}
}

// gemInsert writes a message as SolidCable::Message.broadcast makes
// ActiveRecord (7.2, 8.0) write it: insert({created_at: Time.current,
// channel:, payload:, channel_hash:}), the SQL text of InsertAll with each
// value quoted by the adapter: the time by quoted_date, the binary columns
// as x'..' literals (SQLite, MySQL) or '\x..' (PostgreSQL escape_bytea).
func gemInsert(t testing.TB, db *sql.DB, d solidcable.Dialect, channel, payload string, createdAt time.Time) {
	t.Helper()
	hash := solidcable.ChannelHash(channel)
	at := solidcable.CreatedAt(createdAt)
	var stmt string
	switch d {
	case solidcable.SQLite:
		stmt = fmt.Sprintf(`INSERT INTO "solid_cable_messages" ("created_at","channel","payload","channel_hash") VALUES ('%s', x'%x', x'%x', %d) ON CONFLICT  DO NOTHING RETURNING "id"`, at, channel, payload, hash)
	case solidcable.PostgreSQL:
		stmt = fmt.Sprintf(`INSERT INTO "solid_cable_messages" ("created_at","channel","payload","channel_hash") VALUES ('%s', '\x%s', '\x%s', %d) ON CONFLICT  DO NOTHING RETURNING "id"`, at, hex.EncodeToString([]byte(channel)), hex.EncodeToString([]byte(payload)), hash)
	case solidcable.MySQL:
		stmt = fmt.Sprintf("INSERT IGNORE INTO `solid_cable_messages` (`created_at`,`channel`,`payload`,`channel_hash`) VALUES ('%s', x'%x', x'%x', %d)", at, channel, payload, hash)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, stmt)
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	_ = rows.Close()
}

// newPubSub makes a PubSub on db that the test closes.
func newPubSub(t testing.TB, db *sql.DB, d solidcable.Dialect, cfg solidcable.Config) *solidcable.PubSub {
	t.Helper()
	cfg.DB, cfg.Dialect = db, d
	if cfg.PollingInterval == 0 {
		cfg.PollingInterval = 20 * time.Millisecond
	}
	ps, err := solidcable.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ps.Close() })
	waitFor(t, 10*time.Second, "state up", func() bool { return ps.State() == solidcable.StateUp })
	return ps
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inbox collects what a deliver function receives.
type inbox struct {
	mu  sync.Mutex
	got []string
	ch  chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1000)} }

func (b *inbox) deliver(p []byte) {
	b.mu.Lock()
	b.got = append(b.got, string(p))
	b.mu.Unlock()
	select {
	case b.ch <- struct{}{}:
	default:
	}
}

func (b *inbox) messages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

func (b *inbox) waitN(t testing.TB, n int, d time.Duration) []string {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("%d messages", n), func() bool { return len(b.messages()) >= n })
	return b.messages()
}

func eachDialect(t *testing.T, f func(t *testing.T, tdb *testDB)) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) { f(t, newTestDB(t, d)) })
	}
}

// TestGemRowsDelivered: rows written as the gem writes them reach the
// subscribers of their stream, with the channel_prefix, in id order;
// rows of other channels, rows written before the subscription, and a row
// of another channel that has the same hash do not.
func TestGemRowsDelivered(t *testing.T) {
	eachDialect(t, func(t *testing.T, tdb *testDB) {
		db := tdb.open(t)
		rails := tdb.open(t)
		gemInsert(t, rails, tdb.dialect, "myapp_production:chat_1", `{"before":true}`, time.Now())
		ps := newPubSub(t, db, tdb.dialect, solidcable.Config{ChannelPrefix: new("myapp_production")})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		box, other := newInbox(), newInbox()
		unsub, err := ps.Subscribe(ctx, "chat_1", box.deliver)
		if err != nil {
			t.Fatal(err)
		}
		defer unsub()
		unsub2, err := ps.Subscribe(ctx, "chat_2", other.deliver)
		if err != nil {
			t.Fatal(err)
		}
		defer unsub2()

		gemInsert(t, rails, tdb.dialect, "myapp_production:chat_1", `{"body":"hi"}`, time.Now())
		gemInsert(t, rails, tdb.dialect, "myapp_production:chat_3", `{"body":"not yours"}`, time.Now())
		gemInsert(t, rails, tdb.dialect, "chat_1", `{"body":"no prefix"}`, time.Now())
		// Another channel stored with chat_1's hash, as a collision would.
		_, err = rails.ExecContext(ctx, insertText(tdb.dialect),
			solidcable.CreatedAt(time.Now()), []byte("myapp_production:collider"), []byte(`{"collision":1}`), solidcable.ChannelHash("myapp_production:chat_1"))
		if err != nil {
			t.Fatal(err)
		}
		gemInsert(t, rails, tdb.dialect, "myapp_production:chat_1", `{"body":"again"}`, time.Now())
		gemInsert(t, rails, tdb.dialect, "myapp_production:chat_2", `{"body":"two"}`, time.Now())

		box.waitN(t, 2, 10*time.Second)
		other.waitN(t, 1, 10*time.Second)
		time.Sleep(100 * time.Millisecond) // a few more polls: nothing else arrives
		if got := box.messages(); strings.Join(got, " ") != `{"body":"hi"} {"body":"again"}` {
			t.Errorf("chat_1 got %q", got)
		}
		if got := other.messages(); strings.Join(got, " ") != `{"body":"two"}` {
			t.Errorf("chat_2 got %q", got)
		}
	})
}

// insertText writes a row with the driver's parameters.
func insertText(d solidcable.Dialect) string {
	if d == solidcable.PostgreSQL {
		return "INSERT INTO solid_cable_messages (created_at, channel, payload, channel_hash) VALUES ($1, $2, $3, $4)"
	}
	return "INSERT INTO solid_cable_messages (created_at, channel, payload, channel_hash) VALUES (?, ?, ?, ?)"
}

// TestPublishWritesGemRows: Publish writes the row the gem's broadcast
// writes, which the gem's own listener query (broadcastable) reads back.
func TestPublishWritesGemRows(t *testing.T) {
	eachDialect(t, func(t *testing.T, tdb *testDB) {
		db := tdb.open(t)
		ps := newPubSub(t, db, tdb.dialect, solidcable.Config{ChannelPrefix: new("myapp_production"), NoAutotrim: true})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		before := time.Now().UTC().Add(-time.Second)
		if err := ps.Publish(ctx, "chat_1", []byte(`{"body":"from go"}`)); err != nil {
			t.Fatal(err)
		}
		after := time.Now().UTC().Add(time.Second)

		// The listener's query, as ActiveRecord writes it for
		// broadcastable(["myapp_production:chat_1"], 0).
		var q string
		switch tdb.dialect {
		case solidcable.SQLite:
			q = `SELECT channel, payload, channel_hash, created_at, typeof(channel), typeof(payload), typeof(created_at) FROM "solid_cable_messages" WHERE "solid_cable_messages"."channel_hash" = 5436408392182857105 AND "solid_cable_messages"."id" >= 1 ORDER BY "solid_cable_messages"."id" ASC`
		case solidcable.PostgreSQL:
			q = `SELECT channel, payload, channel_hash, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US'), 'blob', 'blob', 'text' FROM "solid_cable_messages" WHERE "solid_cable_messages"."channel_hash" = 5436408392182857105 AND "solid_cable_messages"."id" >= 1 ORDER BY "solid_cable_messages"."id" ASC`
		case solidcable.MySQL:
			q = "SELECT channel, payload, channel_hash, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f'), 'blob', 'blob', 'text' FROM `solid_cable_messages` WHERE `solid_cable_messages`.`channel_hash` = 5436408392182857105 AND `solid_cable_messages`.`id` >= 1 ORDER BY `solid_cable_messages`.`id` ASC"
		}
		var channel, payload []byte
		var hash int64
		var createdAt, tChannel, tPayload, tCreated string
		if err := db.QueryRowContext(ctx, q).Scan(&channel, &payload, &hash, &createdAt, &tChannel, &tPayload, &tCreated); err != nil {
			t.Fatal(err)
		}
		if string(channel) != "myapp_production:chat_1" || string(payload) != `{"body":"from go"}` || hash != 5436408392182857105 {
			t.Errorf("row: channel %q payload %q hash %d", channel, payload, hash)
		}
		if tChannel != "blob" || tPayload != "blob" || tCreated != "text" {
			t.Errorf("SQLite storage classes: channel %s, payload %s, created_at %s; want blob, blob, text as ActiveRecord writes them", tChannel, tPayload, tCreated)
		}
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`).MatchString(createdAt) {
			t.Errorf("created_at %q is not as ActiveRecord writes it", createdAt)
		}
		at, err := time.Parse("2006-01-02 15:04:05", createdAt[:19])
		if err != nil || at.Before(before.Truncate(time.Second)) || at.After(after) {
			t.Errorf("created_at %q is not the current UTC time (between %v and %v)", createdAt, before, after)
		}
	})
}

// TestTrim: trimming deletes only messages older than the retention, at
// most a batch at a time, and Publish trims when autotrim is on.
func TestTrim(t *testing.T) {
	eachDialect(t, func(t *testing.T, tdb *testDB) {
		db := tdb.open(t)
		rails := tdb.open(t)
		for i := range 5 {
			gemInsert(t, rails, tdb.dialect, "old", fmt.Sprintf(`{"old":%d}`, i), time.Now().Add(-2*time.Hour))
		}
		gemInsert(t, rails, tdb.dialect, "edge", `{"edge":1}`, time.Now().Add(-59*time.Minute))
		gemInsert(t, rails, tdb.dialect, "new", `{"new":1}`, time.Now())
		ps := newPubSub(t, db, tdb.dialect, solidcable.Config{MessageRetention: time.Hour, TrimBatchSize: 3, NoAutotrim: true})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := ps.Trim(ctx)
		if err != nil || n != 3 {
			t.Fatalf("Trim = %d, %v; want 3 (one batch)", n, err)
		}
		if n, err = ps.Trim(ctx); err != nil || n != 2 {
			t.Fatalf("Trim = %d, %v; want 2", n, err)
		}
		if n, err = ps.Trim(ctx); err != nil || n != 0 {
			t.Fatalf("Trim = %d, %v; want 0", n, err)
		}
		if got := channels(t, db); got != "edge new" {
			t.Errorf("left: %s; want edge new", got)
		}

		// Autotrim: with a batch size of 2 the gem's formula never
		// trims; gocable trims on every write then.
		for i := range 3 {
			gemInsert(t, rails, tdb.dialect, "old", fmt.Sprintf(`{"old":%d}`, i), time.Now().Add(-2*time.Hour))
		}
		auto := newPubSub(t, db, tdb.dialect, solidcable.Config{MessageRetention: time.Hour, TrimBatchSize: 2})
		if err := auto.Publish(ctx, "new", []byte(`{"new":2}`)); err != nil {
			t.Fatal(err)
		}
		if err := auto.Publish(ctx, "new", []byte(`{"new":3}`)); err != nil {
			t.Fatal(err)
		}
		if got := channels(t, db); got != "edge new new new" {
			t.Errorf("after autotrim: %s; want edge new new new", got)
		}
	})
}

// channels lists the channel of every row, in id order.
func channels(t testing.TB, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query("SELECT channel FROM solid_cable_messages ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c []byte
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		out = append(out, string(c))
	}
	return strings.Join(out, " ")
}

// TestBounds: a payload over MaxPayload is refused by Publish, and a
// longer row written by someone else is skipped with a log line while the
// rows after it are delivered.
func TestBounds(t *testing.T) {
	tdb := newTestDB(t, solidcable.SQLite)
	db := tdb.open(t)
	var logs syncBuffer
	ps := newPubSub(t, db, tdb.dialect, solidcable.Config{MaxPayload: 100, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	box := newInbox()
	unsub, err := ps.Subscribe(ctx, "s", box.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	big := `{"x":"` + strings.Repeat("a", 200) + `"}`
	if err := ps.Publish(ctx, "s", []byte(big)); !errors.Is(err, solidcable.ErrTooLarge) {
		t.Fatalf("Publish of %d bytes: %v; want ErrTooLarge", len(big), err)
	}
	gemInsert(t, db, tdb.dialect, "s", big, time.Now())
	if err := ps.Publish(ctx, "s", []byte(`{"small":1}`)); err != nil {
		t.Fatal(err)
	}
	if got := box.waitN(t, 1, 10*time.Second); got[0] != `{"small":1}` {
		t.Errorf("got %q", got)
	}
	if !strings.Contains(logs.String(), "payload longer than MaxPayload") {
		t.Errorf("no log line for the skipped row: %s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer for a logger used by several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOpenSQLitePath: the SQLite file is the database.yml path taken
// against the app root, written as it is, even with characters that a
// file: URI would read otherwise.
func TestOpenSQLitePath(t *testing.T) {
	root := filepath.Join(t.TempDir(), "my app %41 #1")
	if err := os.MkdirAll(filepath.Join(root, "storage"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &railsconfig.Database{Adapter: "sqlite3", Database: "storage/production_cable.sqlite3", Params: map[string]string{}}
	db, d, err := solidcable.Open(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := solidcable.CreateTable(ctx, db, d, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "storage", "production_cable.sqlite3")); err != nil {
		t.Errorf("the database is not at the configured path: %v", err)
	}
	cfg.Database = "storage/what?.sqlite3"
	if _, _, err := solidcable.Open(cfg, root); err == nil || !strings.Contains(err.Error(), `has a "?"`) {
		t.Errorf("a path with ?: %v", err)
	}
	cfg.Adapter = "oracle_enhanced"
	if _, _, err := solidcable.Open(cfg, root); err == nil || !strings.Contains(err.Error(), `adapter "oracle_enhanced" is not supported`) {
		t.Errorf("unknown adapter: %v", err)
	}
}

// TestMaxRowsPerPoll: a backlog larger than MaxRowsPerPoll is read in
// several polls, one right after the other, in order, with one warning.
func TestMaxRowsPerPoll(t *testing.T) {
	tdb := newTestDB(t, solidcable.SQLite)
	db := tdb.open(t)
	var logs syncBuffer
	ps := newPubSub(t, db, tdb.dialect, solidcable.Config{MaxRowsPerPoll: 10, PollingInterval: time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	box := newInbox()
	unsub, err := ps.Subscribe(ctx, "s", box.deliver)
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 35 {
		p := fmt.Sprintf(`{"n":%d}`, i)
		want = append(want, p)
		if _, err := tx.ExecContext(ctx, insertText(tdb.dialect), solidcable.CreatedAt(time.Now()), []byte("s"), []byte(p), solidcable.ChannelHash("s")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := box.waitN(t, 35, 5*time.Second)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %q", got)
	}
	// Four polls of at most 10 rows, without waiting a 1s interval
	// between them.
	if d := time.Since(start); d > 2500*time.Millisecond { // at most one interval, then no waiting; waiting would take 3s more
		t.Errorf("the backlog took %v: the polls after a full one waited for the interval", d)
	}
	if n := strings.Count(logs.String(), "MaxRowsPerPoll"); n != 1 {
		t.Errorf("the MaxRowsPerPoll warning was logged %d times; want once:\n%s", n, logs.String())
	}
}

// TestFirstMessageAfterNew: a message published right after New and a
// first Subscribe is delivered even when the listener's own first query
// runs after the write (it must not start past the stream's last id), and
// a stream subscribed while a poll for other streams runs gets the rows
// that poll read past its last id.
func TestFirstMessageAfterNew(t *testing.T) {
	tdb := newTestDB(t, solidcable.SQLite)
	db := tdb.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 100 {
		ps, err := solidcable.New(solidcable.Config{DB: db, PollingInterval: 5 * time.Millisecond, NoAutotrim: true})
		if err != nil {
			t.Fatal(err)
		}
		box := newInbox()
		other := newInbox()
		unsubOther, err := ps.Subscribe(ctx, fmt.Sprintf("busy_%d", i), other.deliver)
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.Publish(ctx, fmt.Sprintf("busy_%d", i), []byte(`{"busy":1}`)); err != nil {
			t.Fatal(err)
		}
		unsub, err := ps.Subscribe(ctx, fmt.Sprintf("s_%d", i), box.deliver)
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.Publish(ctx, fmt.Sprintf("busy_%d", i), []byte(`{"busy":2}`)); err != nil {
			t.Fatal(err)
		}
		if err := ps.Publish(ctx, fmt.Sprintf("s_%d", i), []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
		box.waitN(t, 1, 5*time.Second)
		other.waitN(t, 2, 5*time.Second)
		unsub()
		unsubOther()
		_ = ps.Close()
	}
}
