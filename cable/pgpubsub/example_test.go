package pgpubsub_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/pgpubsub"
)

// ExampleNew connects to the database a Rails app's PostgreSQL cable
// adapter uses, with the same channel_prefix, so that
// ActionCable.server.broadcast in the Rails app and the gocable nodes reach
// each other's subscribers, and makes it the pub/sub of a cable.Server.
// (testURL is the tests' database; a program would use its DATABASE_URL.)
func ExampleNew() {
	ps, err := pgpubsub.New(testURL, pgpubsub.Config{ChannelPrefix: new("myapp_production")})
	if err != nil {
		panic(err)
	}
	defer ps.Close()

	srv := &cable.Server{PubSub: ps}
	mux := http.NewServeMux()
	mux.Handle("GET /cable", srv) // then http.ListenAndServe(addr, mux)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// LISTENs on "myapp_production:chat_1"; Subscribe returns once LISTEN
	// has run.
	got := make(chan []byte, 1)
	unsubscribe, err := ps.Subscribe(ctx, "chat_1", func(payload []byte) {
		got <- append([]byte(nil), payload...) // deliver must not block
	})
	if err != nil {
		panic(err)
	}
	defer unsubscribe()
	fmt.Println("state:", ps.State())

	// What ActionCable.server.broadcast("chat_1", {body: "hi"}) sends.
	if err := ps.Publish(ctx, "chat_1", []byte(`{"body":"hi"}`)); err != nil {
		panic(err)
	}
	fmt.Printf("%s delivered %s\n", ps.Channel("chat_1"), <-got)
	// Past 63 characters, the SHA-1 hex digest (computed by Ruby's
	// OpenSSL::Digest::SHA1.hexdigest of the prefixed name).
	fmt.Println(ps.Channel("RoomChannel:Z2lkOi8vbXktYXBwL1Jvb20vMTIzNDU2Nzg5MDEyMzQ1Njc4OTA"))
	// Output:
	// state: up
	// myapp_production:chat_1 delivered {"body":"hi"}
	// 3419fe02f5b3f45c7abc0da2c7971e6b9176df20
}
