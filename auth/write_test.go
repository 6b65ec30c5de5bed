package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeConfig is one Rails configuration the writer is tested with, in
// the terms of both Config and read_go_cookies.rb.
type writeConfig struct {
	name    string
	cfg     Config
	purpose bool // the writer must put "cookie.<name>" in the envelope
	expiry  bool // the writer must put the expiry in the envelope
}

// writeConfigs covers the releases and settings whose writing rules
// differ: 5.0/5.1-style CBC (no metadata at all in 5.2), 5.2 GCM (expiry,
// no purpose), 6.1 GCM with SHA1 keys, 6.1's :marshal, 7.0 with SHA256
// keys and a SHA256 signed digest, a 6.1+ app still on CBC, 7.1+
// MessagePack, and use_cookies_with_metadata = false.
func writeConfigs(t *testing.T) []writeConfig {
	t.Helper()
	load := func(defaults, rails string, sz Serializer, edit func(*Config)) Config {
		c, err := LoadDefaults(defaults)
		if err != nil {
			t.Fatal(err)
		}
		c.SecretKeyBase, c.RailsVersion = testSKB, rails
		if sz != "" {
			c.Serializer = sz
		}
		if edit != nil {
			edit(&c)
		}
		return c
	}
	return []writeConfig{
		{"5.2 app on CBC (load_defaults 5.1)", load("5.1", "5.2", SerializerJSON, nil), false, false},
		{"5.2 GCM", load("5.2", "5.2", SerializerJSON, nil), false, true},
		{"6.1 GCM SHA1 json", load("6.1", "6.1", SerializerJSON, nil), true, true},
		{"6.1 GCM SHA1 marshal", load("6.1", "6.1", "", nil), true, true},
		{"6.1 hybrid without metadata", load("5.2", "6.1", SerializerHybrid, nil), false, true},
		{"7.0 SHA256", load("7.0", "7.0", "", func(c *Config) { c.SignedDigest = SHA256 }), true, true},
		{"7.0 CBC app", load("7.0", "7.0", "", func(c *Config) { c.LegacyEncryption = true }), true, true},
		{"7.1 message_pack", load("7.1", "7.1", SerializerMessagePack, nil), true, true},
		{"8.1 zero Config", Config{SecretKeyBase: testSKB}, true, true},
	}
}

// writeValues are the values written in each configuration: HTML and
// non-ASCII text (escaped by ActiveSupport::JSON), integers at the msgpack
// size boundaries, a float and nested containers.
var writeValues = []any{
	42,
	"<b>Zoë & co</b>\u2028",
	map[string]any{"id": 1 << 40, "neg": -129, "admin": false, "roles": []any{"a", nil, 1.5}, "big": uint64(1) << 63},
}

// normalize is v after a JSON round trip with int64 numbers, the form our
// reader and Ruby's JSON give back.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A value written by the Go writer reads back through our own reader, in
// every configuration: equal before expiry, ErrExpired after it when Rails
// writes the expiry, and refused under another cookie name when Rails
// writes the purpose.
func TestWriteRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC)
	for _, wc := range writeConfigs(t) {
		t.Run(wc.name, func(t *testing.T) {
			t.Parallel()
			var clock time.Time
			cfg := wc.cfg
			cfg.Now = func() time.Time { return clock }
			c, err := NewRailsCookies(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, jar := range []Jar{JarEncrypted, JarSigned} {
				for i, v := range writeValues {
					want := normalize(t, v)
					expires := now.Add(time.Hour)
					ck, err := c.Cookie(jar, "user_id", v, expires)
					if err != nil {
						t.Fatalf("%s Cookie(%v): %v", jar, v, err)
					}
					if ck.Name != "user_id" || ck.Path != "/" || !ck.Expires.Equal(expires) {
						t.Errorf("%s cookie = %+v; want user_id, path /, expires %v", jar, ck, expires)
					}
					if strings.ContainsAny(ck.Value, "+/=") {
						t.Errorf("%s value %q is not %%-escaped as Rack escapes it", jar, ck.Value)
					}

					clock = now
					got, err := c.Decode(jar, "user_id", ck.Value)
					if err != nil || !reflect.DeepEqual(got, want) {
						t.Errorf("%s value %d: read back %#v, %v; want %#v", jar, i, got, err, want)
					}
					// Through a request's Cookie header, as a browser sends it.
					got, err = c.Read(jar, "a=b; "+ck.String()[:len(ck.Name)+1+len(ck.Value)], "user_id")
					if err != nil || !reflect.DeepEqual(got, want) {
						t.Errorf("%s value %d from a Cookie header: %#v, %v", jar, i, got, err)
					}

					clock = expires
					_, err = c.Decode(jar, "user_id", ck.Value)
					if wc.expiry && !errors.Is(err, ErrExpired) {
						t.Errorf("%s value %d read at its expiry: %v; want ErrExpired", jar, i, err)
					}
					if !wc.expiry && err != nil {
						t.Errorf("%s value %d has no expiry in 5.2 without GCM, but reading it failed: %v", jar, i, err)
					}

					clock = now
					_, err = c.Decode(jar, "session_id", ck.Value)
					if wc.purpose && reasonOf(err) != ReasonPurposeMismatch {
						t.Errorf("%s value %d read as another cookie: %v; want %s", jar, i, err, ReasonPurposeMismatch)
					}
					if !wc.purpose && err != nil {
						t.Errorf("%s value %d has no purpose, but reading it under another name failed: %v", jar, i, err)
					}
				}
			}
		})
	}
}

