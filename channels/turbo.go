package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gocable/gocable/auth"
	"github.com/gocable/gocable/cable"
)

// TurboVerifierSalt is the key generator salt of Turbo's stream name
// verifier: turbo-rails sets Turbo.signed_stream_verifier_key to
// Rails.application.key_generator.generate_key("turbo/signed_stream_verifier_key")
// unless config.turbo.signed_stream_verifier_key is set
// (hotwired/turbo-rails lib/turbo/engine.rb, initializer
// "turbo.signed_stream_verifier_key").
const TurboVerifierSalt = "turbo/signed_stream_verifier_key"

// turboKeyLength is generate_key's default key_size
// (activesupport/lib/active_support/key_generator.rb).
const turboKeyLength = 64

// ErrInvalidStreamName is the error of TurboVerifier.Verify for every
// signed stream name Turbo would not accept; the error's text says why.
var ErrInvalidStreamName = errors.New("channels: invalid signed stream name")

// TurboVerifierKey returns the key turbo-rails derives from a Rails app's
// secret_key_base: 64 bytes of the application key generator (PBKDF2 with
// digest, iterations <= 0 meaning Rails' 1000) for TurboVerifierSalt.
// digest is config.active_support.key_generator_hash_digest_class: SHA1
// before config.load_defaults 7.0, SHA256 from 7.0 on.
func TurboVerifierKey(secretKeyBase string, digest auth.Digest, iterations int) ([]byte, error) {
	key, err := auth.DeriveKey(secretKeyBase, digest, iterations, TurboVerifierSalt, turboKeyLength)
	if err != nil {
		return nil, fmt.Errorf("channels: turbo verifier key: %w", err)
	}
	return key, nil
}

// TurboVerifier checks and makes signed stream names the way
// Turbo.signed_stream_verifier does: an ActiveSupport::MessageVerifier
// with digest SHA256 and the JSON serializer (hotwired/turbo-rails
// lib/turbo-rails.rb). A signed name is Base64(JSON(name)) + "--" + the
// hex HMAC-SHA256 of the Base64 text. The message format, its metadata
// envelope and their rules are auth.MessageVerifier's, the one
// implementation the cookie jars use too.
//
// A TurboVerifier is immutable and safe for concurrent use.
type TurboVerifier struct {
	mv  *auth.MessageVerifier
	now func() time.Time // for tests; nil means time.Now
}

// NewTurboVerifier returns a verifier that accepts names signed with any
// of keys and signs with the first. Several keys serve an app whose key
// generator digest is unknown (both the SHA1- and the SHA256-derived key)
// or a key rotation.
func NewTurboVerifier(keys ...[]byte) (*TurboVerifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("channels: turbo verifier: no key")
	}
	for i, k := range keys {
		if len(k) == 0 {
			return nil, fmt.Errorf("channels: turbo verifier: key %d is empty", i)
		}
	}
	mv, err := auth.NewMessageVerifier(auth.SHA256, keys...)
	if err != nil {
		return nil, fmt.Errorf("channels: turbo verifier: %w", err)
	}
	return &TurboVerifier{mv: mv}, nil
}

// Verify returns the stream name Turbo::StreamsChannel would stream for a
// signed_stream_name, or an error wrapping ErrInvalidStreamName when it
// would reject the subscription.
//
// The message is read by auth.MessageVerifier.VerifyJSON with no purpose
// (ActiveSupport 7.1+ rules, which every older release agrees with on the
// names turbo-rails makes; see its doc for the details). The value is then
// streamed as stream_from's String(value) writes it: a JSON string as
// itself, an integer in decimal, true as "true"; false and null are
// rejected, as in Ruby. Floats, arrays and objects, which turbo-rails
// never signs, are rejected too (Ruby would stream their to_s).
func (v *TurboVerifier) Verify(signed string) (string, error) {
	now := time.Now
	if v.now != nil {
		now = v.now
	}
	value, err := v.mv.VerifyJSON(signed, "", now())
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidStreamName, err)
	}
	name, ok := rubyStreamName(value)
	if !ok {
		return "", fmt.Errorf("%w: the signed value %s is not a stream name", ErrInvalidStreamName, truncateJSON(value))
	}
	return name, nil
}

