package channels

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gocable/gocable/cable"
)

// demoRoomChannel is the Ruby-style class name DemoRoom is registered
// under by gocable -demo, and the name its pages subscribe to.
const demoRoomChannel = "DemoRoomChannel"

// Limits of the demo chat room.
const (
	maxUserRunes    = 32
	maxMessageRunes = 1000
)

// DemoRoom is the chat room of gocable's demo pages (gocable -demo,
// /room/{name}), registered as "DemoRoomChannel". In Ruby it would read:
//
//	class DemoRoomChannel < ApplicationCable::Channel
//	  def subscribed
//	    reject unless valid_room?(params[:room]) && params[:user].present?
//	    stream_from "room_#{params[:room]}"
//	    ActionCable.server.broadcast("room_#{params[:room]}", { type: "join", user: params[:user].strip, online: ... })
//	  end
//	  def speak(data) = ActionCable.server.broadcast("room_#{params[:room]}", { type: "message", user: ..., message: data["message"].strip })
//	  def unsubscribed = ActionCable.server.broadcast("room_#{params[:room]}", { type: "leave", ... })
//	end
//
// Its params are "room" (see ValidDemoRoom) and "user" (1 to 32
// characters once trimmed, no control characters), both required and
// read as Ruby's to_s reads them; otherwise the subscription is rejected.
// It streams room_<room> and broadcasts there:
//
//	{"type":"join","user":"alice","online":2}         on subscribe
//	{"type":"leave","user":"alice","online":1}        on unsubscribe
//	{"type":"message","user":"alice","message":"hi"}  for perform("speak", {message})
//
// A speak whose message is empty, longer than 1000 characters or holds
// control characters is dropped with an error (logged). online counts the
// room's subscriptions on this node (cable.Server.SubscriberCount); with
// several nodes it is a per-node count.
//
// The zero DemoRoom is ready to serve one subscription; it needs nothing
// injected, as it broadcasts through the subscription's server.
type DemoRoom struct {
	stream string
	user   string
	joined bool
}

var _ cable.Channel = (*DemoRoom)(nil)

// demoNotice is a join, leave or message broadcast.
type demoNotice struct {
	Type    string `json:"type"`
	User    string `json:"user"`
	Online  *int   `json:"online,omitempty"`
	Message string `json:"message,omitempty"`
}

// Subscribed streams the room and announces the user.
func (c *DemoRoom) Subscribed(ctx context.Context, s *cable.Subscription) error {
	room := s.Param("room").String()
	user, ok := cleanText(s.Param("user").String(), maxUserRunes)
	if !ok || !ValidDemoRoom(room) {
		return cable.ErrRejected
	}
	c.stream, c.user = "room_"+room, user
	if err := s.StreamFrom(ctx, c.stream); err != nil {
		return err
	}
	n := s.Conn().Server().SubscriberCount(c.stream)
	if err := s.Broadcast(ctx, c.stream, demoNotice{Type: "join", User: c.user, Online: &n}); err != nil {
		return err
	}
	c.joined = true
	return nil
}

// Unsubscribed stops the stream first, so the count no longer includes
// this subscription, then announces the departure.
func (c *DemoRoom) Unsubscribed(ctx context.Context, s *cable.Subscription) {
	if !c.joined {
		return // rejected: nobody joined
	}
	c.joined = false
	s.StopStream(ctx, c.stream)
	n := s.Conn().Server().SubscriberCount(c.stream)
	s.Broadcast(ctx, c.stream, demoNotice{Type: "leave", User: c.user, Online: &n})
}

var errBadMessage = errors.New("channels: speak: the message is empty, too long or has control characters")

// Perform handles speak.
func (c *DemoRoom) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	if action != "speak" {
		return cable.ErrUnknownAction
	}
	msg, ok := cleanText(cable.Data(data).Get("message").String(), maxMessageRunes)
	if !ok {
		return errBadMessage
	}
	return s.Broadcast(ctx, c.stream, demoNotice{Type: "message", User: c.user, Message: msg})
}

// ValidDemoRoom reports whether name is a room DemoRoom accepts, and that
// the demo's /room/{name} page serves: 1 to 64 letters, digits, "-", "_"
// and ".", except "." and "..", which a browser would resolve away.
func ValidDemoRoom(name string) bool {
	if name == "" || len(name) > 64 || name == "." || name == ".." {
		return false
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.", r) {
			return false
		}
	}
	return true
}

// cleanText trims s and accepts it if it has 1 to max runes and no
// control characters.
func cleanText(s string, max int) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return "", false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", false
		}
	}
	return s, true
}
