package cable_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/gocable/gocable/cable"
)

// inboxChannel is a Rails channel ported with the channel API:
//
//	class InboxChannel < ApplicationCable::Channel
//	  def subscribed
//	    reject unless params[:box].present?
//	    stream_for current_user
//	    transmit({ box: params[:box].to_s, page: params[:page].to_i, user: current_user.id, tenant: tenant })
//	  end
//	  def notify(data) = InboxChannel.broadcast_to(current_user, { body: data["body"].to_s })
//	  def shout(data) = ActionCable.server.broadcast("shouts", data["body"])
//	end
type inboxChannel struct{ user cable.GlobalID }

func (c *inboxChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	if !s.Param("box").Present() {
		return cable.ErrRejected
	}
	user, ok := s.Identity().GlobalID("current_user")
	if !ok {
		return cable.ErrRejected
	}
	c.user = user
	if err := s.StreamFor(ctx, user); err != nil {
		return err
	}
	id, _ := user.IntID()
	return s.Transmit(ctx, map[string]any{
		"box": s.Param("box").String(), "page": s.Param("page").Int(), "user": id,
		"tenant": s.Identity().Get("tenant").String(),
	})
}

func (c *inboxChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}

func (c *inboxChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	switch action {
	case "notify":
		return s.BroadcastTo(ctx, map[string]string{"body": cable.Data(data).Get("body").String()}, c.user)
	case "shout":
		return s.Broadcast(ctx, "shouts", cable.Data(data).Get("body").Raw())
	case "bad_part":
		return s.BroadcastTo(ctx, "x", struct{}{})
	}
	return cable.ErrUnknownAction
}

func inboxServer(t *testing.T) *testServer {
	return newTestServer(t, func(srv *cable.Server) {
		srv.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			return cable.Identity{
				"current_user": cable.GlobalIDParam("myapp", "User", r.URL.Query().Get("user")),
				"tenant":       "acme",
			}, nil
		})
		srv.Handle("InboxChannel", func() cable.Channel { return &inboxChannel{} })
		srv.Handle("ShoutsChannel", func() cable.Channel {
			return cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error {
				return s.StreamFrom(ctx, "shouts")
			})
		})
	})
}

func dialUser(t *testing.T, ts *testServer, user string) *testClient {
	t.Helper()
	u := ts.URL
	ts.URL += "?user=" + user
	defer func() { ts.URL = u }()
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	return c
}

func TestChannelAPI(t *testing.T) {
	ts := inboxServer(t)
	alice := dialUser(t, ts, "7")
	aliceTab := dialUser(t, ts, "7")
	bob := dialUser(t, ts, "8")

	id := `{"channel":"InboxChannel","box":"work","page":"3rd"}`
	alice.send(subscribeFrame(id))
	alice.expect(dataFrame(id, `{"box":"work","page":3,"tenant":"acme","user":7}`))
	alice.expect(confirmFrame(id))
	// Rails' params[:box] is exact: a key that differs in case is no box.
	for _, rejected := range []string{
		`{"channel":"InboxChannel","Box":"work"}`, `{"channel":"InboxChannel","box":" "}`,
		`{"channel":"InboxChannel","box":null}`, `{"channel":"InboxChannel"}`,
	} {
		alice.send(subscribeFrame(rejected))
		alice.expect(fmt.Sprintf(`{"identifier":%s,"type":"reject_subscription"}`, jsonString(rejected)))
	}
	tabID := `{"channel":"InboxChannel","box":5}`
	aliceTab.send(subscribeFrame(tabID))
	aliceTab.expect(dataFrame(tabID, `{"box":"5","page":0,"tenant":"acme","user":7}`))
	aliceTab.expect(confirmFrame(tabID))
	bob.send(subscribeFrame(id))
	bob.expect(dataFrame(id, `{"box":"work","page":3,"tenant":"acme","user":8}`))
	bob.expect(confirmFrame(id))
	shouts := `{"channel":"ShoutsChannel"}`
	bob.send(subscribeFrame(shouts))
	bob.expect(confirmFrame(shouts))

	// broadcast_to(current_user) reaches every stream_for current_user,
	// on each of alice's connections, and nobody else.
	alice.send(messageFrame(id, `{"action":"notify","body":"<hi>","Body":"no"}`))
	alice.expect(dataFrame(id, `{"body":"\u003chi\u003e"}`))
	aliceTab.expect(dataFrame(tabID, `{"body":"\u003chi\u003e"}`))
	want := "inbox:" + cable.GlobalIDParam("myapp", "User", "7")
	if n := ts.SubscriberCount(want); n != 2 {
		t.Errorf("SubscriberCount(%q) = %d; want alice's 2 subscriptions on the stream Rails names", want, n)
	}
	alice.send(messageFrame(id, `{"action":"shout","body":{"n":1}}`))
	bob.expect(dataFrame(shouts, `{"n":1}`))
	bob.expectNothing()

	// A part BroadcastingFor cannot name is an error, logged, and nothing is sent.
	alice.send(messageFrame(id, `{"action":"bad_part"}`))
	alice.expectNothing()
	aliceTab.expectNothing()
}

// BroadcastTo and Broadcast report the server's errors.
func TestSubscriptionBroadcastErrors(t *testing.T) {
	errCh := make(chan error, 2)
	ts := newTestServer(t, func(srv *cable.Server) {
		srv.Handle("BadChannel", func() cable.Channel {
			return cable.ChannelFunc(func(ctx context.Context, s *cable.Subscription) error {
				errCh <- s.BroadcastTo(ctx, "x", struct{}{})
				errCh <- s.Broadcast(ctx, "s", json.RawMessage(`{bad`))
				return nil
			})
		})
	})
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(subscribeFrame(`{"channel":"BadChannel"}`))
	c.expect(confirmFrame(`{"channel":"BadChannel"}`))
	if err := <-errCh; err == nil {
		t.Error("BroadcastTo(struct{}{}) = nil; want an error")
	}
	if err := <-errCh; !errors.Is(err, cable.ErrInvalidJSON) {
		t.Errorf("Broadcast(invalid JSON) = %v; want ErrInvalidJSON", err)
	}
}
