package cable_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
)

// logLine waits up to five seconds for the log line whose message is msg
// and returns it, or "".
func logLine(logs interface{ String() string }, msg string) string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, fmt.Sprintf("msg=%q", msg)) {
				return line
			}
		}
		if time.Now().After(deadline) {
			return ""
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Connect and subscribe are logged as Rails logs them ("Registered
// connection (...)", connection/internal_channel.rb; the subscription
// lines of channel/base.rb), at debug, with the connection identifier;
// a rejected subscription, a refusal, at info.
func TestLifecycleLogs(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) {
		s.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			return cable.Identity{"current_user": "user-7"}, nil
		})
	})
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(subscribeFrame(echoID))
	c.expect(confirmFrame(echoID))
	const rejectID = `{"channel":"RejectChannel"}`
	c.send(subscribeFrame(rejectID))
	c.expect(dataFrame(rejectID, `"unsubscribed"`)) // its Unsubscribed transmits
	c.expect(fmt.Sprintf(`{"identifier":%s,"type":"reject_subscription"}`, jsonString(rejectID)))
	c.send(unsubscribeFrame(echoID))

	tests := []struct {
		msg   string
		level string
		attrs []string
	}{
		{"cable: registered connection", "DEBUG", []string{"conn=user-7", "remote=127.0.0.1:"}},
		{"cable: subscribed", "DEBUG", []string{"conn=user-7", "channel=EchoChannel", `identifier="{\"channel\":\"EchoChannel\"}"`}},
		{"cable: subscription rejected", "INFO", []string{"conn=user-7", "channel=RejectChannel"}},
		{"cable: unsubscribed", "DEBUG", []string{"conn=user-7", "channel=EchoChannel"}},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			line := logLine(ts.Logs, tt.msg)
			if line == "" {
				t.Fatalf("no %q line in:\n%s", tt.msg, ts.Logs)
			}
			if !strings.Contains(line, "level="+tt.level+" ") {
				t.Errorf("%s; want level %s", line, tt.level)
			}
			for _, a := range tt.attrs {
				if !strings.Contains(line, a) {
					t.Errorf("%s; want %s", line, a)
				}
			}
		})
	}
}

// An Authenticator's ErrUnauthorized is a refusal, logged at info as
// Rails' reject_unauthorized_connection logs it
// (connection/authorization.rb); any other error is a failure, logged at
// error. The client gets the same unauthorized disconnect either way.
func TestAuthenticatorErrorLogs(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		msg     string
		level   string
		notMsgs string
	}{
		{"ErrUnauthorized", cable.ErrUnauthorized, "cable: an unauthorized connection attempt was rejected", "INFO", "Authenticator failed"},
		{"wrapped ErrUnauthorized", fmt.Errorf("%w: no cookie", cable.ErrUnauthorized), "cable: an unauthorized connection attempt was rejected", "INFO", "Authenticator failed"},
		{"other error", errors.New("database is down"), "cable: the Authenticator failed; the connection was rejected as unauthorized", "ERROR", "unauthorized connection attempt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(s *cable.Server) {
				s.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
					return nil, tt.err
				})
			})
			c := ts.dial(t, nil)
			c.expect(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)
			line := logLine(ts.Logs, tt.msg)
			if line == "" {
				t.Fatalf("no %q line in:\n%s", tt.msg, ts.Logs)
			}
			if !strings.Contains(line, "level="+tt.level+" ") || !strings.Contains(line, "remote=127.0.0.1:") {
				t.Errorf("%s; want level %s and the remote address", line, tt.level)
			}
			if !strings.Contains(line, tt.err.Error()) {
				t.Errorf("%s; want the error %q", line, tt.err)
			}
			if strings.Contains(ts.Logs.String(), tt.notMsgs) {
				t.Errorf("the log also has %q:\n%s", tt.notMsgs, ts.Logs)
			}
		})
	}
}

// A command the server cannot carry out is logged at error with its
// command and identifier as attributes (Rails' "Could not execute
// command", connection/subscriptions.rb), and the client gets nothing.
func TestProtocolErrorLog(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(messageFrame(echoID, `{"action":"speak"}`)) // not subscribed
	line := logLine(ts.Logs, "cable: could not execute command")
	if line == "" {
		t.Fatalf("no line in:\n%s", ts.Logs)
	}
	for _, a := range []string{"level=ERROR ", "command=message", `identifier="{\"channel\":\"EchoChannel\"}"`, `err="unable to find subscription"`} {
		if !strings.Contains(line, a) {
			t.Errorf("%s; want %s", line, a)
		}
	}
	c.expectNothing()
}
