package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The Rails vectors cover the 6.1, 7.0 and 7.2 rules with real cookies.
// The rules of the other releases are tested here with cookies sealed by
// the minimal test-only encoders below, which follow
// activesupport/lib/active_support/message_encryptor.rb. They are never
// used as golden data.

const testSKB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func mustKey(t *testing.T, d Digest, salt string, n int) []byte {
	t.Helper()
	k, err := DeriveKey(testSKB, d, 0, salt, n)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var enc64 = base64.StdEncoding

func sealGCM(t *testing.T, key, plaintext []byte) string {
	t.Helper()
	block, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(block)
	iv := make([]byte, 12)
	sealed := g.Seal(nil, iv, plaintext, nil)
	ct, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	return url.QueryEscape(enc64.EncodeToString(ct) + "--" + enc64.EncodeToString(iv) + "--" + enc64.EncodeToString(tag))
}

func sealCBC(t *testing.T, key, signKey, plaintext []byte) string {
	t.Helper()
	block, _ := aes.NewCipher(key)
	pad := 16 - len(plaintext)%16
	p := append([]byte(nil), plaintext...)
	for i := 0; i < pad; i++ {
		p = append(p, byte(pad))
	}
	iv := make([]byte, 16)
	ct := make([]byte, len(p))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, p)
	data := enc64.EncodeToString([]byte(enc64.EncodeToString(ct) + "--" + enc64.EncodeToString(iv)))
	mac := hmac.New(sha1.New, signKey)
	mac.Write([]byte(data))
	return url.QueryEscape(data + "--" + hex.EncodeToString(mac.Sum(nil)))
}

// envelope writes the legacy metadata envelope of metadata.rb.
func envelope(payload []byte, exp, pur string) []byte {
	q := func(s string) string {
		if s == "" {
			return "null"
		}
		return `"` + s + `"`
	}
	return []byte(`{"_rails":{"message":"` + enc64.EncodeToString(payload) + `","exp":` + q(exp) + `,"pur":` + q(pur) + `}}`)
}

