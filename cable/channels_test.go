package cable_test

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gocable/gocable/cable"
)

// The channels of protocol.md §9, with Rails semantics.
func registerTestChannels(srv *cable.Server) {
	srv.Handle("EchoChannel", func() cable.Channel { return &echoChannel{srv: srv} })
	srv.Handle("RejectChannel", func() cable.Channel { return &rejectChannel{} })
	srv.Handle("SyncChannel", func() cable.Channel {
		return cable.ChannelFunc(func(context.Context, *cable.Subscription) error { return nil })
	})
	srv.Handle("TimerChannel", func() cable.Channel { return &timerChannel{} })
	srv.Handle("ModelChannel", func() cable.Channel { return &modelChannel{} })
	srv.Handle("TransmitInSubscribedChannel", func() cable.Channel { return &transmitChannel{} })
	srv.Handle("FailingChannel", func() cable.Channel { return &failingChannel{} })
	srv.Handle("DeferChannel", func() cable.Channel { return deferChannel{} })
}

// echoChannel: subscribed { stream_from "echo" }; echo(data) { transmit data };
// noargs { transmit({"noargs"=>true}) }; receive(data) { transmit({"received"=>data}) };
// boom raises; plus panic, broadcast and streams helpers.
type echoChannel struct {
	srv *cable.Server
}

func (c *echoChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	return s.StreamFrom(ctx, "echo")
}

func (c *echoChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}

func (c *echoChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	switch action {
	case "echo":
		return s.Transmit(ctx, data)
	case "noargs":
		return s.Transmit(ctx, map[string]bool{"noargs": true})
	case "receive":
		return s.Transmit(ctx, map[string]json.RawMessage{"received": data})
	case "boom":
		return errors.New("kaboom")
	case "panic":
		panic("kaboom")
	case "broadcast":
		var d struct {
			Stream  string          `json:"stream"`
			Message json.RawMessage `json:"message"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		return c.srv.Broadcast(ctx, d.Stream, d.Message)
	case "broadcast_others":
		return c.srv.BroadcastExcept(ctx, "echo", data, s.Conn())
	case "stream":
		var d struct{ Stream string }
		json.Unmarshal(data, &d)
		return s.StreamFrom(ctx, d.Stream)
	case "stop":
		var d struct{ Stream string }
		json.Unmarshal(data, &d)
		return s.StopStream(ctx, d.Stream)
	case "stop_all":
		s.StopAllStreams(ctx)
		return nil
	}
	return cable.ErrUnknownAction
}

type rejectChannel struct{}

func (c *rejectChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	s.Reject()
	return nil
}
func (c *rejectChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {
	s.Transmit(ctx, "unsubscribed")
}
func (c *rejectChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return s.Transmit(ctx, "should never run")
}

// timerChannel: periodically every: interval { transmit({"tick"=>n}) }.
type timerChannel struct{ n int }

func (c *timerChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	var p struct {
		Every int `json:"every_ms"`
	}
	s.DecodeParams(&p)
	if p.Every == 0 {
		p.Every = 1000
	}
	return s.Periodically(time.Duration(p.Every)*time.Millisecond, func(ctx context.Context) {
		c.n++
		s.Transmit(ctx, map[string]int{"tick": c.n})
	})
}
func (c *timerChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}
func (c *timerChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return cable.ErrUnknownAction
}

// modelChannel: stream_for current_user.
type modelChannel struct{}

func (c *modelChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	user := s.Conn().Identity()["current_user"]
	if user == "" {
		return cable.ErrRejected
	}
	return s.StreamFor(ctx, rawGID(user))
}
func (c *modelChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}
func (c *modelChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return cable.ErrUnknownAction
}

// rawGID is an identity value that already is a GlobalID param.
type rawGID string

func (g rawGID) GlobalIDParam() string { return string(g) }

type transmitChannel struct{}

func (c *transmitChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	return s.Transmit(ctx, map[string]string{"hello": "before-confirm"})
}
func (c *transmitChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}
func (c *transmitChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return cable.ErrUnknownAction
}

// failingChannel's subscribed fails (error or panic, by param).
type failingChannel struct{}

func (c *failingChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	var p struct{ Panic bool }
	s.DecodeParams(&p)
	if p.Panic {
		panic("subscribed exploded")
	}
	return errors.New("subscribed failed")
}
func (c *failingChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}
func (c *failingChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return nil
}

// deferChannel confirms 300 ms (or its "ms" param) after subscribing, like the DeferChannel of
// protocol.md §9 (defer_subscription_confirmation!, then
// ensure_confirmation_sent later).
type deferChannel struct{}

func (deferChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	var p struct {
		Ms int `json:"ms"`
	}
	_ = s.DecodeParams(&p)
	if p.Ms == 0 {
		p.Ms = 300
	}
	confirm := s.DeferConfirmation()
	time.AfterFunc(time.Duration(p.Ms)*time.Millisecond, confirm)
	return s.StreamFrom(ctx, "echo")
}
func (deferChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}
func (deferChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return s.Transmit(ctx, data)
}
