// Package channels holds ready-made ActionCable channels written in Go:
// Chat, the chat room of the Rails guide; Benchmark, the channel the
// websocket-shootout benchmark and other ActionCable load tools expect;
// TurboStreams, turbo-rails' Turbo::StreamsChannel, which streams the
// names that turbo_stream_from signs; and DemoRoom, the chat room of
// gocable's demo pages, written on the channel API a port of a Ruby
// channel uses (Subscription.Param, cable.Data, Subscription.Broadcast).
//
// Register them on a cable.Server under their Ruby names:
//
//	srv := &cable.Server{}
//	srv.Handle("ChatChannel", func() cable.Channel { return &channels.Chat{Broadcaster: srv} })
//	srv.Handle("BenchmarkChannel", func() cable.Channel { return &channels.Benchmark{Broadcaster: srv} })
//	srv.Handle("DemoRoomChannel", func() cable.Channel { return &channels.DemoRoom{} })
//
// Like every cable.Channel, a value serves one subscription, and its
// methods are called one at a time.
package channels

import "context"

// Broadcaster publishes msg to every subscriber of stream, like
// ActionCable.server.broadcast. *cable.Server implements it.
type Broadcaster interface {
	Broadcast(ctx context.Context, stream string, msg any) error
}
