package runner

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/gocable/gocable/auth"
	"github.com/gocable/gocable/auth/identify"
	"github.com/gocable/gocable/cable"
)

// vectors72 returns the Rails 7.2 vectors by name.
func vectors72(t *testing.T) map[string]vector {
	m := map[string]vector{}
	for _, v := range loadVectors(t) {
		if n, ok := strings.CutPrefix(v.Name, "rails-7.2/"); ok {
			m[n] = v
		}
	}
	return m
}

func newAuthConfig(t *testing.T, args ...string) *authConfig {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c authConfig
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestAuthenticator(t *testing.T) {
	clearAuthEnv(t)
	vs := vectors72(t)
	skb := vs["encrypted_user_id_int__json_sha256"].SecretKeyBase
	enc := vs["encrypted_user_id_int__json_sha256"].Header
	signed := vs["signed_user_id_int__json_sha256"].Header
	session := vs["session_devise__json_sha256"].Header
	hashKey := strings.Repeat("ab", 32)
	tokens, err := auth.NewGoCookies(bytes.Repeat([]byte{0xab}, 32), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	token, err := tokens.Encode("token", map[string]any{"user_id": 7})
	if err != nil {
		t.Fatal(err)
	}
	gid42 := cable.GlobalIDParam("myapp", "User", "42")
	emailToken, err := tokens.Encode("token", map[string]any{"user_id": "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		args   []string
		cookie string
		query  string
		want   cable.Identity
		reason auth.Reason // refusal expected
	}{
		{name: "encrypted to_s", args: []string{"--identify", "current_user=encrypted:user_id"}, cookie: enc,
			want: cable.Identity{"current_user": "42"}},
		{name: "encrypted gid", args: []string{"--identify", "current_user=encrypted:user_id", "--gid-app", "myapp", "--gid-model", "User"},
			cookie: enc, want: cable.Identity{"current_user": gid42}},
		{name: "signed", args: []string{"--identify", "current_user=signed:user_id@User", "--gid-app", "myapp"}, cookie: signed,
			want: cable.Identity{"current_user": gid42}},
		{name: "devise and a session value", args: []string{"--session-key", "_myapp_session", "--gid-app", "myapp", "--gid-model", "User",
			"--identify", "current_user=session:warden:user", "--identify", "session=session:session_id@to_s"},
			cookie: session, want: cable.Identity{"current_user": gid42, "session": "63394255241adc4f885baf62b27c2753"}},
		{name: "dig into the session", args: []string{"--session-key", "_myapp_session",
			"--identify", "current_user=session:warden.user.user.key:0:0"}, cookie: session,
			want: cable.Identity{"current_user": "42"}},
		{name: "identifiers from the environment list", args: []string{"--session-key", "_myapp_session",
			"--identify", "a=session:warden:user", "--identify", "b=signed:user_id"}, cookie: session + "; " + signed,
			want: cable.Identity{"a": "42", "b": "42"}},
		{name: "token", args: []string{"--token-hash-key", hashKey, "--identify", "current_user=token:token:user_id"},
			query: "token=" + token, want: cable.Identity{"current_user": "7"}},
		// User.new("alice@example.com").to_gid_param, printed by globalid 0.6.0:
		// gid://myapp/User/alice%40example.com.
		{name: "string id escaped as GlobalID does", args: []string{"--token-hash-key", hashKey, "--gid-app", "myapp",
			"--identify", "current_user=token:token:user_id@User"}, query: "token=" + emailToken,
			want: cable.Identity{"current_user": "Z2lkOi8vbXlhcHAvVXNlci9hbGljZSU0MGV4YW1wbGUuY29t"}},
		{name: "no cookie", args: []string{"--identify", "current_user=encrypted:user_id"}, reason: auth.ReasonNoCookie},
		{name: "tampered", args: []string{"--identify", "current_user=encrypted:user_id"},
			cookie: strings.Replace(enc, "b1H", "b2H", 1), reason: auth.ReasonAuthFailed},
		{name: "signed out", args: []string{"--session-key", "_myapp_session", "--identify", "current_user=session:warden:admin"},
			cookie: session, reason: auth.ReasonNoUser},
		{name: "devise timeout", args: []string{"--session-key", "_myapp_session", "--warden-timeout", "30m",
			"--identify", "current_user=session:warden:user"}, cookie: session, reason: auth.ReasonExpired},
		{name: "not a scalar", args: []string{"--session-key", "_myapp_session", "--identify", "current_user=session:warden.user.user.key"},
			cookie: session, reason: auth.ReasonDeserializeFailed},
		{name: "missing token", args: []string{"--token-hash-key", hashKey, "--identify", "current_user=token:token"},
			reason: auth.ReasonNoCookie},
		{name: "a second source for the same identifier", args: []string{"--identify", "current_user=encrypted:user_id",
			"--identify", "current_user=signed:user_id"}, cookie: signed, want: cable.Identity{"current_user": "42"}},
		{name: "second identifier fails", args: []string{"--identify", "a=encrypted:user_id", "--identify", "b=signed:remember"},
			cookie: enc, reason: auth.ReasonNoCookie},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newAuthConfig(t, append([]string{"--secret-key-base", skb}, tt.args...)...)
			a, err := c.authenticator(logger)
			if err != nil || a == nil {
				t.Fatalf("authenticator() = %v, %v", a, err)
			}
			r := httptest.NewRequest("GET", "/cable?"+tt.query, nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			id, err := a.Authenticate(r.Context(), r)
			if tt.reason == "" {
				if err != nil || !reflect.DeepEqual(id, tt.want) {
					t.Fatalf("Authenticate = %v, %v; want %v", id, err, tt.want)
				}
				return
			}
			if !errors.Is(err, cable.ErrUnauthorized) {
				t.Fatalf("Authenticate error %v does not wrap cable.ErrUnauthorized", err)
			}
			var de *auth.DecodeError
			if !errors.As(err, &de) || de.Reason != tt.reason {
				t.Fatalf("Authenticate error %v; want reason %s", err, tt.reason)
			}
			if !strings.Contains(logs.String(), "reason="+string(tt.reason)) {
				t.Errorf("log %q does not give the reason", logs.String())
			}
			if strings.Contains(logs.String()+err.Error(), skb) || strings.Contains(logs.String(), hashKey) {
				t.Errorf("a secret was logged")
			}
		})
	}
}

func TestAuthenticatorConfig(t *testing.T) {
	clearAuthEnv(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if a, err := newAuthConfig(t).authenticator(logger); a != nil || err != nil {
		t.Errorf("no -identify: authenticator() = %v, %v; want nil, nil", a, err)
	}
	t.Setenv("GOCABLE_IDENTIFY", "current_user=encrypted:user_id;tenant=signed:tenant")
	c := newAuthConfig(t, "--secret-key-base", "x")
	ids, err := c.rules()
	if err != nil || len(ids) != 2 || ids[1].Name != "tenant" || ids[1].Source != identify.Signed {
		t.Errorf("identifiers from GOCABLE_IDENTIFY = %+v, %v", ids, err)
	}
	t.Setenv("GOCABLE_IDENTIFY", "")

	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--identify", "current_user"}, "want NAME=SOURCE"},
		{[]string{"--identify", "a=cookie:x"}, "unknown source"},
		{[]string{"--identify", "a=encrypted:"}, "want SOURCE:NAME"},
		{[]string{"--identify", "a=encrypted:x@User"}, "needs -gid-app"},
		{[]string{"--identify", "a=session:warden"}, "session:warden:SCOPE"},
		{[]string{"--identify", "a=encrypted:x"}, "needs -secret-key-base"},
		{[]string{"--secret-key-base", "x", "--identify", "a=session:x"}, "needs -session-key"},
		{[]string{"--identify", "a=token:t"}, "needs -token-hash-key"},
		{[]string{"--token-hash-key", "zz", "--identify", "a=token:t"}, "want hex"},
		{[]string{"--secret-key-base", "x", "--load-defaults", "9.9", "--identify", "a=encrypted:x"}, "9.9"},
		{[]string{"--secret-key-base", "x", "--key-digest", "md5", "--identify", "a=encrypted:x"}, "unsupported digest"},
		{[]string{"--secret-key-base", "x", "--authenticated-encryption", "maybe", "--identify", "a=encrypted:x"}, "want true or false"},
		{[]string{"--secret-key-base", "x", "--rotate-encrypted", "cipher=aes-256-gcm", "--identify", "a=encrypted:x"}, "want key=HEX"},
		{[]string{"--secret-key-base", "x", "--rotate-signed", "key=abcd,cipher=aes-256-gcm", "--identify", "a=signed:x"}, "no cipher"},
		{[]string{"--secret-key-base", "x", "--rotate-encrypted", "key=abcd", "--identify", "a=encrypted:x"}, "key must be 32 bytes"},
		{[]string{"--secret-key-base", "x", "--rotate-encrypted", "secret_key_base_env=NOPE_NOT_SET", "--identify", "a=encrypted:x"}, "NOPE_NOT_SET is empty"},
	}
	for _, tt := range bad {
		_, err := newAuthConfig(t, tt.args...).authenticator(logger)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("authenticator(%q) error = %v; want %q", tt.args, err, tt.want)
		}
	}
}

func TestParseRotation(t *testing.T) {
	clearAuthEnv(t)
	t.Setenv("OLD_SKB", "old-secret")
	def := rotationDefaults{iterations: 1000, salt: "authenticated encrypted cookie", cbcSalt: "encrypted cookie", cbcSignSalt: "signed encrypted cookie"}
	want, _ := auth.DeriveKey("old-secret", auth.SHA1, 1000, "authenticated encrypted cookie", 32)
	rs, err := parseRotation("secret_key_base_env=OLD_SKB,key_digest=sha1", false, def)
	if err != nil || len(rs) != 1 || !bytes.Equal(rs[0].Secret, want) {
		t.Errorf("parseRotation(env, sha1) = %+v, %v", rs, err)
	}
	rs, err = parseRotation("secret_key_base=old-secret", false, def)
	if err != nil || len(rs) != 2 {
		t.Errorf("parseRotation without key_digest = %d rotations, %v; want 2 (SHA256 and SHA1)", len(rs), err)
	}
	rs, err = parseRotation("secret_key_base=old-secret,key_digest=sha1,cipher=aes-256-cbc", false, def)
	wantCBC, _ := auth.DeriveKey("old-secret", auth.SHA1, 1000, "encrypted cookie", 32)
	wantSign, _ := auth.DeriveKey("old-secret", auth.SHA1, 1000, "signed encrypted cookie", 64)
	if err != nil || len(rs) != 1 || !bytes.Equal(rs[0].Secret, wantCBC) || !bytes.Equal(rs[0].SignSecret, wantSign) || rs[0].Cipher != "aes-256-cbc" {
		t.Errorf("parseRotation(cbc) = %+v, %v", rs, err)
	}
	rs, err = parseRotation("key="+strings.Repeat("01", 32)+",sign_key=base64:AAEC,digest=sha256", false, def)
	if err != nil || len(rs) != 1 || len(rs[0].Secret) != 32 || hex.EncodeToString(rs[0].SignSecret) != "000102" || rs[0].Digest != auth.SHA256 {
		t.Errorf("parseRotation(key) = %+v, %v", rs, err)
	}
	def.salt = "signed cookie"
	rs, err = parseRotation("secret_key_base=old-secret,key_digest=sha1", true, def)
	wantSigned, _ := auth.DeriveKey("old-secret", auth.SHA1, 1000, "signed cookie", 64)
	if err != nil || len(rs) != 1 || !bytes.Equal(rs[0].Secret, wantSigned) {
		t.Errorf("parseRotation(signed) = %+v, %v", rs, err)
	}
	for _, bad := range []string{"", "nokey", "color=red", "key=xyz", "secret_key_base=x,key_digest=md5", "secret_key_base=x,length=big"} {
		if _, err := parseRotation(bad, false, def); err == nil {
			t.Errorf("parseRotation(%q) succeeded", bad)
		}
	}
}

// TestAuthenticatorLogs: the GlobalID app is logged at startup when a rule
// renders a model, and not otherwise; -gid-app's help says how to read
// GlobalID.app.
func TestAuthenticatorLogs(t *testing.T) {
	clearAuthEnv(t)
	skb := vectors72(t)["encrypted_user_id_int__json_sha256"].SecretKeyBase
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"--identify", "current_user=encrypted:user_id", "--gid-app", "my-app", "--gid-model", "User"}, true},
		{[]string{"--identify", "current_user=encrypted:user_id@Admin", "--gid-app", "my-app"}, true},
		{[]string{"--identify", "current_user=encrypted:user_id", "--gid-app", "my-app"}, false},
		{[]string{"--identify", "current_user=encrypted:user_id@to_s", "--gid-app", "my-app", "--gid-model", "User"}, false},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		if _, err := newAuthConfig(t, append([]string{"--secret-key-base", skb}, tt.args...)...).authenticator(logger); err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(logs.String(), "gid_app=my-app") && strings.Contains(logs.String(), "GlobalID.app")
		if got != tt.want {
			t.Errorf("%q: GlobalID app logged: %v; want %v\n%s", tt.args, got, tt.want, logs.String())
		}
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var c authConfig
	c.register(fs)
	if u := fs.Lookup("gid-app").Usage; !strings.Contains(u, "bin/rails runner 'p GlobalID.app'") || !strings.Contains(u, "my-app") {
		t.Errorf("-gid-app help %q does not say how to read GlobalID.app", u)
	}
}
