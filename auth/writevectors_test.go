package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/auth"
)

// Signed cookies carry no randomness, so the writer must reproduce the
// signed cookies of the Rails vectors byte for byte: same serialized
// value (JSON or MessagePack), same envelope (key order, null "exp",
// purpose, millisecond expiry), same Base64, same HMAC, same escaping.
// The inputs Rails had are the vector's value, and the expiry and the
// presence of a purpose read from its (readable) envelope.
func TestWriteSignedMatchesRails(t *testing.T) {
	n := 0
	for _, v := range loadVectors(t) {
		if v.Jar != "signed" || !v.Expected.OK || len(v.Config.Rotations.Signed) > 0 {
			continue
		}
		if v.Config.Serializer != "json" && v.Config.Serializer != "message_pack" {
			continue // Marshal is not written
		}
		t.Run(v.Name, func(t *testing.T) {
			cfg := configOf(t, v)
			raw, err := url.QueryUnescape(v.HeaderValue)
			if err != nil {
				t.Fatal(err)
			}
			data, _, _ := strings.Cut(raw, "--")
			payload, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				t.Fatalf("vector data is not Base64: %v", err)
			}
			var expires time.Time
			var env struct {
				Rails *struct {
					Exp *string `json:"exp"`
					Pur *string `json:"pur"`
				} `json:"_rails"`
			}
			if json.Unmarshal(payload, &env) == nil && env.Rails != nil {
				if env.Rails.Exp != nil {
					if expires, err = time.Parse(time.RFC3339, *env.Rails.Exp); err != nil {
						t.Fatal(err)
					}
				}
				cfg.NoCookieMetadata = env.Rails.Pur == nil
			} else {
				cfg.NoCookieMetadata = true
			}
			c, err := auth.NewRailsCookies(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var value any = json.RawMessage(v.Expected.Value) // Ruby's key order
			if v.Config.Serializer == "message_pack" {
				if err := json.Unmarshal(v.Expected.Value, &value); err != nil {
					t.Fatal(err)
				}
			}
			got, err := c.SignedValue(v.CookieName, value, expires)
			if err != nil {
				t.Fatalf("SignedValue: %v", err)
			}
			if got != v.HeaderValue {
				t.Errorf("SignedValue(%q, %s, %v) =\n%s\nRails wrote\n%s", v.CookieName, v.Expected.Value, expires, got, v.HeaderValue)
			}
			n++
		})
	}
	if n < 10 {
		t.Errorf("only %d signed vectors compared", n)
	}
}
