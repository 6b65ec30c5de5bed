package channels_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/gocable/gocable/auth"
	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/channels"
)

// turboVectors is channels/testdata/turbo/vectors.json, written by real
// ActiveSupport (testdata/turbo/gen.rb).
type turboVectors struct {
	ActiveSupport string `json:"activesupport"`
	Salt          string `json:"salt"`
	Iterations    int    `json:"iterations"`
	Keys          []struct {
		SecretKeyBase string `json:"secret_key_base"`
		KeyDigest     string `json:"key_digest"`
		KeyHex        string `json:"key_hex"`
	} `json:"keys"`
	Names []struct {
		Streamables []any  `json:"streamables"`
		Name        string `json:"name"`
		Signed      string `json:"signed"`
	} `json:"names"`
	Vectors []struct {
		ID            string          `json:"id"`
		SecretKeyBase string          `json:"secret_key_base"`
		KeyDigest     string          `json:"key_digest"`
		Signed        string          `json:"signed"`
		Want          json.RawMessage `json:"want"`
		Valid         bool            `json:"valid"`
		WantFrom      string          `json:"want_from"`
	} `json:"vectors"`
}

func loadTurboVectors(t *testing.T) *turboVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/turbo/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v turboVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Vectors) == 0 || len(v.Keys) == 0 || len(v.Names) == 0 {
		t.Fatal("vectors.json has no vectors")
	}
	return &v
}

