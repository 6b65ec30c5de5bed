package pgpubsub_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/pgpubsub"
	"github.com/jackc/pgx/v5"
)

func TestChannelNames(t *testing.T) {
	sha := func(s string) string { h := sha1.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	long := strings.Repeat("a", 64)
	e40 := strings.Repeat("é", 40) // 40 characters, 80 bytes
	tests := []struct {
		name    string
		prefix  *string
		byBytes bool
		stream  string
		want    string
	}{
		{"no prefix", nil, false, "chat_1", "chat_1"},
		{"prefix", new("app_production"), false, "chat_1", "app_production:chat_1"},
		{"empty prefix", new(""), false, "chat_1", ":chat_1"},
		{"63 characters", nil, false, long[:63], long[:63]},
		{"64 characters", nil, false, long, sha(long)},
		// The prefix counts: Rails hashes the prefixed name
		// (ChannelPrefix is prepended to the adapter).
		{"prefix makes it long", new("p"), false, long[:62], sha("p:" + long[:62])},
		{"multibyte, by characters", nil, false, e40, e40},
		{"multibyte, by bytes", nil, true, e40, sha(e40)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPubSub(t, "postgres://127.0.0.1:1/none", pgpubsub.Config{ChannelPrefix: tt.prefix, HashByBytes: tt.byBytes})
			if got := p.Channel(tt.stream); got != tt.want {
				t.Errorf("Channel(%q) = %q; want %q", tt.stream, got, tt.want)
			}
		})
	}
}

// TestDelivery: a Publish on one node reaches every subscriber on every
// node with the same prefix, and only them; the notification goes out on
// the channel Rails names, with the payload verbatim.
func TestDelivery(t *testing.T) {
	requirePostgres(t)
	prefix := uniquePrefix(t)
	a := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix})
	b := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix})
	other := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: new(prefix + "x")})
	sa, sb, s2, so := newSink(), newSink(), newSink(), newSink()
	defer subscribe(t, a, "chat_1", sa.deliver)()
	defer subscribe(t, b, "chat_1", sb.deliver)()
	defer subscribe(t, b, "chat_1", s2.deliver)()
	defer subscribe(t, other, "chat_1", so.deliver)()

	// A plain client LISTENing on the Rails channel name.
	raw := rawConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := raw.Exec(ctx, "LISTEN "+pgx.Identifier{prefix + ":chat_1"}.Sanitize()); err != nil {
		t.Fatal(err)
	}

	const msg = `{"body":"caf\u00e9 ☃ it's \\ 'quoted'","n":12345678901234567890}`
	publish(t, a, "chat_1", msg)
	for i, s := range []sink{sa, sb, s2} {
		if got := string(s.next(t, 5*time.Second)); got != msg {
			t.Errorf("subscriber %d got %q; want %q", i, got, msg)
		}
	}
	n, err := raw.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Channel != prefix+":chat_1" || n.Payload != msg {
		t.Errorf("raw notification = %q %q; want %q %q", n.Channel, n.Payload, prefix+":chat_1", msg)
	}
	so.none(t, 300*time.Millisecond)
}

// TestLongNames: names over 63 characters travel under their SHA-1 hex
// digest, as Rails NOTIFYs them; a multibyte name of more than 63 bytes
// but at most 63 characters, which released Rails sends unhashed and
// PostgreSQL truncates, is still received.
func TestLongNames(t *testing.T) {
	requirePostgres(t)
	prefix := uniquePrefix(t)
	p := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix})
	raw := rawConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	long := "room:" + strings.Repeat("x", 80)
	multi := strings.Repeat("é", 40) // prefix + ":" + 80 bytes
	for _, stream := range []string{long, multi} {
		s := newSink()
		unsub := subscribe(t, p, stream, s.deliver)
		// What Rails' broadcast sends: NOTIFY on the escaped identifier.
		name := p.Channel(stream)
		if _, err := raw.Exec(ctx, "NOTIFY "+pgx.Identifier{name}.Sanitize()+", 'from rails'"); err != nil {
			t.Fatalf("NOTIFY %q: %v", name, err)
		}
		if got := string(s.next(t, 5*time.Second)); got != "from rails" {
			t.Errorf("stream %q got %q", stream, got)
		}
		publish(t, p, stream, "from gocable")
		if got := string(s.next(t, 5*time.Second)); got != "from gocable" {
			t.Errorf("stream %q got %q", stream, got)
		}
		unsub()
	}
}

