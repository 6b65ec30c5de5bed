package auth

import (
	"errors"
	"strconv"
	"strings"
)

// The sentinel errors. Every error that RailsCookies, MessageVerifier,
// GoCookies and WardenUser return for a request is a *DecodeError whose
// Unwrap returns exactly one of them, so callers test with errors.Is and
// log the DecodeError for the details. (Errors of the constructors and of
// the cookie writers are plain errors.) None of them is meant for the
// client: Rails itself answers every failure with nil
// (actionpack/lib/action_dispatch/middleware/cookies.rb, AbstractCookieJar#[]).
var (
	// ErrNoCookie means the request carries no cookie (or token) of that
	// name; for Rails this is cookies.encrypted[name] == nil before any
	// decoding.
	ErrNoCookie = errors.New("auth: no cookie")

	// ErrExpired means the value was authentic but its expiry has passed:
	// the "exp" of the Rails metadata envelope
	// (activesupport/lib/active_support/messages/metadata.rb), or the
	// securecookie timestamp is older than the allowed age.
	ErrExpired = errors.New("auth: cookie expired")

	// ErrInvalid means the value was present but cannot be trusted or read:
	// malformed, not authenticated by any configured key, issued for another
	// cookie name, or refused by the serializer.
	ErrInvalid = errors.New("auth: invalid cookie")

	// ErrNoUser means a valid session holds no signed-in user, that is no
	// "warden.user.<scope>.key" entry (see WardenUser).
	ErrNoUser = errors.New("auth: no signed-in user")
)

// Reason says why a value was refused. The first five values are the
// error kinds used by the Rails test vectors in testdata/cookies.
type Reason string

// The reasons. ReasonNoCookie, ReasonExpired and ReasonNoUser unwrap to
// ErrNoCookie, ErrExpired and ErrNoUser; every other reason unwraps to
// ErrInvalid.
const (
	// ReasonNoCookie: no cookie (or token) of that name.
	ReasonNoCookie Reason = "no_cookie"
	// ReasonMalformed: not the wire format (separators, base64, lengths,
	// metadata envelope).
	ReasonMalformed Reason = "malformed"
	// ReasonAuthFailed: well formed, but no configured key authenticates
	// it: wrong secret_key_base, key digest, salt or cipher, or tampered.
	ReasonAuthFailed Reason = "auth_failed"
	// ReasonExpired: authentic but past its "exp".
	ReasonExpired Reason = "expired"
	// ReasonPurposeMismatch: authentic but written for another cookie name
	// ("pur" is "cookie.<other>"), or, for MessageVerifier, for another
	// purpose than the one expected, or without the one expected.
	ReasonPurposeMismatch Reason = "purpose_mismatch"
	// ReasonDeserializeFailed: authentic but the payload cannot be parsed,
	// or has a form the caller did not ask for.
	ReasonDeserializeFailed Reason = "deserialize_failed"
	// ReasonSerializerRefused: authentic, but in a format the configured
	// cookies_serializer refuses (Marshal under :json or :message_pack).
	// The Rails vectors count it as deserialize_failed.
	ReasonSerializerRefused Reason = "serializer_refused"
	// ReasonNoUser: the session has no Warden user for the scope.
	ReasonNoUser Reason = "no_user"
)

// DecodeError is the error of every reader in this package. Its text is
// meant for the server log: it names the jar, the cookie and the reason but
// never contains a secret or the cookie value.
type DecodeError struct {
	// Jar says where the value came from: "encrypted", "signed" or
	// "session" (a cookie), "session entry" (a key of the session),
	// "securecookie" or "securecookie parameter" (GoCookies), or "signed
	// message" (MessageVerifier, with the expected purpose as Name).
	Jar    string
	Name   string // the cookie, parameter or session key
	Reason Reason
	Detail string // human readable explanation, may be empty
}

// Error returns e.g. `auth: encrypted cookie "user_id": auth_failed: ...`.
func (e *DecodeError) Error() string {
	what := e.Jar
	if !strings.Contains(what, " ") {
		what += " cookie"
	}
	s := "auth: " + what + " " + strconv.Quote(e.Name) + ": " + string(e.Reason)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error for e.Reason: ErrNoCookie, ErrExpired,
// ErrNoUser or ErrInvalid.
func (e *DecodeError) Unwrap() error {
	switch e.Reason {
	case ReasonNoCookie:
		return ErrNoCookie
	case ReasonExpired:
		return ErrExpired
	case ReasonNoUser:
		return ErrNoUser
	default:
		return ErrInvalid
	}
}
