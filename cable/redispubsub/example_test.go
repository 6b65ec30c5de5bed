package redispubsub_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/redispubsub"
	"github.com/redis/go-redis/v9"
)

// ExampleNew connects to the Redis that a Rails app's config/cable.yml
// names, with the same channel_prefix, so that ActionCable.server.broadcast
// in the Rails app and the gocable nodes reach each other's subscribers, and
// makes it the pub/sub of a cable.Server. (exampleRedisURL is a redis-server
// that the tests start; a program would use its REDIS_URL.)
func ExampleNew() {
	opt, err := redis.ParseURL(exampleRedisURL) // e.g. "redis://localhost:6379/1"
	if err != nil {
		panic(err)
	}
	client := redis.NewClient(opt)
	defer client.Close() // after ps.Close: the client stays the caller's
	ps := redispubsub.New(client, redispubsub.Config{ChannelPrefix: new("myapp_production")})
	defer ps.Close()

	srv := &cable.Server{PubSub: ps}
	mux := http.NewServeMux()
	mux.Handle("GET /cable", srv) // then http.ListenAndServe(addr, mux)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Subscribes to the Redis channel "myapp_production:chat_1"; Subscribe
	// returns once Redis has acknowledged it.
	got := make(chan []byte, 1)
	unsubscribe, err := ps.Subscribe(ctx, "chat_1", func(payload []byte) {
		got <- append([]byte(nil), payload...) // deliver must not block
	})
	if err != nil {
		panic(err)
	}
	defer unsubscribe()
	fmt.Println("state:", ps.State())

	// What ActionCable.server.broadcast("chat_1", {body: "hi"}) publishes.
	if err := ps.Publish(ctx, "chat_1", []byte(`{"body":"hi"}`)); err != nil {
		panic(err)
	}
	fmt.Printf("%s delivered %s\n", ps.Channel("chat_1"), <-got)
	// Output:
	// state: up
	// myapp_production:chat_1 delivered {"body":"hi"}
}