// TestPayloadLimit: PostgreSQL refuses a NOTIFY payload of 8,000 bytes or
// more; Publish refuses it before sending, with ErrPayloadTooLarge, and
// the largest allowed payload is delivered.
func TestPayloadLimit(t *testing.T) {
	requirePostgres(t)
	prefix := uniquePrefix(t)
	p := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix})
	s := newSink()
	defer subscribe(t, p, "big", s.deliver)()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	largest := `"` + strings.Repeat("a", pgpubsub.MaxPayload-2) + `"`
	if err := p.Publish(ctx, "big", []byte(largest)); err != nil {
		t.Fatalf("Publish(%d bytes): %v", len(largest), err)
	}
	if got := s.next(t, 5*time.Second); string(got) != largest {
		t.Errorf("got %d bytes; want %d", len(got), len(largest))
	}
	tooBig := largest + " "
	err := p.Publish(ctx, "big", []byte(tooBig))
	if !errors.Is(err, pgpubsub.ErrPayloadTooLarge) || !strings.Contains(err.Error(), "8000 bytes") {
		t.Errorf("Publish(%d bytes) = %v; want ErrPayloadTooLarge naming the size", len(tooBig), err)
	}
	s.none(t, 300*time.Millisecond)

	// The bound is PostgreSQL's own.
	raw := rawConn(t)
	if _, err := raw.Exec(ctx, "SELECT pg_notify($1, $2)", prefix+":big", tooBig); err == nil || !strings.Contains(err.Error(), "payload string too long") {
		t.Errorf("pg_notify(8000 bytes) = %v; want payload string too long", err)
	}
}

func TestInvalidStream(t *testing.T) {
	p := newPubSub(t, "postgres://127.0.0.1:1/none", pgpubsub.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, stream := range []string{"", "a\x00b", "\xff"} {
		if _, err := p.Subscribe(ctx, stream, func([]byte) {}); !errors.Is(err, pgpubsub.ErrInvalidStream) {
			t.Errorf("Subscribe(%q) = %v; want ErrInvalidStream", stream, err)
		}
		if err := p.Publish(ctx, stream, []byte("1")); !errors.Is(err, pgpubsub.ErrInvalidStream) {
			t.Errorf("Publish(%q) = %v; want ErrInvalidStream", stream, err)
		}
	}
}

// TestUnsubscribe: after unsubscribe returns, deliver is not called; the
// other subscribers of the stream still receive, and a new Subscribe of a
// stream whose last subscriber left receives again.
func TestUnsubscribe(t *testing.T) {
	requirePostgres(t)
	prefix := uniquePrefix(t)
	p := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix})
	s1, s2 := newSink(), newSink()
	u1 := subscribe(t, p, "s", s1.deliver)
	u2 := subscribe(t, p, "s", s2.deliver)
	u1()
	u1()
	publish(t, p, "s", "1")
	if got := string(s2.next(t, 5*time.Second)); got != "1" {
		t.Errorf("got %q", got)
	}
	s1.none(t, 200*time.Millisecond)
	u2()
	s3 := newSink()
	defer subscribe(t, p, "s", s3.deliver)()
	publish(t, p, "s", "2")
	if got := string(s3.next(t, 5*time.Second)); got != "2" {
		t.Errorf("got %q", got)
	}
}

func TestNewBadURL(t *testing.T) {
	_, err := pgpubsub.New("postgres://user:secret@host:notaport/db", pgpubsub.Config{})
	if err == nil || !strings.HasPrefix(err.Error(), "pgpubsub: ") || strings.Contains(err.Error(), "secret") {
		t.Errorf("New(bad URL) = %v; want a pgpubsub: error without the password", err)
	}
}

// TestResubscribeRace: a stream whose last subscriber leaves and which is
// subscribed again at once must be LISTENed when Subscribe returns, even
// when the listener was about to UNLISTEN it.
func TestResubscribeRace(t *testing.T) {
	requirePostgres(t)
	prefix := uniquePrefix(t)
	p := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix})
	for i := range 200 {
		s1 := newSink()
		subscribe(t, p, "r", s1.deliver)()
		s2 := newSink()
		unsub := subscribe(t, p, "r", s2.deliver)
		publish(t, p, "r", fmt.Sprint(i))
		if got := string(s2.next(t, 5*time.Second)); got != fmt.Sprint(i) {
			t.Fatalf("round %d: got %q", i, got)
		}
		unsub()
	}
}
