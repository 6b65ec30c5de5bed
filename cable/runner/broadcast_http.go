package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gocable/gocable/cable"
)

// broadcastConfig holds the flags of the HTTP broadcast endpoint, which
// lets any program (a Rails app without a shared Redis, a job, curl)
// broadcast to streams: POST <path> with Authorization: Bearer <secret>.
// The endpoint exists only when a secret is set.
type broadcastConfig struct {
	path    string
	secret  string
	maxBody int64
}

// defaultBroadcastMaxBody bounds a request body: a batch of Turbo Stream
// HTML fragments fits easily.
const defaultBroadcastMaxBody = 1 << 20

// defaultBroadcastPath is where the endpoint is served by default.
const defaultBroadcastPath = "/_broadcast"

// register registers -broadcast-path, -broadcast-secret and
// -broadcast-max-body on fs. The secret is read from the environment at
// install time, not as a flag default, so -h cannot print it.
func (c *broadcastConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.path, "broadcast-path", envString("GOCABLE_BROADCAST_PATH", defaultBroadcastPath),
		"path of the HTTP broadcast endpoint (env GOCABLE_BROADCAST_PATH); it is served only when -broadcast-secret is set")
	fs.StringVar(&c.secret, "broadcast-secret", "",
		"bearer token the HTTP broadcast endpoint requires (env GOCABLE_BROADCAST_SECRET; prefer the environment, flags show in ps); unset: no endpoint")
	fs.Int64Var(&c.maxBody, "broadcast-max-body", envInt("GOCABLE_BROADCAST_MAX_BODY", defaultBroadcastMaxBody),
		"largest broadcast request body in bytes; larger gets 413 (env GOCABLE_BROADCAST_MAX_BODY)")
}

// install serves the endpoint on mux when a secret is set.
func (c *broadcastConfig) install(mux *http.ServeMux, srv *cable.Server, logger *slog.Logger) error {
	token := secret(c.secret, "GOCABLE_BROADCAST_SECRET")
	if token == "" {
		logger.Debug("http broadcast endpoint disabled: no -broadcast-secret")
		return nil
	}
	if c.path == "" {
		c.path = defaultBroadcastPath
	}
	if !strings.HasPrefix(c.path, "/") {
		return fmt.Errorf("broadcast path %q: must start with /", c.path)
	}
	if c.maxBody <= 0 {
		return fmt.Errorf("broadcast max body %d: must be positive", c.maxBody)
	}
	if len(token) < 16 {
		logger.Warn("the broadcast secret is short; use 32 random bytes or more", "length", len(token))
	}
	h := &broadcastHandler{
		broadcaster: srv,
		secretHash:  sha256.Sum256([]byte(token)),
		maxBody:     c.maxBody,
		logger:      logger,
	}
	if err := handleRoute(mux, c.path, h); err != nil {
		return fmt.Errorf("broadcast path: %w", err)
	}
	logger.Info("http broadcast endpoint enabled", "path", c.path)
	return nil
}

// handleRoute is mux.Handle returning an error instead of panicking on a
// pattern that is invalid or conflicts with one already registered.
func handleRoute(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// broadcaster is what the endpoint needs of *cable.Server.
type broadcaster interface {
	Broadcast(ctx context.Context, stream string, msg any) error
}

// broadcastHandler serves POST requests whose body is one broadcast,
//
//	{"stream":"chat_lobby","data":{"user":"bot","message":"hi"}}
//
// or a JSON array of them, sent in order. data is any JSON value and is
// sent to the subscribers as it is, like ActionCable.server.broadcast
// (stream, data); Turbo Stream HTML is a JSON string. Every entry is
// checked before any is sent.
//
// Answers: 202 {"status":"accepted","broadcasts":N}; 400 bad JSON or
// entry; 401 no or wrong bearer token; 405 not POST; 413 body too large;
// 503 the pub/sub failed (broadcasts says how many went out first). Errors
// are {"error":"..."}.
type broadcastHandler struct {
	broadcaster broadcaster
	secretHash  [sha256.Size]byte
	maxBody     int64
	logger      *slog.Logger
}

// broadcastEntry is one broadcast of a request.
type broadcastEntry struct {
	Stream *string         `json:"stream"`
	Data   json.RawMessage `json:"data"`
}

func (h *broadcastHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !h.authorized(r) {
		// Before reading the body: an unauthenticated client costs nothing.
		w.Header().Set("WWW-Authenticate", `Bearer realm="gocable broadcast"`)
		writeJSONError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		h.logger.Info("http broadcast refused: bad bearer token", "remote", r.RemoteAddr)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.maxBody))
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
		if err := h.broadcaster.Broadcast(r.Context(), *e.Stream, e.Data); err != nil {
			h.logger.Warn("http broadcast failed", "stream", *e.Stream, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "broadcast failed: " + err.Error(), "broadcasts": i})
			return
		}
	}
	h.logger.Debug("http broadcast", "broadcasts", len(entries), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "accepted", "broadcasts": len(entries)})
}

// authorized compares the bearer token in constant time: both sides are
// hashed first, so neither the content nor the length leaks.
func (h *broadcastHandler) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], h.secretHash[:]) == 1
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
