package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/gocable/gocable/cable"
)

// BenchmarkStream is the stream every Benchmark subscription listens to.
const BenchmarkStream = "all"

// Benchmark is the BenchmarkChannel of the websocket-shootout benchmark,
// which ActionCable load tools (including our cmd/cablebench) expect:
//
//	class BenchmarkChannel < ApplicationCable::Channel
//	  def subscribed
//	    stream_from "all"
//	  end
//
//	  def echo(data)
//	    transmit data
//	  end
//
//	  def broadcast(data)
//	    ActionCable.server.broadcast "all", data
//	    data["action"] = "broadcastResult"
//	    transmit data
//	  end
//	end
type Benchmark struct {
	// Broadcaster sends the broadcasts; usually the *cable.Server.
	Broadcaster Broadcaster
}

var _ cable.Channel = (*Benchmark)(nil)

// Subscribed streams "all".
func (b *Benchmark) Subscribed(ctx context.Context, s *cable.Subscription) error {
	return s.StreamFrom(ctx, BenchmarkStream)
}

// Unsubscribed does nothing: the server stops the stream.
func (b *Benchmark) Unsubscribed(ctx context.Context, s *cable.Subscription) {}

// Perform handles echo and broadcast.
func (b *Benchmark) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	switch action {
	case "echo":
		return s.Transmit(ctx, data)
	case "broadcast":
		if err := b.Broadcaster.Broadcast(ctx, BenchmarkStream, data); err != nil {
			return err
		}
		result, err := withAction(data, "broadcastResult")
		if err != nil {
			return err
		}
		return s.Transmit(ctx, result)
	}
	return cable.ErrUnknownAction
}

// withAction sets data's "action" key, keeping the other keys as sent and
// the key's position as Ruby's Hash#[]= does (in place if present, last
// otherwise).
func withAction(data json.RawMessage, action string) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("channels: data is not a JSON object")
	}
	act, _ := json.Marshal(action)
	out := []byte{'{'}
	found := false
	first := true
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := kt.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		k, _ := json.Marshal(key)
		out = append(out, k...)
		out = append(out, ':')
		if key == "action" {
			out = append(out, act...)
			found = true
		} else {
			out = append(out, val...)
		}
	}
	if !found {
		if !first {
			out = append(out, ',')
		}
		out = append(out, `"action":`...)
		out = append(out, act...)
	}
	return append(out, '}'), nil
}