// Generate signs name as Turbo::StreamsChannel.signed_stream_name does,
// with the first key; the result is byte for byte what Ruby makes. name
// must be valid UTF-8, as Ruby's JSON generator requires.
func (v *TurboVerifier) Generate(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errors.New("channels: turbo: stream name is not UTF-8")
	}
	return v.mv.Generate(rubyJSONString(name), auth.Metadata{}), nil
}

// TurboStreamName joins streamables into a stream name as turbo-rails'
// stream_name_from does: each one's to_gid_param (a cable.GlobalIDer) or
// to_param, nested lists flattened, joined with ":"
// (app/channels/turbo/streams/stream_name.rb). The accepted types are
// those of cable.BroadcastingFor.
func TurboStreamName(streamables ...any) (string, error) {
	// BroadcastingFor writes the channel name, "" here, and then ":" before
	// each part, which is the same join.
	name, err := cable.BroadcastingFor("", streamables...)
	if err != nil {
		return "", fmt.Errorf("channels: turbo stream name: %w", err)
	}
	return strings.TrimPrefix(name, ":"), nil
}

// rubyInteger is a JSON number that Ruby's JSON parser reads as an Integer.
var rubyInteger = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// rubyStreamName is String(value) for the values stream_from can take
// from a signed name; ok is false for a value Turbo rejects (nil, false)
// or one we refuse.
func rubyStreamName(value json.RawMessage) (name string, ok bool) {
	switch {
	case len(value) > 0 && value[0] == '"':
		if err := json.Unmarshal(value, &name); err != nil {
			return "", false
		}
		return name, true
	case string(value) == "true":
		return "true", true
	case string(value) == "-0":
		return "0", true
	case rubyInteger.Match(value):
		return string(value), true
	}
	return "", false
}

// rubyJSONString is Ruby's JSON.dump of a string (json 2.x generator
// defaults): quotes, backslashes and control characters escaped, control
// characters without a short form as lowercase \u00xx, everything else,
// "/", "<", U+2028 and all, written as it is. encoding/json differs on
// <, >, & and U+2028/9.
func rubyJSONString(s string) []byte {
	const hexDigits = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// truncateJSON shortens a JSON value for an error message.
func truncateJSON(v json.RawMessage) string {
	const max = 40
	if len(v) > max {
		return string(v[:max]) + "…"
	}
	return string(v)
}

// TurboStreams is Turbo::StreamsChannel of hotwired/turbo-rails
// (app/channels/turbo/streams_channel.rb): the channel behind
// turbo_stream_from and <turbo-cable-stream-source>. It verifies the
// identifier's signed_stream_name and streams the name it holds, so
// broadcasts made with Turbo::StreamsChannel.broadcast_*_to (from Rails
// through a shared pub/sub, or through any Broadcast) reach the page. A
// name that does not verify is rejected.
//
// Register it under its Ruby name:
//
//	srv.Handle("Turbo::StreamsChannel", func() cable.Channel {
//		return &channels.TurboStreams{Verifier: v}
//	})
type TurboStreams struct {
	// Verifier checks signed stream names; it must not be nil.
	Verifier *TurboVerifier
	// Logger, if set, gets a debug line for each rejected name and why.
	Logger *slog.Logger
}

var _ cable.Channel = (*TurboStreams)(nil)

// Subscribed streams the verified signed_stream_name, or rejects the
// subscription.
func (t *TurboStreams) Subscribed(ctx context.Context, s *cable.Subscription) error {
	var p struct {
		Signed json.RawMessage `json:"signed_stream_name"`
	}
	if err := s.DecodeParams(&p); err != nil {
		return err
	}
	var signed string
	if err := json.Unmarshal(p.Signed, &signed); err != nil {
		t.rejected(s, errors.New("signed_stream_name is missing or not a string"))
		return cable.ErrRejected
	}
	name, err := t.Verifier.Verify(signed)
	if err != nil {
		t.rejected(s, err)
		return cable.ErrRejected
	}
	return s.StreamFrom(ctx, name)
}

func (t *TurboStreams) rejected(s *cable.Subscription, why error) {
	if t.Logger != nil {
		t.Logger.Debug("turbo: subscription rejected", "identifier", s.Identifier(), "err", why)
	}
}

// Unsubscribed does nothing: the server stops the stream.
func (t *TurboStreams) Unsubscribed(ctx context.Context, s *cable.Subscription) {}

// Perform returns cable.ErrUnknownAction: Turbo::StreamsChannel has no
// actions.
func (t *TurboStreams) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return cable.ErrUnknownAction
}
