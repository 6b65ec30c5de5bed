package channels_test

import (
	"fmt"
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

// Serve the demo chat room as gocable -demo does; its page subscribes
// with {"channel":"DemoRoomChannel","room":"lobby","user":"alice"}.
func ExampleDemoRoom() {
	srv := &cable.Server{}
	srv.Handle("DemoRoomChannel", func() cable.Channel { return &channels.DemoRoom{} })
	http.Handle("/cable", srv)
}

func ExampleValidDemoRoom() {
	for _, name := range []string{"lobby", "café-2.x", "..", "bad room", ""} {
		fmt.Print(channels.ValidDemoRoom(name), " ")
	}
	fmt.Println()
	// Output: true true false false false
}