func reasonOf(err error) Reason {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

func TestReadingRules(t *testing.T) {
	gcm1 := mustKey(t, SHA1, defaultAuthenticatedEncryptedCookieSalt, 32)
	cbc1 := mustKey(t, SHA1, defaultEncryptedCookieSalt, 32)
	sign1 := mustKey(t, SHA1, defaultEncryptedSignedCookieSalt, 64)
	marshal42 := []byte{4, 8, 'i', 42 + 5}
	msgpack42 := []byte{0xcc, 0x80, 42}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name   string
		cfg    Config
		cookie string // as sent in the header
		want   Reason // "" means the value 42
	}{
		{"5.2 reads no purpose",
			Config{RailsVersion: "5.2", Serializer: SerializerJSON}, sealGCM(t, gcm1, envelope([]byte("42"), "", "")), ""},
		{"5.2 refuses a purpose",
			Config{RailsVersion: "5.2", Serializer: SerializerJSON}, sealGCM(t, gcm1, envelope([]byte("42"), "", "cookie.user_id")), ReasonPurposeMismatch},
		{"6.0 accepts the purpose",
			Config{RailsVersion: "6.0", Serializer: SerializerJSON}, sealGCM(t, gcm1, envelope([]byte("42"), "", "cookie.user_id")), ""},
		{"empty purpose is no purpose",
			Config{}, sealGCM(t, gcm1, []byte(`{"_rails":{"message":"NDI=","exp":null,"pur":""}}`)), ""},
		{"6.0 :marshal refuses JSON",
			Config{RailsVersion: "6.0", Serializer: SerializerMarshal}, sealGCM(t, gcm1, []byte("42")), ReasonDeserializeFailed},
		{"6.0 :marshal reads Marshal",
			Config{RailsVersion: "6.0"}, sealGCM(t, gcm1, marshal42), ""},
		{"6.1 :marshal reads JSON",
			Config{RailsVersion: "6.1", Serializer: SerializerMarshal}, sealGCM(t, gcm1, []byte("42")), ""},
		{"6.0 CBC app refuses GCM",
			Config{RailsVersion: "6.0", LegacyEncryption: true, Serializer: SerializerJSON}, sealGCM(t, gcm1, []byte("42")), ReasonMalformed},
		{"6.1 CBC app reads GCM",
			Config{RailsVersion: "6.1", LegacyEncryption: true, Serializer: SerializerJSON}, sealGCM(t, gcm1, []byte("42")), ""},
		{"CBC app reads CBC",
			Config{RailsVersion: "6.0", LegacyEncryption: true, Serializer: SerializerJSON}, sealCBC(t, cbc1, sign1, []byte("42")), ""},
		{"GCM app reads CBC",
			Config{}, sealCBC(t, cbc1, sign1, []byte("42")), ""},
		{"no cipher fallback",
			Config{NoCipherFallback: true}, sealCBC(t, cbc1, sign1, []byte("42")), ReasonMalformed},
		{"cookies_digest changes the fallback HMAC",
			Config{CookiesDigest: SHA256}, sealCBC(t, cbc1, sign1, []byte("42")), ReasonMalformed},
		{"7.0 :json refuses MessagePack",
			Config{RailsVersion: "7.0", Serializer: SerializerJSON}, sealGCM(t, gcm1, msgpack42), ReasonDeserializeFailed},
		{"7.1 :json reads MessagePack",
			Config{RailsVersion: "7.1", Serializer: SerializerJSON}, sealGCM(t, gcm1, msgpack42), ""},
		{"7.1 :marshal reads MessagePack",
			Config{RailsVersion: "7.1"}, sealGCM(t, gcm1, msgpack42), ""},
		{":message_pack refuses an unknown format",
			Config{Serializer: SerializerMessagePack}, sealGCM(t, gcm1, []byte(" 42")), ReasonDeserializeFailed},
		{":json tries an unknown format as JSON",
			Config{Serializer: SerializerJSON}, sealGCM(t, gcm1, []byte(" 42")), ""},
		{":hybrid reads Marshal",
			Config{RailsVersion: "6.0", Serializer: SerializerHybrid}, sealGCM(t, gcm1, marshal42), ""},
		{":json refuses Marshal",
			Config{Serializer: SerializerJSON}, sealGCM(t, gcm1, marshal42), ReasonSerializerRefused},
		{":message_pack_allow_marshal reads Marshal",
			Config{Serializer: SerializerMessagePackAllowMarshal}, sealGCM(t, gcm1, marshal42), ""},
		{"expires exactly now",
			Config{}, sealGCM(t, gcm1, envelope([]byte("42"), "2030-01-01T00:00:00.000Z", "")), ReasonExpired},
		{"expires a millisecond later",
			Config{}, sealGCM(t, gcm1, envelope([]byte("42"), "2030-01-01T00:00:00.001Z", "")), ""},
		{"expired beats a wrong purpose",
			Config{}, sealGCM(t, gcm1, envelope([]byte("42"), "2029-01-01T00:00:00.000Z", "cookie.other")), ReasonExpired},
		{"envelope message not a string",
			Config{}, sealGCM(t, gcm1, []byte(`{"_rails":{"message":5}}`)), ReasonMalformed},
		{"envelope not JSON",
			Config{}, sealGCM(t, gcm1, []byte(`{"_rails":{`)), ReasonMalformed},
		{"bad exp",
			Config{}, sealGCM(t, gcm1, envelope([]byte("42"), "tomorrow", "")), ReasonMalformed},
		{"JSON with trailing data",
			Config{}, sealGCM(t, gcm1, []byte("42 43")), ReasonDeserializeFailed},
		{"too deep JSON",
			Config{}, sealGCM(t, gcm1, []byte(strings.Repeat("[", 101)+strings.Repeat("]", 101))), ReasonDeserializeFailed},
		{"empty value",
			Config{}, "", ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.SecretKeyBase = testSKB
			cfg.Now = func() time.Time { return now }
			c, err := NewRailsCookies(cfg)
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.Read(JarEncrypted, "a=b; user_id="+tt.cookie+"; c=d", "user_id")
			if got := reasonOf(err); got != tt.want {
				t.Fatalf("Read = %#v, %v; want reason %q", v, err, tt.want)
			}
			if tt.want == "" {
				s, _ := RubyToS(v)
				if s != "42" {
					t.Fatalf("Read = %#v; want 42", v)
				}
			}
		})
	}
}

