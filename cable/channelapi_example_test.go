package cable_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gocable/gocable/cable"
)

// A Ruby channel and its port, line for line:
//
//	class RoomChannel < ApplicationCable::Channel
//	  def subscribed
//	    reject unless params[:room].present?
//	    stream_from "room_#{params[:room]}"
//	  end
//	end
func ExampleSubscription_Param() {
	subscribed := func(ctx context.Context, s *cable.Subscription) error {
		room := s.Param("room")
		if !room.Present() {
			return cable.ErrRejected
		}
		return s.StreamFrom(ctx, "room_"+room.String())
	}
	srv := &cable.Server{}
	srv.Handle("RoomChannel", func() cable.Channel { return cable.ChannelFunc(subscribed) })
}

// params as Ruby sees them: the key is exact, and present?, to_s and to_i
// behave as in Ruby.
func ExampleValue() {
	params := cable.Data(json.RawMessage(`{"channel":"RoomChannel","Room":"lobby","page":"2nd","tags":[]}`))
	fmt.Println(params.Get("room").Exists(), params.Get("Room").String())
	fmt.Println(params.Get("page").Int(), params.Get("tags").Present())
	// Output:
	// false lobby
	// 2 false
}

func ExampleValue_Present() {
	for _, j := range []string{`null`, `false`, `" \u00a0"`, `[]`, `{}`, `0`, `"x"`} {
		fmt.Print(cable.Data(json.RawMessage(j)).Present(), " ")
	}
	fmt.Println()
	// Output: false false false false false true true
}

func ExampleValue_String() {
	for _, j := range []string{`null`, `true`, `42`, `1.0`, `1e20`, `0.00001`, `"hi"`, `[1, "a"]`} {
		fmt.Printf("%q ", cable.Data(json.RawMessage(j)).String())
	}
	fmt.Println()
	// Output: "" "true" "42" "1.0" "1.0e+20" "1.0e-05" "hi" "[1,\"a\"]"
}

func ExampleValue_Int() {
	for _, j := range []string{`"12abc"`, `"abc"`, `" -7"`, `"1_000"`, `3.9`, `null`, `true`} {
		fmt.Print(cable.Data(json.RawMessage(j)).Int(), " ")
	}
	fmt.Println()
	// Output: 12 0 -7 1000 3 0 0
}

func ExampleValue_Get() {
	data := cable.Data(json.RawMessage(`{"action":"move","to":{"x":3,"y":"4"}}`))
	fmt.Println(data.Get("to").Get("x").Int(), data.Get("to").Get("y").Int(), data.Get("to").Get("z").Exists())
	// Output: 3 4 false
}

func ExampleValue_Exists() {
	data := cable.Data(json.RawMessage(`{"reply_to":null}`))
	fmt.Println(data.Get("reply_to").Exists(), data.Get("reply_to").Present(), data.Get("thread").Exists())
	// Output: true false false
}

func ExampleValue_Raw() {
	data := cable.Data(json.RawMessage(`{"action":"speak","id":12345678901234567890}`))
	fmt.Println(string(data.Get("id").Raw()), data.Get("missing").Raw() == nil)
	// Output: 12345678901234567890 true
}

// Rails' def speak(data) = ... data["body"] ...: the data of Perform,
// with its "action" key, read in one call.
func ExampleData() {
	data := json.RawMessage(`{"action":"speak","body":"hi","Body":"not this"}`)
	fmt.Println(cable.Data(data).Get("action").String(), cable.Data(data).Get("body").String())
	// Output: speak hi
}

func ExampleSubscription_Identity() {
	// identified_by :current_user, :tenant; a channel reads them with
	// current_user and tenant.
	subscribed := func(ctx context.Context, s *cable.Subscription) error {
		user, ok := s.Identity().GlobalID("current_user")
		if !ok {
			return cable.ErrRejected
		}
		return s.StreamFrom(ctx, s.Identity().Get("tenant").String()+":"+user.ID)
	}
	_ = cable.ChannelFunc(subscribed)
}

func ExampleIdentity_Get() {
	id := cable.Identity{"tenant": "acme", "account_id": "17"}
	fmt.Println(id.Get("tenant").String(), id.Get("account_id").Int(), id.Get("locale").Exists())
	// Output: acme 17 false
}

func ExampleIdentity_GlobalID() {
	id := cable.Identity{"current_user": cable.GlobalIDParam("myapp", "User", "alice@example.com")}
	user, ok := id.GlobalID("current_user")
	fmt.Println(ok, user.Model, user.ID)
	fmt.Println(user)
	// Output:
	// true User alice@example.com
	// gid://myapp/User/alice%40example.com
}

func ExampleGlobalID_IntID() {
	user, _ := cable.ParseGlobalID("gid://myapp/User/7")
	n, ok := user.IntID()
	fmt.Println(n, ok)
	// Output: 7 true
}

func ExampleParseGlobalID() {
	for _, s := range []string{
		"gid://myapp/User/john+doe",
		cable.GlobalIDParam("myapp", "Membership", "acme", "42"), // a composite primary key
	} {
		g, err := cable.ParseGlobalID(s)
		fmt.Printf("%q %q %q %v\n", g.Model, g.ID, g.CompositeID, err)
	}
	// Output:
	// "User" "john doe" [] <nil>
	// "Membership" "" ["acme" "42"] <nil>
}

// ActionCable.server.broadcast("chat_#{params[:room]}", data) inside a
// channel's action.
func ExampleSubscription_Broadcast() {
	perform := func(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
		return s.Broadcast(ctx, "chat_"+s.Param("room").String(), data)
	}
	_ = perform
}

// NotificationsChannel.broadcast_to(current_user, { body: data["body"] })
// inside the channel: it reaches stream_for current_user on every node.
func ExampleSubscription_BroadcastTo() {
	perform := func(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
		user, ok := s.Identity().GlobalID("current_user")
		if !ok {
			return cable.ErrRejected
		}
		return s.BroadcastTo(ctx, map[string]string{"body": cable.Data(data).Get("body").String()}, user)
	}
	_ = perform
}

// def move(data) = ... data["to"]["x"] ...: the data of Perform decoded
// in one call, keys matched exactly as Ruby matches them.
func ExampleValue_Decode() {
	data := json.RawMessage(`{"action":"move","to":{"x":3,"Y":4}}`)
	var d struct {
		Action string `json:"action"`
		To     struct {
			X int `json:"x"`
			Y int `json:"y"`
		} `json:"to"`
	}
	if err := cable.Data(data).Decode(&d); err != nil {
		fmt.Println(err)
	}
	fmt.Println(d.Action, d.To.X, d.To.Y)
	// Output: move 3 0
}
