package solidcable_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/solidcable"
)

// TestOutageResume cuts the connection to the database: the PubSub goes
// down (logged once), Publish fails with ErrUnavailable, and when the
// database is back the messages written meanwhile by Rails are delivered,
// in order, and the recovery is logged once.
func TestOutageResume(t *testing.T) {
	for _, d := range []solidcable.Dialect{solidcable.PostgreSQL, solidcable.MySQL} {
		t.Run(d.String(), func(t *testing.T) {
			tdb := newTestDB(t, d)
			target := fmt.Sprintf("%s:%d", tdb.cfg.Host, tdb.cfg.Port)
			px := newProxy(t, target)
			db := tdb.via(px.addr).open(t)
			rails := tdb.open(t)
			var logs syncBuffer
			ps := newPubSub(t, db, d, solidcable.Config{
				Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
				QueryTimeout: time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			box := newInbox()
			unsub, err := ps.Subscribe(ctx, "room", box.deliver)
			if err != nil {
				t.Fatal(err)
			}
			defer unsub()
			gemInsert(t, rails, d, "room", `{"n":1}`, time.Now())
			box.waitN(t, 1, 10*time.Second)

			px.cut()
			waitFor(t, 10*time.Second, "state down", func() bool { return ps.State() == solidcable.StateDown })
			if ps.Healthy() {
				t.Error("Healthy during the outage")
			}
			if err := ps.Publish(ctx, "room", []byte(`{"lost":1}`)); !errors.Is(err, solidcable.ErrUnavailable) {
				t.Errorf("Publish during the outage: %v; want ErrUnavailable", err)
			}
			for i := 2; i <= 4; i++ {
				gemInsert(t, rails, d, "room", fmt.Sprintf(`{"n":%d}`, i), time.Now())
			}
			time.Sleep(300 * time.Millisecond) // several failed attempts
			px.restore(t)
			got := box.waitN(t, 4, 15*time.Second)
			if strings.Join(got, " ") != `{"n":1} {"n":2} {"n":3} {"n":4}` {
				t.Errorf("got %q", got)
			}
			waitFor(t, 10*time.Second, "state up", ps.Healthy)
			l := logs.String()
			if n := strings.Count(l, "database unreachable"); n != 1 {
				t.Errorf("outage logged %d times; want once:\n%s", n, l)
			}
			if n := strings.Count(l, "database reachable again"); n != 1 {
				t.Errorf("recovery logged %d times; want once:\n%s", n, l)
			}
		})
	}
}

// TestSubscribeDuringOutage: Subscribe waits for the database until its
// ctx is done, and says why.
func TestSubscribeDuringOutage(t *testing.T) {
	tdb := newTestDB(t, solidcable.PostgreSQL)
	px := newProxy(t, fmt.Sprintf("%s:%d", tdb.cfg.Host, tdb.cfg.Port))
	db := tdb.via(px.addr).open(t)
	ps := newPubSub(t, db, tdb.dialect, solidcable.Config{QueryTimeout: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	px.cut()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err := ps.Subscribe(ctx, "room", func([]byte) {})
	if !errors.Is(err, solidcable.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Subscribe: %v; want ErrUnavailable and the deadline", err)
	}
}

// TestOnePollPerInterval: 1,000 streams cost one query per interval.
func TestOnePollPerInterval(t *testing.T) {
	tdb := newTestDB(t, solidcable.SQLite)
	db := tdb.open(t)
	ps := newPubSub(t, db, tdb.dialect, solidcable.Config{PollingInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 1000 {
		unsub, err := ps.Subscribe(ctx, fmt.Sprintf("stream_%d", i), func([]byte) {})
		if err != nil {
			t.Fatal(err)
		}
		defer unsub()
	}
	start, p0 := time.Now(), ps.Polls()
	time.Sleep(time.Second)
	polls, elapsed := ps.Polls()-p0, time.Since(start)
	want := float64(elapsed) / float64(50*time.Millisecond)
	t.Logf("%d polls in %v with 1000 streams (%.1f intervals)", polls, elapsed.Round(time.Millisecond), want)
	if float64(polls) > want+2 || float64(polls) < want/4 {
		t.Errorf("%d polls in %v; want about one per 50ms interval", polls, elapsed)
	}
}
