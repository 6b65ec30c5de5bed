package cable

import "errors"

var (
	// ErrRejected is returned by Channel.Subscribed to reject the
	// subscription, as Rails' reject does: the client gets
	// reject_subscription.
	ErrRejected = errors.New("cable: subscription rejected")

	// ErrUnknownAction is returned by Channel.Perform for an action the
	// channel does not have. It is logged as Rails logs
	// "Unable to process Channel#action"; the client gets nothing.
	ErrUnknownAction = errors.New("cable: unknown action")

	// ErrUnauthorized is returned (or wrapped) by an Authenticator to
	// refuse a connection, as Rails' reject_unauthorized_connection does:
	// the refusal is logged at info as "an unauthorized connection attempt
	// was rejected" (connection/authorization.rb). Any other error rejects
	// the connection the same way, but is logged at error level as a
	// failure of the Authenticator.
	ErrUnauthorized = errors.New("cable: unauthorized")

	// ErrConnClosed is returned when writing to a closed connection.
	ErrConnClosed = errors.New("cable: connection closed")

	// ErrInvalidJSON is returned by Broadcast and Transmit when a
	// json.RawMessage or []byte message is not valid JSON or not valid
	// UTF-8. A payload from the pub/sub that fails so is logged and dropped.
	ErrInvalidJSON = errors.New("cable: message is not valid JSON")
)
