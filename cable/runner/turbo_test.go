package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/channels"
	"github.com/gorilla/websocket"
)

// turboVector is one entry of channels/testdata/turbo/vectors.json (made
// by real ActiveSupport, testdata/turbo/gen.rb).
type turboVector struct {
	ID            string `json:"id"`
	SecretKeyBase string `json:"secret_key_base"`
	KeyDigest     string `json:"key_digest"`
	Signed        string `json:"signed"`
	Valid         bool   `json:"valid"`
}

func loadTurboVectors(t *testing.T) map[string]turboVector {
	t.Helper()
	b, err := os.ReadFile("../../channels/testdata/turbo/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []turboVector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	m := map[string]turboVector{}
	for _, v := range file.Vectors {
		m[v.ID] = v
	}
	return m
}

var turboEnvNames = []string{
	"GOCABLE_TURBO", "GOCABLE_TURBO_SECRET_KEY_BASE", "GOCABLE_TURBO_VERIFIER_KEY", "GOCABLE_TURBO_KEY_DIGEST",
	"SECRET_KEY_BASE", "RAILS_KEY_DIGEST", "RAILS_LOAD_DEFAULTS", "RAILS_KEY_ITERATIONS",
}

// newTurboConfig parses args on a flag set that also has cookie auth's
// flags, as run() builds it, so the names must not clash.
func newTurboConfig(t *testing.T, env map[string]string, args ...string) *turboConfig {
	t.Helper()
	for _, n := range turboEnvNames {
		t.Setenv(n, "") // restored after the test
		os.Unsetenv(n)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ac authConfig
	var c turboConfig
	ac.register(fs)
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &c
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestTurboConfigKeys(t *testing.T) {
	vec := loadTurboVectors(t)
	skb := vec["valid_plain"].SecretKeyBase
	sha256Name := vec["valid_plain"].Signed
	sha1Name := vec["sha1_key_plain"].Signed
	tests := []struct {
		name           string
		env            map[string]string
		args           []string
		sha256, sha1ok bool
	}{
		{"flag sha256", nil, []string{"-turbo", "-turbo-secret-key-base", skb, "-turbo-key-digest", "sha256"}, true, false},
		{"flag sha1", nil, []string{"-turbo", "-turbo-secret-key-base", skb, "-turbo-key-digest", "SHA1"}, false, true},
		{"both by default", nil, []string{"-turbo", "-turbo-secret-key-base", skb}, true, true},
		{"explicit both", nil, []string{"-turbo-secret-key-base", skb, "-turbo-key-digest", "both"}, true, true},
		{"env SECRET_KEY_BASE", map[string]string{"SECRET_KEY_BASE": skb}, nil, true, true},
		{"env turbo secret wins", map[string]string{"SECRET_KEY_BASE": "other", "GOCABLE_TURBO_SECRET_KEY_BASE": skb}, nil, true, true},
		{"cookie auth flag", nil, []string{"-secret-key-base", skb}, true, true},
		{"cookie auth key digest", nil, []string{"-secret-key-base", skb, "-key-digest", "sha1"}, false, true},
		{"load defaults 7.1", nil, []string{"-secret-key-base", skb, "-load-defaults", "7.1"}, true, false},
		{"load defaults 6.1", nil, []string{"-secret-key-base", skb, "-load-defaults", "6.1"}, false, true},
		{"env load defaults", map[string]string{"SECRET_KEY_BASE": skb, "RAILS_LOAD_DEFAULTS": "7.0"}, nil, true, false},
		{"turbo digest beats load defaults", nil, []string{"-secret-key-base", skb, "-load-defaults", "6.1", "-turbo-key-digest", "sha256"}, true, false},
		{"other iterations", nil, []string{"-secret-key-base", skb, "-key-iterations", "2"}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTurboConfig(t, tc.env, tc.args...)
			v, source, err := c.verifier()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(source, skb) {
				t.Errorf("source %q shows the secret", source)
			}
			if _, err := v.Verify(sha256Name); (err == nil) != tc.sha256 {
				t.Errorf("SHA256-derived name accepted = %v; want %v", err == nil, tc.sha256)
			}
			if _, err := v.Verify(sha1Name); (err == nil) != tc.sha1ok {
				t.Errorf("SHA1-derived name accepted = %v; want %v", err == nil, tc.sha1ok)
			}
		})
	}
}

func TestTurboConfigVerifierKey(t *testing.T) {
	c := newTurboConfig(t, nil)
	for _, tc := range []struct{ flag, raw string }{
		{"plain text key", "plain text key"},
		{"hex:00ff10", "\x00\xff\x10"},
		{"base64:" + base64.StdEncoding.EncodeToString([]byte("binary\x00key")), "binary\x00key"},
	} {
		c.verifierKey = tc.flag
		v, source, err := c.verifier()
		if err != nil {
			t.Fatalf("%s: %v", tc.flag, err)
		}
		if source != "verifier key" {
			t.Errorf("%s: source %q", tc.flag, source)
		}
		// A name signed with the raw key verifies.
		other, _ := channels.NewTurboVerifier([]byte(tc.raw))
		signed, _ := other.Generate("room")
		if name, err := v.Verify(signed); err != nil || name != "room" {
			t.Errorf("%s: Verify = %q, %v", tc.flag, name, err)
		}
	}
	// The environment is read when the flag is not given.
	c = newTurboConfig(t, map[string]string{"GOCABLE_TURBO_VERIFIER_KEY": "from env"})
	v, _, err := c.verifier()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := channels.NewTurboVerifier([]byte("from env"))
	signed, _ := other.Generate("x")
	if _, err := v.Verify(signed); err != nil {
		t.Errorf("env key: %v", err)
	}
}

func TestTurboConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no secret", []string{"-turbo"}, "secret_key_base"},
		{"bad digest", []string{"-turbo", "-turbo-secret-key-base", "s", "-turbo-key-digest", "md5"}, "digest"},
		{"bad load defaults", []string{"-turbo", "-turbo-secret-key-base", "s", "-load-defaults", "seven"}, "load defaults"},
		{"bad iterations", []string{"-turbo", "-turbo-secret-key-base", "s", "-key-iterations", "-3"}, "iterations"},
		{"bad hex key", []string{"-turbo", "-turbo-verifier-key", "hex:zz"}, "verifier key"},
		{"empty hex key", []string{"-turbo", "-turbo-verifier-key", "hex:"}, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTurboConfig(t, nil, tc.args...)
			err := c.install(&cable.Server{}, discardLogger())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("install: %v; want an error about %q", err, tc.want)
			}
		})
	}
}

