package runner

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// authEnvNames are the environment variables the auth flags read; tests
// clear them so that the machine's environment cannot change the results.
var authEnvNames = []string{
	"SECRET_KEY_BASE", "RAILS_LOAD_DEFAULTS", "RAILS_VERSION", "RAILS_KEY_DIGEST",
	"RAILS_USE_AUTHENTICATED_COOKIE_ENCRYPTION", "RAILS_ENCRYPTED_COOKIE_CIPHER", "RAILS_COOKIES_SERIALIZER",
	"RAILS_SIGNED_COOKIE_DIGEST", "RAILS_COOKIES_DIGEST", "RAILS_KEY_ITERATIONS", "RAILS_NO_CIPHER_FALLBACK",
	"RAILS_SIGNED_COOKIE_SALT", "RAILS_ENCRYPTED_COOKIE_SALT", "RAILS_ENCRYPTED_SIGNED_COOKIE_SALT",
	"RAILS_AUTHENTICATED_ENCRYPTED_COOKIE_SALT", "RAILS_COOKIES_ROTATE_ENCRYPTED", "RAILS_COOKIES_ROTATE_SIGNED",
	"RAILS_SESSION_KEY", "GOCABLE_IDENTIFY", "GOCABLE_GID_APP", "GOCABLE_GID_MODEL", "GOCABLE_WARDEN_TIMEOUT",
	"GOCABLE_TOKEN_HASH_KEY", "GOCABLE_TOKEN_BLOCK_KEY", "GOCABLE_TOKEN_MAX_AGE",
}

func clearAuthEnv(t *testing.T) {
	t.Helper()
	for _, n := range authEnvNames {
		t.Setenv(n, "")
	}
}

// vector is the part of a testdata/cookies vector the command needs.
type vector struct {
	Name          string `json:"name"`
	RailsVersion  string `json:"rails_version"`
	SecretKeyBase string `json:"secret_key_base"`
	Config        struct {
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
			Encrypted []rotation `json:"encrypted"`
			Signed    []rotation `json:"signed"`
		} `json:"rotations"`
	} `json:"config"`
	Jar         string `json:"jar"`
	CookieName  string `json:"cookie_name"`
	HeaderValue string `json:"cookie_header_value"`
	Header      string `json:"cookie_header"`
	Expected    struct {
		OK        bool            `json:"ok"`
		Value     json.RawMessage `json:"value"`
		ErrorKind *string         `json:"error_kind"`
	} `json:"expected"`
}

