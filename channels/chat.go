package channels

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gocable/gocable/cable"
)

// Chat relays messages between the subscribers of one room, the chat room
// of the Rails guide:
//
//	class ChatChannel < ApplicationCable::Channel
//	  def subscribed
//	    stream_from "chat_#{params[:room]}"
//	  end
//
//	  def speak(data)
//	    ActionCable.server.broadcast("chat_#{params[:room]}",
//	      { user: connection_user || data["user"], message: data["message"] })
//	  end
//	end
//
// The "room" param is required; a subscription without one is rejected.
// The speaker is the connection's identifier when it has one (so a client
// cannot speak as somebody else), else the "user" it sent.
type Chat struct {
	// Broadcaster sends the room's messages; usually the *cable.Server.
	Broadcaster Broadcaster

	room string
}

var _ cable.Channel = (*Chat)(nil)

// ChatMessage is what Chat broadcasts to a room for every speak. Both
// fields are JSON as the client sent them (null when missing), as Rails
// passes data["user"] and data["message"] through.
type ChatMessage struct {
	User    json.RawMessage `json:"user"`
	Message json.RawMessage `json:"message"`
}

// Subscribed streams chat_<room>.
func (c *Chat) Subscribed(ctx context.Context, s *cable.Subscription) error {
	var p struct {
		Room json.RawMessage `json:"room"`
	}
	if err := s.DecodeParams(&p); err != nil {
		return err
	}
	room, ok := paramString(p.Room)
	if !ok || room == "" {
		return cable.ErrRejected
	}
	c.room = room
	return s.StreamFrom(ctx, "chat_"+c.room)
}

// Unsubscribed does nothing: the server stops the stream.
func (c *Chat) Unsubscribed(ctx context.Context, s *cable.Subscription) {}

// Perform handles the speak action.
func (c *Chat) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	if action != "speak" {
		return cable.ErrUnknownAction
	}
	var d ChatMessage
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("channels: speak: %w", err)
	}
	if id := s.Conn().ConnectionIdentifier(); id != "" {
		d.User, _ = json.Marshal(id)
	}
	if len(d.User) == 0 {
		d.User = json.RawMessage("null")
	}
	if len(d.Message) == 0 {
		d.Message = json.RawMessage("null")
	}
	return c.Broadcaster.Broadcast(ctx, "chat_"+c.room, d)
}

// paramString reads a param the way Ruby interpolates it into a string:
// a JSON string as itself, a number as written.
func paramString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), true
	}
	return "", false
}
