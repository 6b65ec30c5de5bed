package channels_test

import (
	"net/http"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/channels"
)

// Serve the chat room and the benchmark channel on /cable.
func Example() {
	srv := &cable.Server{}
	srv.Handle("ChatChannel", func() cable.Channel { return &channels.Chat{Broadcaster: srv} })
	srv.Handle("BenchmarkChannel", func() cable.Channel { return &channels.Benchmark{Broadcaster: srv} })

	mux := http.NewServeMux()
	mux.Handle("/cable", srv)
	_ = mux // http.ListenAndServe(":8080", mux)
	// Output:
}