// The values are fresh each time (random IVs) yet stable in what they
// carry: no expiry when expires is zero.
func TestWriteNoExpiry(t *testing.T) {
	c, err := NewRailsCookies(Config{SecretKeyBase: testSKB, Now: func() time.Time { return time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.EncryptedValue("user_id", 7, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.EncryptedValue("user_id", 7, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two encryptions are identical (%q): the IV is not random", a)
	}
	if got, err := c.Decode(JarEncrypted, "user_id", a); err != nil || got != int64(7) {
		t.Errorf("value without expiry read in 2999: %#v, %v", got, err)
	}
}

func TestWriteErrors(t *testing.T) {
	marshal52, _ := LoadDefaults("5.2")
	marshal52.SecretKeyBase, marshal52.RailsVersion = testSKB, "5.2"
	tests := []struct {
		name string
		cfg  Config
		v    any
		want string
	}{
		{"marshal before 6.1", marshal52, 1, "reads only Marshal"},
		{"overflow", Config{SecretKeyBase: testSKB}, strings.Repeat("x", 4000), "overflowed"},
		{"not JSON", Config{SecretKeyBase: testSKB}, func() {}, "cookie value"},
		{"msgpack bigint", Config{SecretKeyBase: testSKB, Serializer: SerializerMessagePack}, json.Number("123456789012345678901234567890"), "64 bits"},
	}
	for _, tt := range tests {
		c, err := NewRailsCookies(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, jar := range []Jar{JarEncrypted, JarSigned} {
			if _, err := c.Cookie(jar, "user_id", tt.v, time.Time{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %s Cookie error = %v; want %q", tt.name, jar, err, tt.want)
			}
		}
	}
	c, _ := NewRailsCookies(Config{SecretKeyBase: testSKB})
	if _, err := c.Cookie("permanent", "x", 1, time.Time{}); err == nil {
		t.Error("Cookie with an unknown jar succeeded")
	}
}

// The MessagePack writer produces what the reader reads back, at every
// size boundary of msgpack's integer, string, array and map forms.
func TestEncodeMessagePack(t *testing.T) {
	tests := []any{
		nil, true, false, 0, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, -1, -32, -33, -128, -129,
		-32768, -32769, -1 << 31, -1<<31 - 1, int64(-1 << 63), uint64(1<<64 - 1), 1.5, -0.25, 1e300,
		"", strings.Repeat("é", 15), strings.Repeat("a", 32), strings.Repeat("a", 256), strings.Repeat("a", 65536),
		make([]any, 15), make([]any, 16), make([]any, 65535),
	}
	big := map[string]any{}
	for i := 0; i < 16; i++ {
		big[fmt.Sprint(i)] = i
	}
	tests = append(tests, big, map[string]any{"a": []any{map[string]any{}}})
	for _, v := range tests {
		b, err := encodeMessagePack(v)
		if err != nil {
			t.Fatalf("encodeMessagePack(%s): %v", describe(v), err)
		}
		got, err := DecodeMessagePack(b)
		if err != nil {
			t.Fatalf("DecodeMessagePack(encodeMessagePack(%s)): %v", describe(v), err)
		}
		want := normalize(t, v)
		if u, ok := v.(uint64); ok {
			want = normalizeUint(u)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("msgpack round trip of %s = %s; want %s", describe(v), describe(got), describe(want))
		}
	}
	// The integer forms msgpack-ruby picks: unsigned for non-negatives.
	forms := []struct {
		v    any
		want []byte
	}{
		{127, []byte{0x7f}}, {200, []byte{0xcc, 200}}, {-1, []byte{0xff}}, {-33, []byte{0xd0, 0xdf}},
		{1.5, []byte{0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}}, {"ab", []byte{0xa2, 'a', 'b'}},
	}
	for _, f := range forms {
		b, err := encodeMessagePack(f.v)
		if err != nil || !bytes.Equal(b, append([]byte{0xcc, 0x80}, f.want...)) {
			t.Errorf("encodeMessagePack(%v) = % x, %v; want cc 80 % x", f.v, b, err, f.want)
		}
	}
}

// describe shortens a value for a test message.
func describe(v any) string {
	s := fmt.Sprintf("%T %v", v, v)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

// normalizeUint is how the readers return an integer above int64.
func normalizeUint(u uint64) any {
	v, _ := decodeJSON([]byte(fmt.Sprint(u)))
	return v
}

// Rails itself reads what the writer writes: every configuration that the
// installed ActiveSupport supports, both jars, a value that expires in an
// hour and one that expired an hour ago, through ActionDispatch's cookie
// jar and through the bare primary MessageEncryptor / MessageVerifier with
// and without the purpose (testdata/e2e-cookies/read_go_cookies.rb).
func TestRubyReadsGoCookies(t *testing.T) {
	script := filepath.Join("..", "testdata", "e2e-cookies", "read_go_cookies.rb")
	if _, err := exec.LookPath("ruby"); err != nil {
		t.Fatalf("ruby not found (%v): apt-get install -y ruby ruby-actionpack ruby-activesupport", err)
	}
	out, err := exec.Command("ruby", script, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("ruby %s version: %v\n%s", script, err, out)
	}
	var version struct {
		ActiveSupport string `json:"activesupport"`
		MessagePack   bool   `json:"message_pack"`
	}
	if err := json.Unmarshal(out, &version); err != nil {
		t.Fatalf("ruby version output %q: %v", out, err)
	}

	type rubyConfig struct {
		KeyDigest    Digest  `json:"key_digest"`
		Legacy       bool    `json:"legacy_encryption"`
		Cipher       *string `json:"cipher"`
		SignedDigest *Digest `json:"signed_digest"`
		Serializer   string  `json:"serializer"`
		WithMetadata bool    `json:"with_metadata"`
	}
	type rubyCase struct {
		ID     string     `json:"id"`
		Config rubyConfig `json:"config"`
		Jar    Jar        `json:"jar"`
		Name   string     `json:"name"`
		Cookie string     `json:"cookie"`
	}
	type expect struct {
		ok, purpose bool
		value       any
	}
	var cases []rubyCase
	want := map[string]expect{}
	now := time.Now()
	for _, wc := range writeConfigs(t) {
		cfg := wc.cfg
		if cfg.Serializer == SerializerMessagePack && !version.MessagePack {
			t.Logf("%s: skipped, ActiveSupport %s has no MessagePack serializer (read back by our reader in TestWriteRoundTrip)", wc.name, version.ActiveSupport)
			continue
		}
		if cfg.KeyDigests == nil {
			cfg.KeyDigests = []Digest{SHA256} // the key the zero Config writes with
		}
		c, err := NewRailsCookies(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rc := rubyConfig{KeyDigest: cfg.KeyDigests[0], Legacy: cfg.LegacyEncryption, Serializer: string(cfg.Serializer), WithMetadata: !cfg.NoCookieMetadata}
		if cfg.Cipher != "" {
			rc.Cipher = &cfg.Cipher
		}
		if cfg.SignedDigest != "" {
			rc.SignedDigest = &cfg.SignedDigest
		}
		if rc.Serializer == "" {
			rc.Serializer = string(SerializerMarshal)
		}
		for _, jar := range []Jar{JarEncrypted, JarSigned} {
			for i, v := range writeValues {
				for _, d := range []time.Duration{time.Hour, -time.Hour} {
					val, err := c.Cookie(jar, "user_id", v, now.Add(d))
					if err != nil {
						t.Fatal(err)
					}
					id := fmt.Sprintf("%s/%s/value %d/expires %v", wc.name, jar, i, d)
					cases = append(cases, rubyCase{ID: id, Config: rc, Jar: jar, Name: "user_id", Cookie: val.Value})
					want[id] = expect{ok: d > 0 || !wc.expiry, purpose: wc.purpose, value: normalize(t, v)}
				}
			}
		}
	}

	in, err := json.Marshal(map[string]any{"secret_key_base": testSKB, "cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ruby", script, "read")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("ruby %s read: %v\n%s", script, err, stderr.String())
	}
	var results []struct {
		ID                    string          `json:"id"`
		JarOK                 bool            `json:"jar_ok"`
		JarValue              json.RawMessage `json:"jar_value"`
		PrimaryWithPurpose    bool            `json:"primary_with_purpose"`
		PrimaryWithoutPurpose bool            `json:"primary_without_purpose"`
		Error                 string          `json:"error"`
	}
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("ruby output: %v\n%s", err, out)
	}
	if len(results) != len(cases) || len(cases) < 50 {
		t.Fatalf("ruby read %d of %d cookies", len(results), len(cases))
	}
	for _, r := range results {
		w := want[r.ID]
		if r.Error != "" {
			t.Errorf("%s: Ruby raised %s", r.ID, r.Error)
			continue
		}
		if r.JarOK != w.ok {
			t.Errorf("%s: Rails' jar read it: %v; want %v", r.ID, r.JarOK, w.ok)
		}
		if w.ok {
			got, err := decodeJSON(r.JarValue)
			if err != nil || !reflect.DeepEqual(got, w.value) {
				t.Errorf("%s: Rails read %s; want %#v", r.ID, r.JarValue, w.value)
			}
			// Only a readable (unexpired) value says which purpose the
			// bare primary codec accepts.
			if r.PrimaryWithPurpose != w.purpose || r.PrimaryWithoutPurpose != !w.purpose {
				t.Errorf("%s: primary codec accepts it with purpose cookie.user_id: %v, without: %v; want purpose written: %v",
					r.ID, r.PrimaryWithPurpose, r.PrimaryWithoutPurpose, w.purpose)
			}
		} else if r.PrimaryWithPurpose || r.PrimaryWithoutPurpose {
			t.Errorf("%s: the primary codec accepts an expired value", r.ID)
		}
	}
}