func TestTurboHelpHidesSecrets(t *testing.T) {
	var out bytes.Buffer
	for _, n := range turboEnvNames {
		t.Setenv(n, "")
	}
	t.Setenv("SECRET_KEY_BASE", "TOPSECRET-skb")
	t.Setenv("GOCABLE_TURBO_SECRET_KEY_BASE", "TOPSECRET-turbo")
	t.Setenv("GOCABLE_TURBO_VERIFIER_KEY", "TOPSECRET-key")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(&out)
	var c turboConfig
	c.register(fs)
	fs.PrintDefaults()
	if strings.Contains(out.String(), "TOPSECRET") {
		t.Fatalf("help shows a secret:\n%s", out.String())
	}
}

// install registers Turbo::StreamsChannel only with -turbo, and the
// channel verifies Ruby-made names end to end.
func TestTurboInstall(t *testing.T) {
	vec := loadTurboVectors(t)
	skb := vec["valid_plain"].SecretKeyBase

	off := &cable.Server{}
	if err := newTurboConfig(t, map[string]string{"SECRET_KEY_BASE": skb}).install(off, discardLogger()); err != nil {
		t.Fatal(err)
	}
	if err := handleChannel(off, turboChannel, func() cable.Channel { return nil }); err != nil {
		t.Errorf("without -turbo the channel is registered: %v", err)
	}

	srv := &cable.Server{CheckOrigin: func(*http.Request) bool { return true }, Logger: discardLogger()}
	c := newTurboConfig(t, map[string]string{"SECRET_KEY_BASE": skb}, "-turbo")
	if err := c.install(srv, discardLogger()); err != nil {
		t.Fatal(err)
	}
	if err := c.install(srv, discardLogger()); err == nil {
		t.Error("a second install did not report the duplicate channel")
	}
	hs := httptest.NewServer(srv)
	defer func() {
		srv.Shutdown(context.Background())
		hs.Close()
	}()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func() string {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(); got != `{"type":"welcome"}` {
		t.Fatalf("first frame %s", got)
	}
	for _, tc := range []struct{ id, want string }{
		{"valid_plain", "confirm_subscription"},
		{"sha1_key_plain", "confirm_subscription"}, // both key digests by default
		{"tampered_digest", "reject_subscription"},
		{"wrong_secret", "reject_subscription"},
	} {
		idf, _ := json.Marshal(map[string]string{"channel": turboChannel, "signed_stream_name": vec[tc.id].Signed})
		if err := ws.WriteJSON(map[string]string{"command": "subscribe", "identifier": string(idf)}); err != nil {
			t.Fatal(err)
		}
		var got struct{ Identifier, Type string }
		if err := json.Unmarshal([]byte(read()), &got); err != nil {
			t.Fatal(err)
		}
		if got.Identifier != string(idf) || got.Type != tc.want {
			t.Errorf("%s: got %+v; want %s", tc.id, got, tc.want)
		}
	}
}
