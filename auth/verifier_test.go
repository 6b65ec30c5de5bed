package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// signSHA1 signs data as a SHA1 MessageVerifier does, for test messages
// Rails would not write itself.
func signSHA1(key []byte, data string) string {
	mac := hmac.New(sha1.New, key)
	mac.Write([]byte(data))
	return data + "--" + hex.EncodeToString(mac.Sum(nil))
}

func TestMessageVerifier(t *testing.T) {
	now := time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC)
	k1, k2 := []byte("first secret"), []byte("second secret")
	v, err := NewMessageVerifier(SHA1, k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	old, err := NewMessageVerifier(SHA1, k2)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"id":42}`)
	b64url := base64.RawURLEncoding.EncodeToString([]byte(`"a?>b"`)) // has "-" or "_"
	if !strings.ContainsAny(b64url, "-_") {
		t.Fatalf("%q is not URL-safe-only Base64", b64url)
	}
	tests := []struct {
		name     string
		signed   string
		purpose  string
		want     string // the payload, or "" for an error
		reason   Reason
		jsonOnly bool // VerifyJSON only
	}{
		{"plain", v.Generate(payload, Metadata{}), "", string(payload), "", false},
		{"purpose", v.Generate(payload, Metadata{Purpose: "login"}), "login", string(payload), "", false},
		{"wrong purpose", v.Generate(payload, Metadata{Purpose: "login"}), "reset", "", ReasonPurposeMismatch, false},
		{"purpose not expected", v.Generate(payload, Metadata{Purpose: "login"}), "", "", ReasonPurposeMismatch, false},
		{"purpose missing", v.Generate(payload, Metadata{}), "login", "", ReasonPurposeMismatch, false},
		{"unexpired", v.Generate(payload, Metadata{Expires: now.Add(time.Millisecond)}), "", string(payload), "", false},
		{"expired at exp", v.Generate(payload, Metadata{Expires: now}), "", "", ReasonExpired, false},
		{"rotated secret", old.Generate(payload, Metadata{}), "", string(payload), "", false},
		{"tampered", strings.Replace(v.Generate(payload, Metadata{}), "e", "f", 1), "", "", ReasonAuthFailed, false},
		{"digest not at the end", v.Generate(payload, Metadata{}) + "--00", "", "", ReasonMalformed, false},
		{"url-safe Base64 (Rails 8.1)", signSHA1(k1, b64url), "", `"a?>b"`, "", false},
		{"not Base64", signSHA1(k1, "%%%%"), "", "", ReasonMalformed, false},
		{"blank data", signSHA1(k1, "  "), "", "", ReasonMalformed, false},
		{"7.1 data envelope", signSHA1(k1, base64.StdEncoding.EncodeToString([]byte(`{"_rails":{"data":"room","pur":"turbo"}}`))), "turbo", `"room"`, "", true},
		{"7.1 data envelope, expired", signSHA1(k1, base64.StdEncoding.EncodeToString([]byte(`{"_rails":{"data":1,"exp":"2026-12-08T01:59:59.999Z"}}`))), "", "", ReasonExpired, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(fn string, got []byte, err error) {
				t.Helper()
				if tt.reason == "" {
					if err != nil || string(got) != tt.want {
						t.Errorf("%s(%q, %q) = %s, %v; want %s", fn, tt.signed, tt.purpose, got, err, tt.want)
					}
					return
				}
				if reasonOf(err) != tt.reason {
					t.Errorf("%s(%q, %q) = %s, %v; want reason %s", fn, tt.signed, tt.purpose, got, err, tt.reason)
				}
				wantErr := ErrInvalid
				if tt.reason == ReasonExpired {
					wantErr = ErrExpired
				}
				if !errors.Is(err, wantErr) {
					t.Errorf("%s error %v is not %v", fn, err, wantErr)
				}
			}
			if !tt.jsonOnly {
				got, err := v.Verify(tt.signed, tt.purpose, now)
				check("Verify", got, err)
			}
			got, err := v.VerifyJSON(tt.signed, tt.purpose, now)
			check("VerifyJSON", got, err)
		})
	}
	if _, err := NewMessageVerifier(SHA1); err == nil {
		t.Error("NewMessageVerifier with no secret succeeded")
	}
	if _, err := NewMessageVerifier(SHA1, k1, nil); err == nil {
		t.Error("NewMessageVerifier with an empty secret succeeded")
	}
	if _, err := NewMessageVerifier("MD5", k1); err == nil {
		t.Error("NewMessageVerifier with MD5 succeeded")
	}
}

// The envelope is Rails' legacy one, byte for byte: key order, nulls and
// the expiry in UTC truncated to milliseconds (metadata.rb, pick_expiry).
func TestMetadataWrap(t *testing.T) {
	exp := time.Date(2030, 1, 2, 4, 5, 6, 789999999, time.FixedZone("CET", 3600))
	tests := []struct {
		m    Metadata
		want string
	}{
		{Metadata{}, `42`},
		{Metadata{Purpose: "cookie.a<b"}, `{"_rails":{"message":"NDI=","exp":null,"pur":"cookie.a\u003cb"}}`},
		{Metadata{Expires: exp}, `{"_rails":{"message":"NDI=","exp":"2030-01-02T03:05:06.789Z","pur":null}}`},
	}
	for _, tt := range tests {
		if got := string(tt.m.wrap([]byte("42"))); got != tt.want {
			t.Errorf("%+v.wrap(42) = %s; want %s", tt.m, got, tt.want)
		}
	}
}

// The cookie reader follows each release's envelope rules
// (messages/metadata.rb): before 7.1 any JSON object with "_rails" is an
// envelope; from 7.1 only one that starts {"_rails":{"message":, so a
// reordered one is the cookie's value itself. URL-safe Base64 is read by
// the signed jar (a MessageVerifier) from 8.1 only.
func TestEnvelopeRulesByRelease(t *testing.T) {
	now := time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC)
	gcm1 := mustKey(t, SHA1, defaultAuthenticatedEncryptedCookieSalt, 32)
	signKey := mustKey(t, SHA1, defaultSignedCookieSalt, 64)
	reordered := []byte(`{"_rails":{"pur":"cookie.user_id","exp":null,"message":"NDI="}}`)
	urlSafe := signSHA1(signKey, base64.RawURLEncoding.EncodeToString([]byte(`"?>?>"`)))
	if !strings.ContainsAny(urlSafe[:8], "-_") {
		t.Fatalf("%q is not URL-safe-only Base64", urlSafe)
	}

	tests := []struct {
		name, version string
		jar           Jar
		value         string
		want          any // nil: refused
	}{
		{"reordered envelope, 6.1", "6.1", JarEncrypted, sealGCM(t, gcm1, reordered), int64(42)},
		{"reordered envelope, 7.0", "7.0", JarEncrypted, sealGCM(t, gcm1, reordered), int64(42)},
		{"reordered envelope, 7.1: a Hash", "7.1", JarEncrypted, sealGCM(t, gcm1, reordered),
			map[string]any{"_rails": map[string]any{"pur": "cookie.user_id", "exp": nil, "message": "NDI="}}},
		{"url-safe signed, 8.0", "8.0", JarSigned, url.QueryEscape(urlSafe), nil},
		{"url-safe signed, 8.1", "8.1", JarSigned, url.QueryEscape(urlSafe), "?>?>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewRailsCookies(Config{SecretKeyBase: testSKB, RailsVersion: tt.version, KeyDigests: []Digest{SHA1},
				Serializer: SerializerJSON, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Decode(tt.jar, "user_id", tt.value)
			switch {
			case tt.want == nil && err == nil:
				t.Errorf("Decode = %#v; want a refusal", got)
			case tt.want != nil && (err != nil || !reflect.DeepEqual(got, tt.want)):
				t.Errorf("Decode = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}
