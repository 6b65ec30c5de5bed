package cable

import (
	"errors"
	"fmt"
)

var (
	// ErrRejected is returned by Channel.Subscribed to reject the
	// subscription, as Rails' reject does: the client gets
	// reject_subscription.
	ErrRejected = errors.New("cable: subscription rejected")

	// ErrUnknownAction is returned by Channel.Perform for an action the
	// channel does not have. It is logged as Rails logs
	// "Unable to process Channel#action"; the client gets nothing.
	ErrUnknownAction = errors.New("cable: unknown action")

	// ErrUnauthorized may be returned by an Authenticator to reject a
	// connection; any other error rejects it too, but is logged as a failure
	// rather than as a refusal.
	ErrUnauthorized = errors.New("cable: unauthorized")

	// ErrServerClosed is returned by Server methods after Shutdown.
	ErrServerClosed = errors.New("cable: server closed")

	// ErrConnClosed is returned when writing to a closed connection.
	ErrConnClosed = errors.New("cable: connection closed")

	// ErrInvalidJSON is returned by Broadcast and Transmit when a
	// json.RawMessage or []byte message is not valid JSON or not valid
	// UTF-8. A payload from the pub/sub that fails so is logged and dropped.
	ErrInvalidJSON = errors.New("cable: message is not valid JSON")
)

// ProtocolError describes a client command the server could not carry out.
// As in Rails, it is logged and never sent to the client
// (actioncable/lib/action_cable/connection/subscriptions.rb).
type ProtocolError struct {
	Command    string // "subscribe", "unsubscribe", "message" or "" if unknown
	Identifier string // the subscription identifier, if any
	Err        error
}

func (e *ProtocolError) Error() string {
	if e.Identifier != "" {
		return fmt.Sprintf("cable: %s %s: %v", e.Command, e.Identifier, e.Err)
	}
	if e.Command != "" {
		return fmt.Sprintf("cable: %s: %v", e.Command, e.Err)
	}
	return fmt.Sprintf("cable: %v", e.Err)
}

func (e *ProtocolError) Unwrap() error { return e.Err }