type rotation struct {
	SecretKeyBase string `json:"secret_key_base"`
	KeyDigest     string `json:"key_generator_hash_digest"`
	Salt          string `json:"salt"`
	Cipher        string `json:"cipher"`
	Digest        string `json:"digest"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	files, _ := filepath.Glob("../../testdata/cookies/rails-*-vectors.json")
	if len(files) == 0 {
		t.Fatal("no vectors in testdata/cookies")
	}
	var all []vector
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var vf struct{ Vectors []vector }
		if err := json.Unmarshal(b, &vf); err != nil {
			t.Fatal(err)
		}
		for i := range vf.Vectors {
			vf.Vectors[i].Name = strings.TrimSuffix(filepath.Base(f), "-vectors.json") + "/" + vf.Vectors[i].Name
		}
		all = append(all, vf.Vectors...)
	}
	return all
}

// flagsOf renders a vector's Rails configuration as gocable flags.
func flagsOf(v vector) []string {
	c := v.Config
	args := []string{
		"--secret-key-base", v.SecretKeyBase,
		"--rails-version", v.RailsVersion,
		"--key-digest", c.KeyDigest,
		"--key-iterations", strconv.Itoa(c.Iterations),
		"--authenticated-encryption=" + strconv.FormatBool(c.Authenticated),
		"--cookies-serializer", c.Serializer,
		"--signed-cookie-salt", c.Salts.Signed,
		"--encrypted-cookie-salt", c.Salts.Encrypted,
		"--encrypted-signed-cookie-salt", c.Salts.EncryptedSigned,
		"--authenticated-encrypted-cookie-salt", c.Salts.Authenticated,
	}
	if c.Cipher != nil {
		args = append(args, "--cookie-cipher", *c.Cipher)
	}
	if c.SignedDigest != nil {
		args = append(args, "--signed-cookie-digest", *c.SignedDigest)
	}
	if c.CookiesDigest != nil {
		args = append(args, "--cookies-digest", *c.CookiesDigest)
	}
	for _, r := range c.Rotations.Encrypted {
		args = append(args, "--rotate-encrypted", "secret_key_base="+r.SecretKeyBase+",key_digest="+r.KeyDigest+",salt="+r.Salt+",cipher="+r.Cipher)
	}
	for _, r := range c.Rotations.Signed {
		args = append(args, "--rotate-signed", "secret_key_base="+r.SecretKeyBase+",key_digest="+r.KeyDigest+",salt="+r.Salt+",digest="+r.Digest)
	}
	if v.Jar == "session" {
		args = append(args, "--session-key", v.CookieName, "--jar", "session")
	} else {
		args = append(args, "--jar", v.Jar, "--name", v.CookieName)
	}
	return args
}

func canonicalJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("bad JSON %q: %v", b, err)
	}
	return v
}

// TestCookieCommandVectors runs `gocable cookie` on every Rails vector, once
// with the whole Cookie header and once with the value alone, and checks
// Rails' answer: the value as JSON on stdout, or the refusal and its reason
// on stderr with exit status 1.
func TestCookieCommandVectors(t *testing.T) {
	clearAuthEnv(t)
	vectors := loadVectors(t)
	if len(vectors) < 150 {
		t.Fatalf("only %d vectors", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			inputs := [][]string{{"--header", v.Header}}
			if v.Jar != "session" && !strings.Contains(v.Name, "duplicate") {
				inputs = append(inputs, []string{"--value", v.HeaderValue})
			}
			for _, in := range inputs {
				args := append(flagsOf(v), in...)
				var stdout, stderr bytes.Buffer
				code := runCookie(args, &stdout, &stderr)
				if v.Expected.OK {
					if code != 0 {
						t.Fatalf("%s: exit %d, stderr %s", in[0], code, stderr.String())
					}
					if got, want := canonicalJSON(t, stdout.Bytes()), canonicalJSON(t, v.Expected.Value); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s: stdout %s; want %s", in[0], stdout.String(), v.Expected.Value)
					}
					continue
				}
				kind := *v.Expected.ErrorKind
				if code != 1 || stdout.Len() != 0 {
					t.Fatalf("%s: exit %d, stdout %q; want exit 1 (%s)", in[0], code, stdout.String(), kind)
				}
				msg := stderr.String()
				if !strings.Contains(msg, ": "+kind) && !(kind == "deserialize_failed" && strings.Contains(msg, ": serializer_refused")) {
					t.Fatalf("%s: stderr %q does not give the reason %s", in[0], msg, kind)
				}
				if strings.Contains(msg, v.SecretKeyBase) {
					t.Fatalf("stderr shows the secret")
				}
			}
		})
	}
}

func TestCookieCommand(t *testing.T) {
	clearAuthEnv(t)
	var v72 map[string]vector
	for _, v := range loadVectors(t) {
		if strings.HasPrefix(v.Name, "rails-7.2/") {
			if v72 == nil {
				v72 = map[string]vector{}
			}
			v72[strings.TrimPrefix(v.Name, "rails-7.2/")] = v
		}
	}
	skb := v72["encrypted_user_id_int__json_sha256"].SecretKeyBase
	enc := v72["encrypted_user_id_int__json_sha256"].Header
	signed := v72["signed_user_id_int__json_sha256"].Header
	session := v72["session_devise__json_sha256"].Header
	sha1enc := v72["encrypted_user_id_int__json_sha1"].Header
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		code     int
		stdout   string // exact, when not empty
		stderrIn string // substring of stderr
	}{
		{name: "secret from the environment", env: map[string]string{"SECRET_KEY_BASE": skb},
			args: []string{"--header", enc, "--name", "user_id"}, code: 0, stdout: "42\n"},
		{name: "load_defaults from the environment", env: map[string]string{"SECRET_KEY_BASE": skb, "RAILS_LOAD_DEFAULTS": "6.1"},
			args: []string{"--header", enc, "--name", "user_id"}, code: 1, stderrIn: "auth_failed"},
		{name: "hint for the key digest", env: map[string]string{"SECRET_KEY_BASE": skb},
			args: []string{"--key-digest", "sha256", "--header", sha1enc, "--name", "user_id"}, code: 1, stderrIn: "authenticates with --key-digest sha1"},
		{name: "whole header", args: []string{"--secret-key-base", skb, "--session-key", "_myapp_session",
			"--header", "theme=dark; " + signed + "; " + session}, code: 0, stderrIn: "theme"},
		{name: "signed found without --jar", args: []string{"--secret-key-base", skb, "--header", signed, "--name", "user_id"},
			code: 0, stdout: "42\n"},
		{name: "identity", args: []string{"--secret-key-base", skb, "--session-key", "_myapp_session",
			"--identify", "current_user=session:warden:user@User", "--gid-app", "myapp", "--header", session, "--identity"},
			code: 0, stdout: `{"connection_identifier":"Z2lkOi8vbXlhcHAvVXNlci80Mg","identity":{"current_user":"Z2lkOi8vbXlhcHAvVXNlci80Mg"}}` + "\n"},
		{name: "identity from the second rule", args: []string{"--secret-key-base", skb, "--session-key", "_myapp_session",
			"--identify", "current_user=encrypted:user_id@User", "--identify", "current_user=session:warden:user@User", "--gid-app", "myapp",
			"--header", session, "--identity"},
			code: 0, stdout: `{"connection_identifier":"Z2lkOi8vbXlhcHAvVXNlci80Mg","identity":{"current_user":"Z2lkOi8vbXlhcHAvVXNlci80Mg"}}` + "\n"},
		{name: "identity refused", args: []string{"--secret-key-base", skb, "--identify", "current_user=encrypted:user_id",
			"--header", "user_id=garbage", "--identity"}, code: 1, stderrIn: "cable: unauthorized: current_user: auth: encrypted cookie \"user_id\": malformed"},
		{name: "no secret", args: []string{"--header", enc, "--name", "user_id"}, code: 2, stderrIn: "no secret_key_base"},
		{name: "no input", args: []string{"--secret-key-base", skb}, code: 2, stderrIn: "give --header or --value"},
		{name: "bad jar", args: []string{"--secret-key-base", skb, "--header", enc, "--jar", "plain"}, code: 2, stderrIn: "--jar"},
		{name: "bad load_defaults", args: []string{"--secret-key-base", skb, "--load-defaults", "4.2", "--header", enc}, code: 2, stderrIn: "4.2"},
		{name: "help", args: []string{"-h"}, code: 0, stderrIn: "usage: gocable cookie"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := runCookie(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d; want %d (stderr %s)", code, tt.code, stderr.String())
			}
			if tt.stdout != "" && stdout.String() != tt.stdout {
				t.Fatalf("stdout %q; want %q", stdout.String(), tt.stdout)
			}
			if !strings.Contains(stderr.String(), tt.stderrIn) {
				t.Fatalf("stderr %q; want it to contain %q", stderr.String(), tt.stderrIn)
			}
		})
	}
}

// TestHelpHidesSecrets checks that -h never prints a secret taken from the
// environment.
func TestHelpHidesSecrets(t *testing.T) {
	clearAuthEnv(t)
	t.Setenv("SECRET_KEY_BASE", "TOPSECRET-skb")
	t.Setenv("GOCABLE_TOKEN_HASH_KEY", "TOPSECRET-hash")
	t.Setenv("RAILS_COOKIES_ROTATE_ENCRYPTED", "secret_key_base=TOPSECRET-old")
	var stdout, stderr bytes.Buffer
	runCookie([]string{"-h"}, &stdout, &stderr)
	if strings.Contains(stdout.String()+stderr.String(), "TOPSECRET") {
		t.Fatalf("help shows a secret:\n%s", stderr.String())
	}
}
