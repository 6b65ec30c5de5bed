package main

import (
	"encoding/json"
	"errors"
	"strconv"
)

// Server frame types of actioncable-v1-json (ActionCable::INTERNAL).
const (
	typeWelcome    = "welcome"
	typePing       = "ping"
	typeConfirm    = "confirm_subscription"
	typeReject     = "reject_subscription"
	typeDisconnect = "disconnect"
)

// Payload actions of the BenchmarkChannel contract.
const (
	actionEcho            = "echo"
	actionBroadcast       = "broadcast"
	actionBroadcastResult = "broadcastResult"
)

var (
	errNotObject = errors.New("cablebench: frame is not a JSON object")
	errSyntax    = errors.New("cablebench: malformed JSON")
	errTruncated = errors.New("cablebench: truncated JSON")
)

// frame is a server frame, as far as cablebench needs it. Identifier and
// Message alias the buffer the frame was parsed from.
type frame struct {
	// Type is the "type" key ("welcome", "ping", "confirm_subscription",
	// ...), or "" for a data frame.
	Type string
	// Identifier is the "identifier" key's JSON string token, quotes
	// included.
	Identifier []byte
	// Message is the "message" key's raw JSON value.
	Message []byte
	// Reason is a disconnect frame's reason.
	Reason string
}

// parseFrame parses one server frame in place. It reads only the top-level
// keys it needs and skips the values of the others, so a data frame costs
// one pass and no allocation.
func parseFrame(b []byte) (frame, error) {
	var f frame
	s := objectScanner{b: b}
	for {
		key, val, ok := s.next()
		if !ok {
			break
		}
		switch string(key) {
		case "type":
			f.Type = unquote(val)
		case "identifier":
			f.Identifier = val
		case "message":
			f.Message = val
		case "reason":
			f.Reason = unquote(val)
		}
	}
	return f, s.err
}

// payload is what cablebench puts in the data it sends, read back from a
// message.
type payload struct {
	Action string
	Run    []byte // the run token's JSON string token, quotes included
	Seq    int64
	Sent   int64 // nanoseconds since the run started
}

// parsePayload reads a message sent by cablebench. It reports false if msg
// is not an object with integer "seq" and "sent" keys.
func parsePayload(msg []byte) (payload, bool) {
	var p payload
	var hasSeq, hasSent bool
	s := objectScanner{b: msg}
	for {
		key, val, ok := s.next()
		if !ok {
			break
		}
		switch string(key) {
		case "action":
			p.Action = unquote(val)
		case "run":
			p.Run = val
		case "seq":
			p.Seq, hasSeq = parseInt(val)
		case "sent":
			p.Sent, hasSent = parseInt(val)
		}
	}
	return p, s.err == nil && hasSeq && hasSent
}

// unquote returns the string a JSON string token holds, or "" if tok is
// not a string. The protocol's own words are returned without allocating.
func unquote(tok []byte) string {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return ""
	}
	inner := tok[1 : len(tok)-1]
	for _, c := range inner {
		if c == '\\' {
			var s string
			if json.Unmarshal(tok, &s) != nil {
				return ""
			}
			return s
		}
	}
	switch string(inner) {
	case typeWelcome:
		return typeWelcome
	case typePing:
		return typePing
	case typeConfirm:
		return typeConfirm
	case typeReject:
		return typeReject
	case typeDisconnect:
		return typeDisconnect
	case actionEcho:
		return actionEcho
	case actionBroadcast:
		return actionBroadcast
	case actionBroadcastResult:
		return actionBroadcastResult
	}
	return string(inner)
}

// parseInt parses a JSON number that holds an integer. Servers that keep
// numbers as doubles may write one with a fraction or an exponent, which is
// accepted when its value is integral.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return parseIntSlow(b)
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return parseIntSlow(b)
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func parseIntSlow(b []byte) (int64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

// objectScanner iterates over the top-level keys of a JSON object without
// decoding the values. It checks structure only as far as it needs to find
// where each value ends.
type objectScanner struct {
	b       []byte
	i       int
	started bool
	done    bool
	err     error
}

// next returns the next key (without quotes, escapes left as they are) and
// its raw value. It reports false at the end of the object or on an error,
// which is then in s.err.
func (s *objectScanner) next() (key, val []byte, ok bool) {
	if s.err != nil || s.done {
		return nil, nil, false
	}
	s.skipSpace()
	if !s.started {
		if s.i >= len(s.b) || s.b[s.i] != '{' {
			return s.fail(errNotObject)
		}
		s.i++
		s.started = true
		s.skipSpace()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			s.done = true
			return nil, nil, false
		}
	} else {
		if s.i >= len(s.b) {
			return s.fail(errTruncated)
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.skipSpace()
		case '}':
			s.i++
			s.done = true
			return nil, nil, false
		default:
			return s.fail(errSyntax)
		}
	}
	if s.i >= len(s.b) {
		return s.fail(errTruncated)
	}
	if s.b[s.i] != '"' {
		return s.fail(errSyntax)
	}
	end, err := skipString(s.b, s.i)
	if err != nil {
		return s.fail(err)
	}
	key = s.b[s.i+1 : end-1]
	s.i = end
	s.skipSpace()
	if s.i >= len(s.b) {
		return s.fail(errTruncated)
	}
	if s.b[s.i] != ':' {
		return s.fail(errSyntax)
	}
	s.i++
	s.skipSpace()
	end, err = skipValue(s.b, s.i)
	if err != nil {
		return s.fail(err)
	}
	val = s.b[s.i:end]
	s.i = end
	return key, val, true
}

func (s *objectScanner) fail(err error) ([]byte, []byte, bool) {
	s.err = err
	return nil, nil, false
}

func (s *objectScanner) skipSpace() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipString returns the index just past the string token that starts at
// b[i], which must be '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errTruncated
}

// skipValue returns the index just past the JSON value that starts at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errTruncated
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errTruncated
	case ',', '}', ']', ':':
		return 0, errSyntax
	}
	// A number, true, false or null: up to the next delimiter.
	j := i
	for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
		j++
	}
	return j, nil
}

// appendPayload appends a payload object as cablebench sends it.
func appendPayload(dst []byte, action string, run []byte, seq, sent int64, pad int) []byte {
	dst = append(dst, '{')
	if action != "" {
		dst = append(dst, `"action":"`...)
		dst = append(dst, action...)
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"run":`...)
	dst = append(dst, run...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"sent":`...)
	dst = strconv.AppendInt(dst, sent, 10)
	if pad > 0 {
		dst = append(dst, `,"pad":"`...)
		for range pad {
			dst = append(dst, 'x')
		}
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string token.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// subscribeCommand is {"command":"subscribe","identifier":<identifier>}.
func subscribeCommand(identifier string) []byte {
	b := []byte(`{"command":"subscribe","identifier":`)
	b = appendJSONString(b, identifier)
	return append(b, '}')
}

// messageCommand appends {"command":"message","identifier":...,"data":...}
// with data, a JSON object, as the JSON string the protocol wants.
// quotedID is the identifier already encoded as a JSON string token.
func messageCommand(dst, quotedID, data []byte) []byte {
	dst = append(dst, `{"command":"message","identifier":`...)
	dst = append(dst, quotedID...)
	dst = append(dst, `,"data":`...)
	dst = appendJSONString(dst, string(data))
	return append(dst, '}')
}
