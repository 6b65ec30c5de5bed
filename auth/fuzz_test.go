package auth

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Run a target with, for example:
//
//	go test -fuzz=FuzzDecodeMarshal -fuzztime=60s ./auth/

// vectorSeeds returns the cookie values and plaintexts of the Rails vectors.
func vectorSeeds(f *testing.F) (values []string, plaintexts [][]byte) {
	files, _ := filepath.Glob("../testdata/cookies/rails-*-vectors.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var vf struct {
			Vectors []struct {
				HeaderValue string `json:"cookie_header_value"`
				Header      string `json:"cookie_header"`
				Debug       struct {
					Plaintext  map[string]string `json:"plaintext"`
					Serialized map[string]string `json:"serialized"`
				} `json:"debug"`
			} `json:"vectors"`
		}
		if err := json.Unmarshal(b, &vf); err != nil {
			f.Fatal(err)
		}
		for _, v := range vf.Vectors {
			values = append(values, v.HeaderValue, v.Header)
			for _, m := range []map[string]string{v.Debug.Plaintext, v.Debug.Serialized} {
				if s, ok := m["utf8"]; ok {
					plaintexts = append(plaintexts, []byte(s))
				}
				if s, ok := m["base64"]; ok {
					if p, err := base64.StdEncoding.DecodeString(s); err == nil {
						plaintexts = append(plaintexts, p)
					}
				}
			}
		}
	}
	return values, plaintexts
}

func FuzzDecodeMarshal(f *testing.F) {
	for _, tt := range marshalTests {
		b, _ := hex.DecodeString(tt.hex)
		f.Add(b)
	}
	_, pts := vectorSeeds(f)
	for _, p := range pts {
		if strings.HasPrefix(string(p), "\x04\x08") {
			f.Add(p)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeMarshal(b)
		if err == nil {
			_, _ = json.Marshal(v) // must not blow up either
		}
	})
}

func FuzzDecodeMessagePack(f *testing.F) {
	for _, tt := range msgpackTests {
		b, _ := hex.DecodeString("cc80" + strings.ReplaceAll(tt.hex, " ", ""))
		f.Add(b)
	}
	_, pts := vectorSeeds(f)
	for _, p := range pts {
		if strings.HasPrefix(string(p), "\xcc\x80") {
			f.Add(p)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeMessagePack(b)
		if err == nil {
			_, _ = json.Marshal(v)
		}
	})
}

// fuzzCookies reads with every fallback on, and a fixed clock.
func fuzzCookies(f *testing.F, cfg Config) *RailsCookies {
	cfg.SecretKeyBase = testSKB
	cfg.Now = func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }
	c, err := NewRailsCookies(cfg)
	if err != nil {
		f.Fatal(err)
	}
	return c
}

// FuzzEncrypted feeds arbitrary wire values to the encrypted jar, and
// arbitrary plaintexts sealed with the right key, so that the envelope and
// serializer code behind authentication is reached too.
func FuzzEncrypted(f *testing.F) {
	values, pts := vectorSeeds(f)
	for i, v := range values {
		f.Add(v, pts[i%len(pts)], uint8(i))
	}
	readers := []*RailsCookies{
		fuzzCookies(f, Config{}),
		fuzzCookies(f, Config{Serializer: SerializerJSON, RailsVersion: "7.0"}),
		fuzzCookies(f, Config{Serializer: SerializerHybrid, RailsVersion: "6.0", LegacyEncryption: true}),
		fuzzCookies(f, Config{Serializer: SerializerMessagePack}),
	}
	gcm, _ := DeriveKey(testSKB, SHA256, 0, defaultAuthenticatedEncryptedCookieSalt, 32)
	cbc, _ := DeriveKey(testSKB, SHA1, 0, defaultEncryptedCookieSalt, 32)
	sign, _ := DeriveKey(testSKB, SHA1, 0, defaultEncryptedSignedCookieSalt, 64)
	f.Fuzz(func(t *testing.T, wire string, plaintext []byte, pick uint8) {
		c := readers[int(pick)%len(readers)]
		_, _ = c.Decode(JarEncrypted, "user_id", wire)
		_, _ = c.Read(JarEncrypted, wire, "user_id")
		sealed := sealGCM(t, gcm, plaintext)
		if pick&0x80 != 0 {
			sealed = sealCBC(t, cbc, sign, plaintext)
		}
		v, err := c.Decode(JarEncrypted, "user_id", sealed)
		if err == nil {
			_, _ = json.Marshal(v)
		} else if reasonOf(err) == ReasonAuthFailed && c.version >= 601 {
			t.Fatalf("a value sealed with the right key failed authentication: %v", err)
		}
	})
}

// FuzzSigned does the same for the signed jar.
func FuzzSigned(f *testing.F) {
	values, pts := vectorSeeds(f)
	for i, v := range values {
		f.Add(v, pts[i%len(pts)])
	}
	c := fuzzCookies(f, Config{})
	key, _ := DeriveKey(testSKB, SHA256, 0, defaultSignedCookieSalt, 64)
	f.Fuzz(func(t *testing.T, wire string, plaintext []byte) {
		_, _ = c.Decode(JarSigned, "user_id", wire)
		data := base64.StdEncoding.EncodeToString(plaintext)
		mac := hmac.New(sha1.New, key)
		mac.Write([]byte(data))
		signed := url.QueryEscape(data + "--" + hex.EncodeToString(mac.Sum(nil)))
		v, err := c.Decode(JarSigned, "user_id", signed)
		if err == nil {
			_, _ = json.Marshal(v)
		} else if r := reasonOf(err); r == ReasonAuthFailed ||
			r == ReasonMalformed && len(plaintext) > 0 && !strings.Contains(err.Error(), "[authenticated by") {
			t.Fatalf("a value signed with the right key was not authenticated: %v", err)
		}
	})
}

// FuzzCookieHeader checks the Rack-style header parser.
func FuzzCookieHeader(f *testing.F) {
	values, _ := vectorSeeds(f)
	for _, v := range values {
		f.Add(v, "user_id")
	}
	f.Add("a=1; user_id=x; user_id=y", "user_id")
	f.Add("user_id; user_id=2", "user_id")
	f.Add(";; =; a=%zz", "")
	f.Fuzz(func(t *testing.T, header, name string) {
		v, ok := cookieValue(header, name)
		names := CookieNames(header)
		found := false
		for _, n := range names {
			found = found || n == name
		}
		if ok && !found {
			t.Fatalf("cookieValue(%q, %q) = %q but CookieNames = %q", header, name, v, names)
		}
		if !ok && found && strings.Contains(header, name+"=") && !strings.Contains(header, ";") && strings.HasPrefix(header, name+"=") {
			t.Fatalf("cookieValue(%q, %q) found nothing", header, name)
		}
	})
}
