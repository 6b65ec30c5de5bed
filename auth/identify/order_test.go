package identify_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gocable/gocable/auth"
	"github.com/gocable/gocable/auth/identify"
	"github.com/gocable/gocable/cable"
)

// sessionValue returns what Rails read from a session vector.
func sessionValue(t *testing.T, v railsCookie) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(v.Expected.Value))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", v.Name, err)
	}
	return m
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// reasonOf returns the reason of the first *auth.DecodeError in err.
func reasonOf(err error) auth.Reason {
	var de *auth.DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

// decodeErrors returns every *auth.DecodeError in the tree of err, in order.
func decodeErrors(err error) []*auth.DecodeError {
	if de, ok := err.(*auth.DecodeError); ok {
		return []*auth.DecodeError{de}
	}
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out []*auth.DecodeError
		for _, x := range e.Unwrap() {
			out = append(out, decodeErrors(x)...)
		}
		return out
	case interface{ Unwrap() error }:
		return decodeErrors(e.Unwrap())
	}
	return nil
}

// TestOrderRailsVectors reads every Rails 7.2 vector made with the
// session's settings as the first source of current_user, with a cookie
// Rails reads as the second, as in
//
//	self.current_user = cookies.encrypted[:user_id] || session[:session_id]
//
// When Rails read the vector's cookie, its value wins; when Rails read nil
// (no cookie, altered, expired, wrong purpose, not deserializable), the
// second source gives the identifier. The rules reversed, the second
// source always wins.
func TestOrderRailsVectors(t *testing.T) {
	vs := vectors72(t)
	session := vs["session_devise__json_sha256"]
	enc := vs["encrypted_user_id_int__json_sha256"]
	if !session.Expected.OK || !enc.Expected.OK {
		t.Fatal("the fallback vectors are not read by Rails")
	}
	sessionID, _ := sessionValue(t, session)["session_id"].(string)
	if sessionID == "" {
		t.Fatal("the session vector has no session_id")
	}
	cookies := session.readers(t, session.CookieName)
	config := compactJSON(t, session.Config)
	ran, refused := 0, 0
	for name, v := range vs {
		if name == session.Name || compactJSON(t, v.Config) != config {
			continue
		}
		ran++
		if !v.Expected.OK {
			refused++
		}
		t.Run(name, func(t *testing.T) {
			first := identify.Rule{Name: "current_user", Source: identify.Source(v.Jar), Key: v.CookieName}
			second := identify.Rule{Name: "current_user", Source: identify.Session, Key: "session_id"}
			header := v.Header + "; " + session.Header
			fallback := sessionID
			want := ""
			if v.Jar == "session" {
				// Then the session is the first source, the encrypted
				// cookie the second.
				first, second = second, identify.Rule{Name: "current_user", Source: identify.Encrypted, Key: "user_id"}
				header = v.Header + "; " + enc.Header
				fallback = enc.toS(t)
				if v.Expected.OK {
					want, _ = sessionValue(t, v)["session_id"].(string)
				}
			} else if v.Expected.OK {
				want = v.toS(t)
			}
			if want == "" {
				want = fallback
			}
			for _, tt := range []struct {
				order []identify.Rule
				want  string
			}{{[]identify.Rule{first, second}, want}, {[]identify.Rule{second, first}, fallback}} {
				var logs bytes.Buffer
				a, err := identify.New(identify.Config{Cookies: cookies, SessionKey: session.CookieName, Logger: debugLogger(&logs)}, tt.order...)
				if err != nil {
					t.Fatal(err)
				}
				r := httptest.NewRequest("GET", "/cable", nil)
				r.Header.Set("Cookie", header)
				got, err := a.Authenticate(r.Context(), r)
				if err != nil || got["current_user"] != tt.want || len(got) != 1 {
					t.Fatalf("rules %v: Authenticate = %v, %v; want current_user %q (Rails read ok=%v)", tt.order, got, err, tt.want, v.Expected.OK)
				}
				if tt.order[0].String() == first.String() && !v.Expected.OK {
					kind := *v.Expected.ErrorKind
					l := logs.String()
					if !strings.Contains(l, "rule gave nothing") || !strings.Contains(l, "reason="+kind) && !(kind == "deserialize_failed" && strings.Contains(l, "reason=serializer_refused")) {
						t.Errorf("the log does not say why the first rule gave nothing (%s):\n%s", kind, l)
					}
				}
				if !strings.Contains(logs.String(), "connection_identifier="+tt.want) {
					t.Errorf("the log does not give the connection identifier:\n%s", logs.String())
				}
			}
		})
	}
	if ran < 20 || refused < 10 {
		t.Fatalf("only %d vectors (%d refused by Rails) share the session's settings", ran, refused)
	}
}

