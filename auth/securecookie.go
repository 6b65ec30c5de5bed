package auth

import (
	"crypto/aes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// DefaultMaxAge is the lifetime GoCookies gives a value when none is set:
// 30 days, securecookie's own default.
const DefaultMaxAge = 30 * 24 * time.Hour

// GoCookies reads and writes values that Go itself issues, as cookies or as
// query-string tokens (?token=...), with gorilla/securecookie: an HMAC over
// name, timestamp and value, optionally AES-CTR encrypted, in URL-safe
// base64, with the value serialized as JSON. This is not the Rails format
// (use RailsCookies for that); it is for Go applications, or for a Rails
// app that hands the browser a token minted by a Go service. A GoCookies
// is safe for concurrent use.
type GoCookies struct {
	codec  *securecookie.SecureCookie
	maxAge time.Duration
	now    func() time.Time
}

// NewGoCookies returns a codec with hashKey (32 or 64 random bytes
// recommended, required) and blockKey (16, 24 or 32 bytes for AES-128/192/256
// encryption; nil for signed-only values). Values older than maxAge are
// refused with ErrExpired; 0 means DefaultMaxAge.
func NewGoCookies(hashKey, blockKey []byte, maxAge time.Duration) (*GoCookies, error) {
	if len(hashKey) == 0 {
		return nil, errors.New("auth: securecookie hash key is empty")
	}
	if blockKey != nil {
		if _, err := aes.NewCipher(blockKey); err != nil {
			return nil, fmt.Errorf("auth: securecookie block key: %w", err)
		}
	}
	if maxAge < 0 {
		return nil, errors.New("auth: negative securecookie max age")
	}
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	// securecookie's own age check is off (MaxAge(0)) so that an expired
	// value can be told apart: it reports expiry as an unexported error.
	// The timestamp is checked below, after the HMAC has been verified.
	codec := securecookie.New(hashKey, blockKey).MaxAge(0).SetSerializer(securecookie.JSONEncoder{})
	return &GoCookies{codec: codec, maxAge: maxAge, now: time.Now}, nil
}

// Encode returns value, serialized as JSON, authenticated for name (the
// cookie or query parameter it will travel in) and timestamped now.
func (g *GoCookies) Encode(name string, value any) (string, error) {
	return g.codec.Encode(name, value)
}

// Decode checks a value issued by Encode for name and stores it in dst:
// any pointer encoding/json can fill, or a *any, which gets the plain
// values the Rails readers return (int64 for integers).
func (g *GoCookies) Decode(name, value string, dst any) error {
	return g.decode("securecookie", name, value, dst)
}

// Cookie reads and decodes cookie name of r.
func (g *GoCookies) Cookie(r *http.Request, name string, dst any) error {
	c, err := r.Cookie(name)
	if err != nil {
		return &DecodeError{Jar: "securecookie", Name: name, Reason: ReasonNoCookie}
	}
	return g.decode("securecookie", name, c.Value, dst)
}

// Query reads and decodes the query parameter param of r (the token of a
// WebSocket URL such as /cable?token=...).
func (g *GoCookies) Query(r *http.Request, param string, dst any) error {
	v := r.URL.Query().Get(param)
	if v == "" {
		return &DecodeError{Jar: "securecookie parameter", Name: param, Reason: ReasonNoCookie}
	}
	return g.decode("securecookie parameter", param, v, dst)
}

func (g *GoCookies) decode(jar, name, value string, dst any) error {
	fail := func(r Reason, detail string) error {
		return &DecodeError{Jar: jar, Name: name, Reason: r, Detail: detail}
	}
	// Check the form first, so that every later failure but the HMAC's
	// happens on an authenticated value.
	if len(value) > maxSecurecookieLen {
		return fail(ReasonMalformed, "longer than securecookie's 4096-byte limit")
	}
	issued, ok := securecookieTime(value)
	if !ok {
		return fail(ReasonMalformed, "not a securecookie value")
	}
	// A *any gets the same plain values as the Rails readers (int64
	// rather than float64 for integers).
	target := dst
	var raw json.RawMessage
	anyDst, isAny := dst.(*any)
	if isAny {
		target = &raw
	}
	if err := g.codec.Decode(name, value, target); err != nil {
		if errors.Is(err, securecookie.ErrMacInvalid) {
			return fail(ReasonAuthFailed, "HMAC mismatch: wrong hash key, or issued for another name")
		}
		return fail(ReasonDeserializeFailed, err.Error())
	}
	if isAny {
		v, err := decodeJSON(raw)
		if err != nil {
			return fail(ReasonDeserializeFailed, err.Error())
		}
		*anyDst = v
	}
	// The HMAC covers the timestamp, so it can be trusted now.
	if age := g.now().Sub(issued); age > g.maxAge {
		return fail(ReasonExpired, fmt.Sprintf("issued %s ago, max age %s", age.Round(time.Second), g.maxAge))
	}
	return nil
}

// maxSecurecookieLen is securecookie's default maxLength.
const maxSecurecookieLen = 4096

// securecookieTime reads the timestamp of a securecookie value,
// base64url("date|value|mac"), and checks that form.
func securecookieTime(value string) (time.Time, bool) {
	b, err := base64.URLEncoding.DecodeString(value)
	if err != nil {
		return time.Time{}, false
	}
	parts := strings.SplitN(string(b), "|", 3)
	if len(parts) != 3 {
		return time.Time{}, false
	}
	date := parts[0]
	t, err := strconv.ParseInt(date, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(t, 0), true
}
