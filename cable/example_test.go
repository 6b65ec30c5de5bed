package cable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gocable/gocable/cable"
)

// Room is a channel like the Rails guide's ChatChannel.
type Room struct {
	srv  *cable.Server
	name string
}

func (r *Room) Subscribed(ctx context.Context, s *cable.Subscription) error {
	var p struct {
		Room string `json:"room"`
	}
	if err := s.DecodeParams(&p); err != nil || p.Room == "" {
		return cable.ErrRejected
	}
	r.name = p.Room
	return s.StreamFrom(ctx, "chat_"+r.name)
}

func (r *Room) Unsubscribed(ctx context.Context, s *cable.Subscription) {}

func (r *Room) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	if action != "receive" {
		return cable.ErrUnknownAction
	}
	return r.srv.Broadcast(ctx, "chat_"+r.name, data)
}

func ExampleServer() {
	srv := &cable.Server{}
	srv.Handle("ChatChannel", func() cable.Channel { return &Room{srv: srv} })

	mux := http.NewServeMux()
	mux.Handle("/cable", srv)
	// http.ListenAndServe(":8080", mux), and on SIGTERM: srv.Shutdown(ctx).
}

func ExampleAuthenticatorFunc() {
	srv := &cable.Server{
		Authenticator: cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			token := r.URL.Query().Get("token")
			if token != "secret-for-42" { // look the token up instead
				return nil, cable.ErrUnauthorized
			}
			return cable.Identity{"current_user": cable.GlobalIDParam("myapp", "User", "42")}, nil
		}),
	}
	_ = srv
}

func ExampleIdentity_ConnectionIdentifier() {
	id := cable.Identity{
		"current_user": cable.GlobalIDParam("myapp", "User", "7"),
		"tenant":       "acme",
	}
	fmt.Println(id.ConnectionIdentifier())
	// Output: Z2lkOi8vbXlhcHAvVXNlci83:acme
}

func ExampleBroadcastingFor() {
	user := cable.GlobalID{App: "myapp", Model: "User", ID: "1"}
	name, _ := cable.BroadcastingFor("Admin::NotificationsChannel", user)
	fmt.Println(name)
	// Output: admin:notifications:Z2lkOi8vbXlhcHAvVXNlci8x
}

func ExampleServer_Broadcast() {
	srv := &cable.Server{}
	// From any Go code or HTTP handler, like ActionCable.server.broadcast.
	err := srv.Broadcast(context.Background(), "chat_lobby", map[string]string{"user": "bot", "message": "<hello>"})
	fmt.Println(err)
	// Output: <nil>
}