// turboKey derives the verifier key for a vector's secret and digest.
func turboKey(t *testing.T, secret, digest string) []byte {
	t.Helper()
	key, err := channels.TurboVerifierKey(secret, auth.Digest(digest), 0)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func turboVerifier(t *testing.T, keys ...[]byte) *channels.TurboVerifier {
	t.Helper()
	v, err := channels.NewTurboVerifier(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The key is what Rails.application.key_generator.generate_key gives for
// turbo's salt, with both key generator digests.
func TestTurboVerifierKeyMatchesRails(t *testing.T) {
	vec := loadTurboVectors(t)
	if vec.Salt != channels.TurboVerifierSalt || vec.Iterations != auth.DefaultIterations {
		t.Fatalf("vectors use salt %q, %d iterations", vec.Salt, vec.Iterations)
	}
	digests := map[string]bool{}
	for _, k := range vec.Keys {
		got := hex.EncodeToString(turboKey(t, k.SecretKeyBase, k.KeyDigest))
		if got != k.KeyHex {
			t.Errorf("TurboVerifierKey(%.8s…, %s) = %s; want %s", k.SecretKeyBase, k.KeyDigest, got, k.KeyHex)
		}
		digests[k.KeyDigest] = true
	}
	if !digests["SHA1"] || !digests["SHA256"] {
		t.Errorf("vectors cover key digests %v; want SHA1 and SHA256", digests)
	}
}

// Deviations from ActiveSupport 6.1, the Ruby that wrote the vectors. Each
// is either what ActiveSupport 7.1+ does or a value turbo-rails never
// signs.
var turboDeviations = map[string]string{
	"trailing_segment": "ActiveSupport 7.1+ wants the digest at the end; 6.1 ignored a second --",
	"json_array":       "Ruby would stream Array#to_s; turbo-rails never signs one",
	"json_object":      "Ruby would stream Hash#to_s; turbo-rails never signs one",
}

func TestTurboVerifyRubyVectors(t *testing.T) {
	vec := loadTurboVectors(t)
	valid, invalid := 0, 0
	for _, tc := range vec.Vectors {
		t.Run(tc.ID, func(t *testing.T) {
			v := turboVerifier(t, turboKey(t, tc.SecretKeyBase, tc.KeyDigest))
			got, err := v.Verify(tc.Signed)

			wantOK, want := tc.Valid, ""
			if wantOK {
				// stream_from streams String(value).
				var s string
				if json.Unmarshal(tc.Want, &s) == nil {
					want = s
				} else {
					want = string(tc.Want)
				}
			}
			if why, ok := turboDeviations[tc.ID]; ok {
				if !tc.Valid {
					t.Fatalf("deviation %q is listed but Ruby rejects it too", tc.ID)
				}
				t.Logf("Ruby %s accepts this; we refuse it: %s", vec.ActiveSupport, why)
				wantOK = false
			}
			switch {
			case wantOK && err != nil:
				t.Errorf("Verify(%q) = %v; want %q (%s)", tc.Signed, err, want, tc.WantFrom)
			case wantOK && got != want:
				t.Errorf("Verify(%q) = %q; want %q", tc.Signed, got, want)
			case !wantOK && err == nil:
				t.Errorf("Verify(%q) = %q; want a rejection", tc.Signed, got)
			case !wantOK && !errors.Is(err, channels.ErrInvalidStreamName):
				t.Errorf("Verify(%q) error %v does not wrap ErrInvalidStreamName", tc.Signed, err)
			}
			if wantOK {
				valid++
			} else {
				invalid++
			}
		})
	}
	if valid < 10 || invalid < 15 {
		t.Errorf("only %d valid and %d invalid vectors", valid, invalid)
	}
}

// Generate writes what Ruby's MessageVerifier#generate writes, byte for
// byte, for every plain string vector, including unicode, HTML and
// control characters.
func TestTurboGenerateMatchesRuby(t *testing.T) {
	vec := loadTurboVectors(t)
	n := 0
	for _, tc := range vec.Vectors {
		if !strings.HasPrefix(tc.ID, "valid_") && !strings.HasPrefix(tc.ID, "sha1_key_") {
			continue
		}
		var name string
		if err := json.Unmarshal(tc.Want, &name); err != nil {
			t.Fatalf("%s: want %s", tc.ID, tc.Want)
		}
		v := turboVerifier(t, turboKey(t, tc.SecretKeyBase, tc.KeyDigest))
		got, err := v.Generate(name)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.Signed {
			t.Errorf("%s: Generate(%q) = %q; want %q", tc.ID, name, got, tc.Signed)
		}
		n++
	}
	if n < 8 {
		t.Errorf("only %d generate vectors", n)
	}
	v := turboVerifier(t, []byte("k"))
	if _, err := v.Generate("bad \xff"); err == nil {
		t.Error("Generate accepted invalid UTF-8")
	}
}

// goStreamable turns a vector's JSON streamable into the Go value
// TurboStreamName takes: {"gid": URI, "id": id} is a record, whose URI
// (as Ruby's GlobalID escaped it) must be the Go GlobalID's too.
func goStreamable(t *testing.T, x any) any {
	switch v := x.(type) {
	case map[string]any:
		uri, _ := v["gid"].(string)
		id, _ := v["id"].(string)
		parts := strings.SplitN(strings.TrimPrefix(uri, "gid://"), "/", 3)
		if len(parts) != 3 || id == "" {
			t.Fatalf("bad record %v", v)
		}
		g := cable.GlobalID{App: parts[0], Model: parts[1], ID: id}
		if g.String() != uri {
			t.Errorf("GlobalID{ID: %q}.String() = %q; Ruby's is %q", id, g.String(), uri)
		}
		return g
	case float64:
		return int(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = goStreamable(t, e)
		}
		return out
	}
	return x
}

// Stream names are joined from streamables as turbo_stream_from does.
func TestTurboStreamNameMatchesRuby(t *testing.T) {
	vec := loadTurboVectors(t)
	var sha256Key []byte
	for _, k := range vec.Keys {
		if k.KeyDigest == "SHA256" && sha256Key == nil {
			sha256Key, _ = hex.DecodeString(k.KeyHex)
		}
	}
	v := turboVerifier(t, sha256Key)
	for _, tc := range vec.Names {
		parts := goStreamable(t, tc.Streamables).([]any)
		got, err := channels.TurboStreamName(parts...)
		if err != nil {
			t.Errorf("TurboStreamName(%v): %v", tc.Streamables, err)
			continue
		}
		if got != tc.Name {
			t.Errorf("TurboStreamName(%v) = %q; want %q", tc.Streamables, got, tc.Name)
		}
		if signed, _ := v.Generate(got); signed != tc.Signed {
			t.Errorf("Generate(%q) = %q; want %q", got, signed, tc.Signed)
		}
		if name, err := v.Verify(tc.Signed); err != nil || name != tc.Name {
			t.Errorf("Verify(%q) = %q, %v; want %q", tc.Signed, name, err, tc.Name)
		}
	}
	if _, err := channels.TurboStreamName(struct{}{}); err == nil {
		t.Error("TurboStreamName(struct{}{}) did not fail")
	}
}

// With both keys (the app's key generator digest unknown), names signed
// under either are accepted; another secret still is not.
func TestTurboVerifierSeveralKeys(t *testing.T) {
	vec := loadTurboVectors(t)
	byID := map[string]string{}
	secret := ""
	for _, tc := range vec.Vectors {
		byID[tc.ID] = tc.Signed
		secret = tc.SecretKeyBase
	}
	both := turboVerifier(t, turboKey(t, secret, "SHA256"), turboKey(t, secret, "SHA1"))
	for _, id := range []string{"valid_plain", "sha1_name_sha256_key", "sha256_name_sha1_key"} {
		if name, err := both.Verify(byID[id]); err != nil || name != "messages" {
			t.Errorf("%s: Verify = %q, %v; want messages", id, name, err)
		}
	}
	for _, id := range []string{"wrong_secret", "wrong_verifier_digest", "tampered_digest"} {
		if name, err := both.Verify(byID[id]); err == nil {
			t.Errorf("%s: Verify = %q; want a rejection", id, name)
		}
	}
	if _, err := channels.NewTurboVerifier(); err == nil {
		t.Error("NewTurboVerifier() with no key did not fail")
	}
	if _, err := channels.NewTurboVerifier([]byte{}); err == nil {
		t.Error("NewTurboVerifier with an empty key did not fail")
	}
	if _, err := channels.TurboVerifierKey("", auth.SHA256, 0); err == nil {
		t.Error("TurboVerifierKey with an empty secret did not fail")
	}
}

// Turbo::StreamsChannel over a real connection: a verified name is
// streamed, anything else gets reject_subscription.
func TestTurboStreamsChannel(t *testing.T) {
	vec := loadTurboVectors(t)
	byID := map[string]string{}
	var secret string
	for _, tc := range vec.Vectors {
		byID[tc.ID] = tc.Signed
		secret = tc.SecretKeyBase
	}
	v := turboVerifier(t, turboKey(t, secret, "SHA256"))
	srv, url := newServer(t)
	srv.Handle("Turbo::StreamsChannel", func() cable.Channel { return &channels.TurboStreams{Verifier: v} })
	c := dial(t, url+"/cable")

	// The identifier as <turbo-cable-stream-source> builds it, data
	// attributes included.
	sub := func(signed string) string {
		b, _ := json.Marshal(signed)
		return `{"channel":"Turbo::StreamsChannel","signed_stream_name":` + string(b) + `,"extra":"x"}`
	}
	good := sub(byID["valid_plain"])
	c.send("subscribe", good, "")
	c.expect(confirm(good))
	gid := sub(byID["valid_gid"])
	c.send("subscribe", gid, "")
	c.expect(confirm(gid))

	for _, id := range []string{
		sub(byID["tampered_data"]), sub(byID["tampered_digest"]), sub(byID["wrong_secret"]),
		sub(byID["envelope_expired"]), sub(""),
		`{"channel":"Turbo::StreamsChannel"}`,
		`{"channel":"Turbo::StreamsChannel","signed_stream_name":5}`,
	} {
		c.send("subscribe", id, "")
		c.expect(reject(id))
	}

	// Turbo broadcasts HTML as a JSON string.
	html := `<turbo-stream action="append" target="messages"><template><p>hi</p></template></turbo-stream>`
	if err := srv.Broadcast(context.Background(), "messages", html); err != nil {
		t.Fatal(err)
	}
	enc, _ := json.Marshal(html)
	c.expect(frame(good, string(enc)))
	if err := srv.Broadcast(context.Background(), "Z2lkOi8vbXlhcHAvVXNlci8x:messages", "x"); err != nil {
		t.Fatal(err)
	}
	c.expect(frame(gid, `"x"`))

	// The channel has no actions; the connection stays up.
	c.send("message", good, `{"action":"speak"}`)
	c.send("subscribe", good, "") // duplicate: ignored
	if err := srv.Broadcast(context.Background(), "messages", "after"); err != nil {
		t.Fatal(err)
	}
	c.expect(frame(good, `"after"`))
}
