package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// maxCookieSize is ActionDispatch::Cookies::MAX_COOKIE_SIZE: Rails raises
// CookieOverflow when a cookie's name and value exceed it
// (actionpack/lib/action_dispatch/middleware/cookies.rb, check_for_overflow!).
const maxCookieSize = 4096

// EncryptedValue returns what `cookies.encrypted[name] = { value: v,
// expires: expires }` puts in the Set-Cookie header of the configured Rails
// application, %-escaped as Rack escapes it: v serialized by the jar's
// serializer, wrapped in the metadata envelope with the purpose
// "cookie.<name>" and the expiry (see below), and encrypted with the
// primary cipher and key (the first of Config.KeyDigests, SHA256 when it is
// nil and RailsVersion is 7.0 or later, else SHA1) under a fresh random IV.
// The zero expires means a value with no expiry.
//
// It writes what the Rails of Config.RailsVersion writes
// (actionpack/lib/action_dispatch/middleware/cookies.rb, commit and
// cookie_metadata; activesupport/lib/active_support/messages/metadata.rb):
//
//   - the purpose only from 6.0 and unless Config.NoCookieMetadata
//     (use_cookies_with_metadata = false);
//   - the expiry always, except in 5.2 for an app with LegacyEncryption
//     (5.2 wrote it only with use_authenticated_cookie_encryption);
//   - the value as JSON (encoding/json, which escapes <, >, & and
//     U+2028/U+2029 as ActiveSupport::JSON.encode does) for :json,
//     :hybrid and :json_allow_marshal, or ActiveSupport::MessagePack for
//     :message_pack and :message_pack_allow_marshal (Rails 7.1+).
//
// Marshal is never written. Under :marshal, which Rails 6.1+ reads JSON
// with (MarshalWithJsonFallback, SerializerWithFallback), the value is
// written as JSON; Rails 5.2 and 6.0 read only Marshal there, so for them
// :marshal is an error. A value over 4096 bytes with its name is an error,
// as Rails' CookieOverflow.
//
// Read it back with Decode(JarEncrypted, name, value).
func (c *RailsCookies) EncryptedValue(name string, v any, expires time.Time) (string, error) {
	p, err := c.serialize(v)
	if err != nil {
		return "", err
	}
	sealed, err := c.encrypted[0].seal(c.metadata(name, expires).wrap(p))
	if err != nil {
		return "", fmt.Errorf("auth: encrypting cookie %q: %w", name, err)
	}
	return checkOverflow(name, sealed)
}

// SignedValue is EncryptedValue for `cookies.signed[name] = ...`: the
// same payload, signed with the signed_cookie_digest HMAC of the primary
// key and not encrypted, so anyone can read it. Read it back with
// Decode(JarSigned, name, value).
func (c *RailsCookies) SignedValue(name string, v any, expires time.Time) (string, error) {
	p, err := c.serialize(v)
	if err != nil {
		return "", err
	}
	return checkOverflow(name, generate(c.signed[0].mac, p, c.metadata(name, expires)))
}

// Cookie returns the cookie that Rails' jar (JarEncrypted or JarSigned)
// sets for `cookies.<jar>[name] = { value: v, expires: expires }`: Name,
// the escaped Value of EncryptedValue or SignedValue, Path "/" (Rails'
// default, cookies.rb handle_options) and, when expires is not zero,
// Expires. Set Domain, Secure, HttpOnly and SameSite as the application
// does before sending it with http.SetCookie.
func (c *RailsCookies) Cookie(jar Jar, name string, v any, expires time.Time) (*http.Cookie, error) {
	var value string
	var err error
	switch jar {
	case JarEncrypted:
		value, err = c.EncryptedValue(name, v, expires)
	case JarSigned:
		value, err = c.SignedValue(name, v, expires)
	default:
		return nil, fmt.Errorf("auth: unknown jar %q", string(jar))
	}
	if err != nil {
		return nil, err
	}
	ck := &http.Cookie{Name: name, Value: value, Path: "/"}
	if !expires.IsZero() {
		ck.Expires = expires
	}
	return ck, nil
}

// generate is MessageVerifier#generate for a serialized payload: the
// shared writer of the signed jar and MessageVerifier.Generate.
func generate(s *signer, payload []byte, m Metadata) string {
	return s.sign(b64.EncodeToString(m.wrap(payload)))
}

// metadata is cookie_metadata (cookies.rb) of the configured release.
func (c *RailsCookies) metadata(name string, expires time.Time) Metadata {
	var m Metadata
	if c.version >= 600 || !c.legacyEncryption {
		m.Expires = expires
	}
	if c.version >= 600 && !c.noMetadata {
		m.Purpose = "cookie." + name
	}
	return m
}

// serialize is the jar's serializer.dump (cookies.rb,
// SerializedCookieJars#commit) for what this package writes.
func (c *RailsCookies) serialize(v any) ([]byte, error) {
	switch c.serializer {
	case SerializerMessagePack, SerializerMessagePackAllowMarshal:
		return encodeMessagePack(v)
	case SerializerMarshal:
		if c.version < 601 {
			return nil, errors.New("auth: cannot write cookies for cookies_serializer :marshal before Rails 6.1, which reads only Marshal")
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("auth: cookie value: %w", err)
	}
	return b, nil
}

// checkOverflow escapes value as Rack does and refuses a cookie Rails
// would not set.
func checkOverflow(name, value string) (string, error) {
	if n := len(name) + len(value); n > maxCookieSize {
		return "", fmt.Errorf("auth: cookie %q overflowed with size %d bytes (Rails' limit is %d)", name, n, maxCookieSize)
	}
	return rackEscape(value), nil
}
