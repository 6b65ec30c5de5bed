package identify_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocable/gocable/auth"
)

// railsConfig is the part of a testdata/cookies vector (or of a cookie
// minted by testdata/e2e-cookies/rails_cookie.rb) that says how Rails was
// set up.
type railsConfig struct {
	KeyDigest     string  `json:"key_generator_hash_digest"`
	Iterations    int     `json:"key_generator_iterations"`
	Authenticated bool    `json:"use_authenticated_cookie_encryption"`
	Serializer    string  `json:"cookies_serializer"`
	Cipher        *string `json:"encrypted_cookie_cipher"`
	SignedDigest  *string `json:"signed_cookie_digest"`
	CookiesDigest *string `json:"cookies_digest"`
	Salts         struct {
		Signed          string `json:"signed_cookie_salt"`
		Encrypted       string `json:"encrypted_cookie_salt"`
		EncryptedSigned string `json:"encrypted_signed_cookie_salt"`
		Authenticated   string `json:"authenticated_encrypted_cookie_salt"`
	} `json:"salts"`
	Rotations struct {
		Encrypted []json.RawMessage `json:"encrypted"`
		Signed    []json.RawMessage `json:"signed"`
	} `json:"rotations"`
}

// railsCookie is a cookie Rails wrote and what Rails read back from it.
type railsCookie struct {
	Name          string          `json:"name"`
	RailsVersion  string          `json:"rails_version"`
	SecretKeyBase string          `json:"secret_key_base"`
	Config        json.RawMessage `json:"config"`
	Jar           string          `json:"jar"`
	CookieName    string          `json:"cookie_name"`
	Header        string          `json:"cookie_header"`
	Expected      struct {
		OK        bool            `json:"ok"`
		Value     json.RawMessage `json:"value"`
		ErrorKind *string         `json:"error_kind"`
	} `json:"expected"`
}

// toS renders the value Rails read as Ruby's to_s renders an id.
func (c railsCookie) toS(t *testing.T) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(c.Expected.Value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: value %s: %v", c.Name, c.Expected.Value, err)
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	t.Fatalf("%s: value %s is not an id", c.Name, c.Expected.Value)
	return ""
}

// readers returns the RailsCookies that reads c as the app that wrote it.
func (c railsCookie) readers(t *testing.T, sessionKey string) *auth.RailsCookies {
	t.Helper()
	var rc railsConfig
	if err := json.Unmarshal(c.Config, &rc); err != nil {
		t.Fatal(err)
	}
	if len(rc.Rotations.Encrypted)+len(rc.Rotations.Signed) > 0 {
		t.Fatalf("%s: rotations are not supported here", c.Name)
	}
	d, err := auth.ParseDigest(rc.KeyDigest)
	if err != nil {
		t.Fatal(err)
	}
	sz, err := auth.ParseSerializer(rc.Serializer)
	if err != nil {
		t.Fatal(err)
	}
	version := c.RailsVersion
	if parts := strings.Split(version, "."); len(parts) > 2 {
		version = parts[0] + "." + parts[1]
	}
	cfg := auth.Config{
		SecretKeyBase:                    c.SecretKeyBase,
		RailsVersion:                     version,
		KeyDigests:                       []auth.Digest{d},
		Iterations:                       rc.Iterations,
		LegacyEncryption:                 !rc.Authenticated,
		Serializer:                       sz,
		SignedCookieSalt:                 rc.Salts.Signed,
		EncryptedCookieSalt:              rc.Salts.Encrypted,
		EncryptedSignedCookieSalt:        rc.Salts.EncryptedSigned,
		AuthenticatedEncryptedCookieSalt: rc.Salts.Authenticated,
		SessionKey:                       sessionKey,
	}
	if rc.Cipher != nil {
		cfg.Cipher = *rc.Cipher
	}
	for _, p := range []struct {
		dst *auth.Digest
		src *string
	}{{&cfg.SignedDigest, rc.SignedDigest}, {&cfg.CookiesDigest, rc.CookiesDigest}} {
		if p.src != nil {
			if *p.dst, err = auth.ParseDigest(*p.src); err != nil {
				t.Fatal(err)
			}
		}
	}
	cookies, err := auth.NewRailsCookies(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cookies
}

// vectors72 returns the Rails 7.2 vectors of testdata/cookies by name.
func vectors72(t *testing.T) map[string]railsCookie {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cookies", "rails-7.2-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []railsCookie }
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	m := map[string]railsCookie{}
	for _, v := range f.Vectors {
		m[v.Name] = v
	}
	if len(m) < 20 {
		t.Fatalf("only %d Rails 7.2 vectors", len(m))
	}
	return m
}

// mint has Rails write a cookie now, with testdata/e2e-cookies/rails_cookie.rb
// (ActionDispatch::Cookies of the installed actionpack), and read it back.
// expiresIn is in seconds, negative for a cookie that expired, or "none".
func mint(t *testing.T, secretKeyBase, jar, name, valueJSON, expiresIn string) railsCookie {
	t.Helper()
	if _, err := exec.LookPath("ruby"); err != nil {
		t.Fatal("no ruby: the Rails-minted cookies need it (bash .ci/install installs it)")
	}
	cmd := exec.Command("ruby", filepath.Join("..", "..", "testdata", "e2e-cookies", "rails_cookie.rb"), "mint", jar, name, valueJSON, expiresIn)
	cmd.Env = append(os.Environ(), "SECRET_KEY_BASE="+secretKeyBase)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "LoadError") || strings.Contains(stderr.String(), "cannot load such file") {
			t.Fatalf("Rails is not installed (bash .ci/install installs it): %s", stderr.String())
		}
		t.Fatalf("rails_cookie.rb mint %s %s: %v: %s", jar, name, err, stderr.String())
	}
	var c railsCookie
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("rails_cookie.rb: %v: %s", err, out)
	}
	c.SecretKeyBase = secretKeyBase
	return c
}