// TestOrderWarden: env["warden"].user(:admin) || env["warden"].user(:user).
func TestOrderWarden(t *testing.T) {
	vs := vectors72(t)
	session := vs["session_devise__json_sha256"]
	key, _ := sessionValue(t, session)["warden.user.user.key"].([]any)
	if len(key) != 2 {
		t.Fatalf("the session vector has no Devise user: %v", key)
	}
	id, _ := key[0].([]any)
	if len(id) != 1 {
		t.Fatalf("to_key %v", key[0])
	}
	want := cable.GlobalIDParam("myapp", "User", id[0].(json.Number).String())
	cfg := identify.Config{Cookies: session.readers(t, session.CookieName), SessionKey: session.CookieName, GlobalIDApp: "myapp", DefaultModel: "User"}
	a, err := identify.New(cfg,
		identify.Rule{Name: "current_user", Source: identify.Warden, Key: "admin"},
		identify.Rule{Name: "current_user", Source: identify.Warden, Key: "user"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("Cookie", session.Header)
	got, err := a.Authenticate(r.Context(), r)
	if err != nil || got["current_user"] != want {
		t.Fatalf("Authenticate = %v, %v; want %q", got, err, want)
	}
	// The session cookie on a second Cookie header line (HTTP/2 clients
	// may send one per cookie) is read as the cookie jars read it.
	r = httptest.NewRequest("GET", "/cable", nil)
	r.Header.Add("Cookie", "other=1")
	r.Header.Add("Cookie", session.Header)
	if got, err := a.Authenticate(r.Context(), r); err != nil || got["current_user"] != want {
		t.Errorf("session on a second Cookie line: Authenticate = %v, %v; want %q", got, err, want)
	}
	if m := a.Models(); len(m) != 1 || m[0] != "User" {
		t.Errorf("Models() = %q; want [User]", m)
	}
}

// TestOrderMinted has the installed Rails write cookies now (one of them
// already expired) and checks the order of the sources against what Rails
// read back from each.
func TestOrderMinted(t *testing.T) {
	const skb = "identify-order-test-secret-key-base-0123456789abcdef"
	user := mint(t, skb, "encrypted", "user_id", "7", "3600")
	remember := mint(t, skb, "signed", "remember_id", "9", "none")
	expired := mint(t, skb, "encrypted", "old_id", "5", "-3600")
	hash := mint(t, skb, "encrypted", "remember", `{"user_id":3}`, "none")
	if !user.Expected.OK || !remember.Expected.OK || expired.Expected.OK || !hash.Expected.OK {
		t.Fatalf("Rails read ok: user %v, remember %v, expired %v, hash %v; want true, true, false, true",
			user.Expected.OK, remember.Expected.OK, expired.Expected.OK, hash.Expected.OK)
	}
	cookies := user.readers(t, "")
	header := strings.Join([]string{user.Header, remember.Header, expired.Header, hash.Header}, "; ")
	altered := strings.Replace(user.Header, "user_id=", "user_id=A", 1)
	rule := func(s string) identify.Rule {
		r, err := identify.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name   string
		rules  []string
		header string
		want   string      // "" when refused
		reason auth.Reason // of the first rule, when refused
	}{
		{"first wins", []string{"u=encrypted:user_id", "u=signed:remember_id"}, header, user.toS(t), ""},
		{"order given", []string{"u=signed:remember_id", "u=encrypted:user_id"}, header, remember.toS(t), ""},
		{"expired falls through", []string{"u=encrypted:old_id", "u=signed:remember_id"}, header, remember.toS(t), ""},
		{"altered falls through", []string{"u=encrypted:user_id", "u=signed:remember_id"}, altered + "; " + remember.Header, remember.toS(t), ""},
		{"missing falls through", []string{"u=encrypted:nope", "u=encrypted:old_id", "u=encrypted:user_id"}, header, user.toS(t), ""},
		{"a signed cookie is not encrypted", []string{"u=encrypted:remember_id", "u=encrypted:user_id"}, header, user.toS(t), ""},
		{"dig", []string{"u=encrypted:remember:user_id", "u=encrypted:user_id"}, header, "3", ""},
		{"all give nothing", []string{"u=encrypted:nope", "u=encrypted:old_id"}, header, "", auth.ReasonNoCookie},
		{"a hash is not an id", []string{"u=encrypted:remember", "u=encrypted:user_id"}, header, "", auth.ReasonDeserializeFailed},
		{"two identifiers", []string{"u=encrypted:old_id", "t=signed:remember_id", "u=encrypted:user_id"}, header, user.toS(t) + "," + remember.toS(t), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rules []identify.Rule
			for _, s := range tt.rules {
				rules = append(rules, rule(s))
			}
			var logs bytes.Buffer
			a, err := identify.New(identify.Config{Cookies: cookies, Logger: debugLogger(&logs)}, rules...)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/cable", nil)
			r.Header.Set("Cookie", tt.header)
			got, err := a.Authenticate(r.Context(), r)
			if tt.want == "" {
				if !errors.Is(err, cable.ErrUnauthorized) || reasonOf(err) != tt.reason {
					t.Fatalf("Authenticate = %v, %v; want a refusal (%s)", got, err, tt.reason)
				}
				if strings.Contains(logs.String()+err.Error(), skb) {
					t.Error("a secret was logged")
				}
				return
			}
			want := cable.Identity{"u": tt.want}
			if u, tv, ok := strings.Cut(tt.want, ","); ok {
				want = cable.Identity{"u": u, "t": tv}
			}
			if err != nil || len(got) != len(want) || got["u"] != want["u"] || got["t"] != want["t"] {
				t.Fatalf("Authenticate = %v, %v; want %v", got, err, want)
			}
		})
	}

	// When every rule gives nothing, the error and the log name each rule's reason.
	var logs bytes.Buffer
	a, err := identify.New(identify.Config{Cookies: cookies, Logger: debugLogger(&logs)}, rule("u=encrypted:nope"), rule("u=encrypted:old_id"))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("Cookie", header)
	_, err = a.Authenticate(r.Context(), r)
	var reasons []auth.Reason
	for _, de := range decodeErrors(err) {
		reasons = append(reasons, de.Reason)
	}
	if len(reasons) != 2 || reasons[0] != auth.ReasonNoCookie || reasons[1] != auth.ReasonExpired {
		t.Errorf("error %v holds reasons %v; want [no_cookie expired]", err, reasons)
	}
	if l := logs.String(); strings.Count(l, "rule gave nothing") != 2 || !strings.Contains(l, "reason=expired") || !strings.Contains(l, `next="u=encrypted:old_id"`) {
		t.Errorf("log does not explain each rule:\n%s", l)
	}
}

// TestNoCookieHeader: a refusal of a request that carried no Cookie header
// at all is logged at info, with the cross-host hint; one that carried
// cookies, or a token rule, is not.
func TestNoCookieHeader(t *testing.T) {
	vs := vectors72(t)
	enc := vs["encrypted_user_id_int__json_sha256"]
	cookies := enc.readers(t, "")
	tokens, err := auth.NewGoCookies(bytes.Repeat([]byte{1}, 32), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		rule   identify.Rule
		cookie string
		info   bool
	}{
		{"no Cookie header", identify.Rule{Name: "u", Source: identify.Encrypted, Key: "user_id"}, "", true},
		{"other cookies", identify.Rule{Name: "u", Source: identify.Encrypted, Key: "user_id"}, "theme=dark", false},
		{"token rule", identify.Rule{Name: "u", Source: identify.Token, Key: "token"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			a, err := identify.New(identify.Config{Cookies: cookies, Tokens: tokens, Logger: logger}, tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/cable", nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			if _, err := a.Authenticate(r.Context(), r); !errors.Is(err, cable.ErrUnauthorized) {
				t.Fatalf("Authenticate error %v; want a refusal", err)
			}
			got := strings.Contains(logs.String(), "level=INFO") && strings.Contains(logs.String(), "no Cookie header") && strings.Contains(logs.String(), "parent domain")
			if got != tt.info {
				t.Errorf("info line about the missing Cookie header: %v; want %v\n%s", got, tt.info, logs.String())
			}
		})
	}
}
