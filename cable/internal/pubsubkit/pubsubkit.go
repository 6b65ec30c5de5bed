// Package pubsubkit holds what the pub/sub adapters of gocable
// (redispubsub, pgpubsub, solidcable) share: the state of their
// connection to the server, and the error of an operation on a channel.
// Each adapter re-exports State under its own name, with its own doc.
package pubsubkit

import (
	"fmt"
	"strconv"
	"strings"
)

// State is the state of an adapter's connection to its server. Its zero
// value is Connecting.
type State int32

// The states, in the order an adapter goes through them.
const (
	Connecting State = iota // the first connection has not succeeded yet
	Up                      // connected, every stream in use listened to
	Down                    // the connection was lost or could not be made; retried with backoff
	Closed                  // Close was called
)

// String returns "connecting", "up", "down" or "closed".
func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Up:
		return "up"
	case Down:
		return "down"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// OpError is the error of an adapter's operation on a channel. Its message
// reads `<Pkg>: <Op> "<Channel>": <Kind>: <Err>` (Kind without its own
// package prefix), and it wraps both Kind (a sentinel such as the
// adapter's ErrUnavailable, or nil) and Err, for errors.Is.
type OpError struct {
	Pkg         string // the adapter's package name, the message's prefix
	Op, Channel string // "publish" or "subscribe", and the channel
	Kind, Err   error
}

// Error returns the message described on OpError.
func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString(e.Pkg)
	b.WriteString(": ")
	b.WriteString(e.Op)
	b.WriteString(" ")
	b.WriteString(strconv.Quote(e.Channel))
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), e.Pkg+": "))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and Err, those that are not nil.
func (e *OpError) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}
