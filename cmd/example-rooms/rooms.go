package main

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/gocable/gocable/cable"
)

// RoomChannel is the Go port of this Rails channel:
//
//	class RoomChannel < ApplicationCable::Channel
//	  def subscribed
//	    @room = Room.find_by(id: params[:room])
//	    reject unless @room&.member?(current_user)
//	    stream_for @room
//	  end
//
//	  def speak(data)
//	    return if data["body"].blank?
//	    message = @room.messages.create!(user: current_user, body: data["body"])
//	    RoomChannel.broadcast_to(@room, message.as_json(only: %i[id user_id body]))
//	  end
//
//	  def delete(data)
//	    message = @room.messages.find_by(id: data["id"])
//	    unless message&.user == current_user
//	      return transmit({ error: "not_yours", id: data["id"] })
//	    end
//	    message.destroy
//	    RoomChannel.broadcast_to(@room, { deleted: message.id })
//	  end
//	end
//
// A new RoomChannel serves each subscription, and its methods are called
// one at a time, so its fields need no lock.
type RoomChannel struct {
	db   *DB
	room *Room
	gid  cable.GlobalID // the room's, for stream_for and broadcast_to
	user int64          // current_user.id
}

// Subscribed admits members of the room named by params[:room] only.
func (c *RoomChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	user, ok := s.Identity().GlobalID("current_user")
	userID, isInt := user.IntID()
	room := c.db.Room(s.Param("room").String())
	if !ok || user.Model != "User" || !isInt || room == nil || !room.Member(userID) {
		return cable.ErrRejected
	}
	// The room's GlobalID, in the app the user's comes from (--gid-app):
	// stream_for @room names the stream "room:<its to_gid_param>".
	c.room, c.user = room, userID
	c.gid = cable.GlobalID{App: user.App, Model: "Room", ID: room.ID}
	return s.StreamFor(ctx, c.gid)
}

// Unsubscribed has nothing to clean up: the server stops the streams.
func (c *RoomChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}

// Perform runs the actions speak and delete.
func (c *RoomChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	d := cable.Data(data)
	switch action {
	case "speak":
		if !d.Get("body").Present() {
			return nil
		}
		m := c.room.Post(c.user, d.Get("body").String())
		return s.BroadcastTo(ctx, m, c.gid)
	case "delete":
		id := d.Get("id").Int()
		if m := c.room.Message(id); m == nil || m.UserID != c.user {
			return s.Transmit(ctx, map[string]any{"error": "not_yours", "id": d.Get("id").Raw()})
		}
		c.room.Delete(id)
		return s.BroadcastTo(ctx, map[string]any{"deleted": id}, c.gid)
	}
	return cable.ErrUnknownAction
}

// NotificationsChannel is the Go port of
//
//	class NotificationsChannel < ApplicationCable::Channel
//	  def subscribed
//	    stream_for current_user
//	  end
//	end
//
// so that NotificationsChannel.broadcast_to(user, ...) in the Rails app
// reaches that user's browsers.
type NotificationsChannel struct{}

// Subscribed streams the user's notifications.
func (NotificationsChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	user, ok := s.Identity().GlobalID("current_user")
	if !ok {
		return cable.ErrRejected
	}
	return s.StreamFor(ctx, user)
}

// Unsubscribed has nothing to clean up.
func (NotificationsChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}

// Perform has no actions.
func (NotificationsChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return cable.ErrUnknownAction
}

// DB stands for the app's database: in a real port these are queries
// (database/sql on the database Rails uses). Here rooms live in memory:
// room 1 has users 42 and 7, room 2 has user 42.
type DB struct {
	rooms map[string]*Room
}

func openDB() *DB {
	return &DB{rooms: map[string]*Room{
		"1": newRoom("1", 42, 7),
		"2": newRoom("2", 42),
	}}
}

// Room finds a room by id, or nil (Room.find_by(id:)).
func (db *DB) Room(id string) *Room { return db.rooms[id] }

// Room is a chat room with members and messages. Its methods may be
// called from many connections at once.
type Room struct {
	ID      string
	members map[int64]bool

	mu       sync.Mutex
	nextID   int64
	messages map[int64]*Message
}

// Message is a message of a room, as the app's as_json renders it.
type Message struct {
	ID     int64  `json:"id"`
	UserID int64  `json:"user_id"`
	Body   string `json:"body"`
}

func newRoom(id string, members ...int64) *Room {
	r := &Room{ID: id, members: map[int64]bool{}, messages: map[int64]*Message{}}
	for _, m := range members {
		r.members[m] = true
	}
	return r
}

// Member reports whether user is a member of the room.
func (r *Room) Member(user int64) bool { return r.members[user] }

// Post stores a message and returns it.
func (r *Room) Post(user int64, body string) *Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextID++
	m := &Message{ID: r.nextID, UserID: user, Body: body}
	r.messages[m.ID] = m
	return m
}

// Message finds a message by id, or nil.
func (r *Room) Message(id int64) *Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.messages[id]
}

// Delete removes a message.
func (r *Room) Delete(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.messages, id)
}
