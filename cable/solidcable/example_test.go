package solidcable_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/railsconfig"
	"github.com/gocable/gocable/cable/solidcable"
)

// ExampleNew reads a Rails 8 app's config/cable.yml and config/database.yml
// (here, the files `rails new` writes, for SQLite), opens the cable
// database, and makes Solid Cable the pub/sub of a cable.Server.
func ExampleNew() {
	app, err := os.MkdirTemp("", "rails-app") // a Rails app's root directory
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(app)
	_ = os.MkdirAll(filepath.Join(app, "storage"), 0o755)
	fixtures := filepath.Join("..", "..", "testdata", "rails", "solid_cable")

	cfg, err := railsconfig.LoadCable(filepath.Join(fixtures, "cable.yml"), "production", nil)
	if err != nil {
		log.Fatal(err)
	}
	dbc, err := railsconfig.LoadDatabase(filepath.Join(fixtures, "database.sqlite3.yml"), "production", cfg.SolidCable.DatabaseName(), nil)
	if err != nil {
		log.Fatal(err)
	}
	db, dialect, err := solidcable.Open(dbc, app) // storage/production_cable.sqlite3 in app
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // after ps.Close
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Rails makes the table with bin/rails db:prepare; here there is no Rails.
	if err := solidcable.CreateTable(ctx, db, dialect, ""); err != nil {
		log.Fatal(err)
	}
	ps, err := solidcable.New(solidcable.Config{
		DB: db, Dialect: dialect, ChannelPrefix: cfg.ChannelPrefix,
		PollingInterval: cfg.SolidCable.Interval(), MessageRetention: cfg.SolidCable.Retention(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ps.Close()
	_ = &cable.Server{PubSub: ps}

	got := make(chan string, 1)
	unsubscribe, err := ps.Subscribe(ctx, "chat_1", func(p []byte) { got <- string(p) })
	if err != nil {
		log.Fatal(err)
	}
	defer unsubscribe()
	// What ActionCable.server.broadcast("chat_1", {body: "hi"}) writes.
	if err := ps.Publish(ctx, "chat_1", []byte(`{"body":"hi"}`)); err != nil {
		log.Fatal(err)
	}
	select {
	case m := <-got:
		fmt.Println(dialect, cfg.SolidCable.Interval(), m)
	case <-ctx.Done():
		log.Fatal("not delivered")
	}
	// Output: sqlite3 100ms {"body":"hi"}
}
