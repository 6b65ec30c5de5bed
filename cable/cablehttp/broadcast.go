package cablehttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gocable/gocable/cable"
)

// DefaultMaxBody is the largest request body a [Broadcast] with no MaxBody
// reads: a batch of Turbo Stream HTML fragments fits easily.
const DefaultMaxBody = 1 << 20

// DefaultReadTimeout bounds reading a [Broadcast]'s request body when
// ReadTimeout is zero: Puma's first_data_timeout, which Rails apps run
// behind.
const DefaultReadTimeout = 30 * time.Second

// Broadcaster publishes msg to every subscriber of stream, as
// ActionCable.server.broadcast does. *cable.Server implements it.
type Broadcaster interface {
	Broadcast(ctx context.Context, stream string, msg any) error
}

var _ Broadcaster = (*cable.Server)(nil)

// errNoServer is the broadcast error of a Broadcast with no Server.
var errNoServer = errors.New("cablehttp: no Server to broadcast with")

// Broadcast is an http.Handler that lets any program (a Rails app without
// a shared Redis, a job, curl) broadcast to streams: it serves POST
// requests carrying Authorization: Bearer <Token> whose body is one
// broadcast,
//
//	{"stream":"chat_lobby","data":{"user":"bot","message":"hi"}}
//
// or a JSON array of them, sent in order. data is any JSON value and is
// sent to the subscribers as it is, the message of
// ActionCable.server.broadcast(stream, data)
// (actioncable/lib/action_cable/server/broadcasting.rb, which sends the
// JSON encoding of the message); Turbo Stream HTML is a JSON string. Every
// entry is checked before any is sent: an unknown key (a typo such as
// "steam"), a missing or empty stream, a missing data or invalid UTF-8
// refuses the whole request.
//
// Answers are JSON: 202 {"status":"accepted","broadcasts":N}; 400 bad JSON
// or entry; 401 no or wrong bearer token; 405 not POST; 408 body not read
// within ReadTimeout (the connection is then closed); 413 body larger
// than MaxBody; 503 the broadcast failed (broadcasts says how many went
// out first). Errors are {"error":"..."}.
//
// The zero value refuses every request with 401: the endpoint is open
// only once Token is set.
type Broadcast struct {
	// Server sends the broadcasts, usually the *cable.Server. Nil answers
	// every authorized, valid request with 503.
	Server Broadcaster
	// Token is the bearer token a request must carry. It is compared in
	// constant time. Empty refuses every request.
	Token string
	// MaxBody is the largest request body in bytes; a larger one gets
	// 413. Zero or less means DefaultMaxBody.
	MaxBody int64
	// ReadTimeout bounds reading the request body, from when the handler
	// starts, so that a client trickling its body cannot hold a
	// connection and a goroutine for ever: past it the request gets 408
	// and its connection is closed. It is set with
	// http.ResponseController.SetReadDeadline, and replaces the
	// http.Server's ReadTimeout for the body. Zero means
	// DefaultReadTimeout; negative leaves the http.Server's deadline.
	ReadTimeout time.Duration
	// Logger receives a line for each refused token (Info), failed
	// broadcast (Warn) and accepted request (Debug). Nil means
	// slog.Default().
	Logger *slog.Logger
}

var _ http.Handler = Broadcast{}

// broadcastEntry is one broadcast of a request.
type broadcastEntry struct {
	Stream *string         `json:"stream"`
	Data   json.RawMessage `json:"data"`
}

// ServeHTTP sends the broadcasts of an authorized POST request.
func (h Broadcast) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := h.Logger
	if logger == nil {
		logger = slog.Default()
	}
	maxBody := h.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !h.authorized(r) {
		// Before reading the body: an unauthenticated client costs nothing.
		w.Header().Set("WWW-Authenticate", `Bearer realm="gocable broadcast"`)
		writeJSONError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		logger.Info("http broadcast refused: bad bearer token", "remote", r.RemoteAddr)
		return
	}
	readTimeout := h.ReadTimeout
	if readTimeout == 0 {
		readTimeout = DefaultReadTimeout
	}
	if readTimeout > 0 {
		// A ResponseWriter that cannot (a test recorder, an HTTP/2
		// stream of a server without deadlines) leaves the server's.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(readTimeout))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The program that runs the http.Server counts and logs it at
			// warn (package runner does): a handler cannot rate-limit
			// its log across requests.
			logger.Debug("http broadcast: body not read in time", "timeout", readTimeout, "remote", r.RemoteAddr)
			w.Header().Set("Connection", "close")
			writeJSONError(w, http.StatusRequestTimeout, "body not read in time")
			return
		}
		writeJSONError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	entries, err := parseBroadcasts(body)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	for i, e := range entries {
		err := errNoServer
		if h.Server != nil {
			err = h.Server.Broadcast(r.Context(), *e.Stream, e.Data)
		}
		if err != nil {
			logger.Warn("http broadcast failed", "stream", *e.Stream, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "broadcast failed: " + err.Error(), "broadcasts": i})
			return
		}
	}
	logger.Debug("http broadcast", "broadcasts", len(entries), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "accepted", "broadcasts": len(entries)})
}

// authorized compares the bearer token in constant time: both sides are
// hashed first, so neither the content nor the length leaks. An empty
// Token matches nothing, not even an empty bearer token.
func (h Broadcast) authorized(r *http.Request) bool {
	if h.Token == "" {
		return false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	want := sha256.Sum256([]byte(h.Token))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// parseBroadcasts reads a body that is one broadcast object or an array of
// them, and checks every entry.
func parseBroadcasts(body []byte) ([]broadcastEntry, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errors.New(`empty body: want {"stream":"...","data":...} or an array of them`)
	}
	if !utf8.Valid(body) {
		// A client must fail a connection on a text frame that is not
		// UTF-8 (RFC 6455 §8.1), so this would disconnect every subscriber.
		return nil, errors.New("invalid UTF-8 in the body")
	}
	var entries []broadcastEntry
	switch body[0] {
	case '{':
		var e broadcastEntry
		if err := strictUnmarshal(body, &e); err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		entries = []broadcastEntry{e}
	case '[':
		if err := strictUnmarshal(body, &entries); err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		if len(entries) == 0 {
			return nil, errors.New("empty batch")
		}
	default:
		return nil, errors.New(`invalid JSON: want {"stream":"...","data":...} or an array of them`)
	}
	for i, e := range entries {
		where := ""
		if len(entries) > 1 || body[0] == '[' {
			where = fmt.Sprintf("broadcast %d: ", i)
		}
		switch {
		case e.Stream == nil:
			return nil, fmt.Errorf(`%s"stream" is missing`, where)
		case *e.Stream == "":
			return nil, fmt.Errorf(`%s"stream" is empty`, where)
		case len(e.Data) == 0:
			return nil, fmt.Errorf(`%s"data" is missing`, where)
		}
	}
	return entries, nil
}

// strictUnmarshal is json.Unmarshal that refuses unknown fields (a typo
// such as "steam" must not broadcast to nowhere) and trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// writeJSON answers status with v as JSON, never cached. The write error
// is dropped: the client has gone, and there is no one left to tell.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
