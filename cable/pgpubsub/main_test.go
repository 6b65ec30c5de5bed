package pgpubsub_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/internal/leaktest"
	"github.com/gocable/gocable/cable/pgpubsub"
	"github.com/jackc/pgx/v5"
)

// testURL is the PostgreSQL the tests use: PGPUBSUB_TEST_URL, else the
// machine's own server on 127.0.0.1:5432 (trust auth, database test). A
// superuser is needed for pg_terminate_backend.
var testURL = func() string {
	if u := os.Getenv("PGPUBSUB_TEST_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}()

// TestMain fails the run if goroutines outlive the tests: every PubSub a
// test makes must be closed, and Close must leave nothing behind.
func TestMain(m *testing.M) {
	leaktest.Main(m, nil)
}

// requirePostgres fails the test when the database cannot be reached: a
// test that skips proves nothing.
func requirePostgres(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testURL)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)", testURL, err)
	}
	_ = conn.Close(ctx)
}

// uniquePrefix returns a channel prefix of the test's own, so that tests
// sharing the database don't see each other's notifications.
func uniquePrefix(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// newPubSub returns a PubSub on url, closed when the test ends.
func newPubSub(t testing.TB, url string, cfg pgpubsub.Config) *pgpubsub.PubSub {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p, err := pgpubsub.New(url, cfg)
	if err != nil {
		t.Fatalf("New(%q): %v", url, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// rawConn returns a plain connection to the test database, closed when
// the test ends: it plays another PostgreSQL client (Rails' NOTIFY, psql).
func rawConn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// sink collects delivered payloads.
type sink chan []byte

func newSink() sink { return make(sink, 10000) }

// deliver copies payload into the sink; it never blocks.
func (s sink) deliver(payload []byte) {
	select {
	case s <- bytes.Clone(payload):
	default:
	}
}

// next returns the next payload, or fails the test after timeout.
func (s sink) next(t testing.TB, timeout time.Duration) []byte {
	t.Helper()
	select {
	case p := <-s:
		return p
	case <-time.After(timeout):
		t.Fatalf("no message within %v", timeout)
		return nil
	}
}

// none fails the test if a payload arrives within d.
func (s sink) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case p := <-s:
		t.Fatalf("unexpected message %q", p)
	case <-time.After(d):
	}
}

func subscribe(t testing.TB, p *pgpubsub.PubSub, stream string, deliver func([]byte)) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unsub, err := p.Subscribe(ctx, stream, deliver)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", stream, err)
	}
	return unsub
}

func publish(t testing.TB, p *pgpubsub.PubSub, stream string, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Publish(ctx, stream, []byte(payload)); err != nil {
		t.Fatalf("Publish(%q): %v", stream, err)
	}
}

// waitState waits up to d for p to reach want.
func waitState(t testing.TB, p *pgpubsub.PubSub, want pgpubsub.State, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for p.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("state %v after %v; want %v", p.State(), d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count returns how many lines contain s.
func (l *logBuffer) count(s string) int {
	return strings.Count(l.String(), s)
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