func TestEncryptedRotations(t *testing.T) {
	oldSKB := strings.Repeat("ab", 64)
	oldGCM, _ := DeriveKey(oldSKB, SHA1, 0, defaultAuthenticatedEncryptedCookieSalt, 32)
	oldCBC, _ := DeriveKey(oldSKB, SHA1, 0, defaultEncryptedCookieSalt, 32)
	sign1 := mustKey(t, SHA1, defaultEncryptedSignedCookieSalt, 64)
	tests := []struct {
		name   string
		cfg    Config
		cookie string
		want   Reason
	}{
		{"GCM rotation", Config{EncryptedRotations: []Rotation{{Secret: oldGCM}}},
			sealGCM(t, oldGCM, []byte("42")), ""},
		{"without the rotation", Config{},
			sealGCM(t, oldGCM, []byte("42")), ReasonAuthFailed},
		{"CBC rotation inherits the CBC primary's sign secret",
			Config{LegacyEncryption: true, KeyDigests: []Digest{SHA1}, EncryptedRotations: []Rotation{{Secret: oldCBC}}},
			sealCBC(t, oldCBC, sign1, []byte("42")), ""},
		{"CBC rotation in a GCM app signs with its secret",
			Config{EncryptedRotations: []Rotation{{Secret: oldCBC, Cipher: "aes-256-cbc"}}},
			sealCBC(t, oldCBC, oldCBC, []byte("42")), ""},
		{"CBC rotation with its own sign secret",
			Config{EncryptedRotations: []Rotation{{Secret: oldCBC, SignSecret: []byte("s3cret"), Cipher: "aes-256-cbc"}}},
			sealCBC(t, oldCBC, []byte("s3cret"), []byte("42")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.SecretKeyBase = testSKB
			c, err := NewRailsCookies(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Decode(JarEncrypted, "user_id", tt.cookie)
			if got := reasonOf(err); got != tt.want {
				t.Fatalf("Decode error = %v; want reason %q", err, tt.want)
			}
		})
	}
}

func TestNewRailsCookiesErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no secret", Config{}, "SecretKeyBase is empty"},
		{"old version", Config{SecretKeyBase: "x", RailsVersion: "5.1"}, "before 5.2"},
		{"unknown version", Config{SecretKeyBase: "x", RailsVersion: "9.0"}, "is not one of"},
		{"bad version", Config{SecretKeyBase: "x", RailsVersion: "seven"}, "MAJOR.MINOR"},
		{"message_pack on 7.0", Config{SecretKeyBase: "x", RailsVersion: "7.0", Serializer: SerializerMessagePack}, "needs Rails 7.1"},
		{"SHA256 on 6.1", Config{SecretKeyBase: "x", RailsVersion: "6.1", KeyDigests: []Digest{SHA256}}, "needs Rails 7.0"},
		{"bad serializer", Config{SecretKeyBase: "x", Serializer: "yaml"}, "unknown cookies_serializer"},
		{"bad cipher", Config{SecretKeyBase: "x", Cipher: "chacha20"}, "unsupported cipher"},
		{"bad digest", Config{SecretKeyBase: "x", SignedDigest: "MD5"}, "unsupported digest"},
		{"bad rotation key", Config{SecretKeyBase: "x", EncryptedRotations: []Rotation{{Secret: []byte("short")}}}, "key must be 32 bytes"},
		{"empty rotation", Config{SecretKeyBase: "x", SignedRotations: []Rotation{{}}}, "empty Secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRailsCookies(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRailsCookies(%+v) error = %v; want %q", tt.cfg, err, tt.want)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	tests := []struct {
		version string
		legacy  bool
		digest  Digest
		sz      Serializer
	}{
		{"5.0", true, SHA1, SerializerMarshal},
		{"5.1", true, SHA1, SerializerMarshal},
		{"5.2", false, SHA1, SerializerMarshal},
		{"6.0", false, SHA1, SerializerMarshal},
		{"6.1", false, SHA1, SerializerMarshal},
		{"7.0", false, SHA256, SerializerJSON},
		{"7.1", false, SHA256, SerializerJSON},
		{"7.2", false, SHA256, SerializerJSON},
		{"8.0", false, SHA256, SerializerJSON},
		{"8.1", false, SHA256, SerializerJSON},
	}
	for _, tt := range tests {
		c, err := LoadDefaults(tt.version)
		if err != nil {
			t.Fatalf("LoadDefaults(%q): %v", tt.version, err)
		}
		if c.LegacyEncryption != tt.legacy || len(c.KeyDigests) != 1 || c.KeyDigests[0] != tt.digest || c.Serializer != tt.sz {
			t.Errorf("LoadDefaults(%q) = %+v; want legacy %v, digest %s, serializer %s", tt.version, c, tt.legacy, tt.digest, tt.sz)
		}
		c.SecretKeyBase = testSKB
		if _, err := NewRailsCookies(c); err != nil {
			t.Errorf("NewRailsCookies(LoadDefaults(%q)): %v", tt.version, err)
		}
	}
	for _, bad := range []string{"", "4.2", "7", "8.2", "x.y"} {
		if _, err := LoadDefaults(bad); err == nil {
			t.Errorf("LoadDefaults(%q) succeeded", bad)
		}
	}
}
