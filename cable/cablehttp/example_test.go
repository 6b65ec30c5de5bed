package cablehttp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/cablehttp"
)

func ExampleBroadcast() {
	srv := &cable.Server{}
	defer srv.Shutdown(context.Background())
	h := cablehttp.Broadcast{
		Server: srv,
		Token:  "a-long-random-secret-from-the-environment",
		Logger: slog.New(slog.DiscardHandler),
	}
	// mux.Handle("/_broadcast", h)

	send := func(token, body string) {
		req := httptest.NewRequest("POST", "/_broadcast", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Print(rec.Code, " ", rec.Body)
	}
	send("a-long-random-secret-from-the-environment",
		`{"stream":"chat_lobby","data":{"user":"bot","message":"hi"}}`)
	send("a-long-random-secret-from-the-environment",
		`[{"stream":"chat_lobby","data":"one"},{"stream":"messages","data":"<turbo-stream action=\"remove\" target=\"m1\"></turbo-stream>"}]`)
	send("a-guess", `{"stream":"chat_lobby","data":"spam"}`)
	send("a-long-random-secret-from-the-environment", `{"steam":"chat_lobby","data":1}`)
	// Output:
	// 202 {"broadcasts":1,"status":"accepted"}
	// 202 {"broadcasts":2,"status":"accepted"}
	// 401 {"error":"missing or wrong bearer token"}
	// 400 {"error":"invalid JSON: json: unknown field \"steam\""}
}

func ExampleHealth() {
	srv := &cable.Server{}
	defer srv.Shutdown(context.Background())
	redisState := "ok"
	h := cablehttp.Health{Server: srv, PubSubState: func() string { return redisState }}
	// mux.Handle("/health", h)

	check := func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
		fmt.Print(rec.Code, " ", rec.Body)
	}
	check()
	redisState = "down"
	check()
	// Output:
	// 200 {"connections":0,"pubsub":"ok","status":"OK"}
	// 503 {"connections":0,"pubsub":"down","status":"Service Unavailable"}
}

func ExampleMetrics() {
	srv := &cable.Server{}
	defer srv.Shutdown(context.Background())
	var h http.Handler = cablehttp.Metrics{Server: srv}
	// mux.Handle("/metrics", h)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	fmt.Println(rec.Header().Get("Content-Type"))
	// The first three metrics; the full list is in the type's doc.
	lines := strings.Split(rec.Body.String(), "\n")
	fmt.Println(strings.Join(lines[:9], "\n"))
	// Output:
	// text/plain; version=0.0.4; charset=utf-8
	// # HELP gocable_connections Open client connections.
	// # TYPE gocable_connections gauge
	// gocable_connections 0
	// # HELP gocable_streams Streams this node is subscribed to in the pub/sub.
	// # TYPE gocable_streams gauge
	// gocable_streams 0
	// # HELP gocable_pubsub_up 1 if the pub/sub is reachable.
	// # TYPE gocable_pubsub_up gauge
	// gocable_pubsub_up 1
}

func ExampleCanary() {
	ps := &cable.MemoryPubSub{}
	srv := &cable.Server{PubSub: ps}
	defer srv.Shutdown(context.Background())

	// The canary's goroutine is the program's: it ends when ctx is
	// cancelled, and the program waits for it.
	canary := &cablehttp.Canary{PubSub: ps, Interval: 10 * time.Millisecond}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- canary.Run(ctx) }()
	defer func() { stop(); <-done }()

	health := cablehttp.Health{Server: srv, Canary: canary}
	// mux.Handle("/health/ready", health.Ready())
	for canary.Status().RoundTrip == 0 {
		time.Sleep(time.Millisecond)
	}
	rec := httptest.NewRecorder()
	health.Ready().ServeHTTP(rec, httptest.NewRequest("GET", "/health/ready", nil))
	fmt.Println(rec.Code, canary.Status().OK)
	// Output:
	// 200 true
}
