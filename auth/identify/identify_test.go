package identify_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/gocable/gocable/auth"
	"github.com/gocable/gocable/auth/identify"
	"github.com/gocable/gocable/cable"
)

func TestParseRule(t *testing.T) {
	good := []struct {
		in   string
		want identify.Rule
	}{
		{"current_user=encrypted:user_id", identify.Rule{Name: "current_user", Source: identify.Encrypted, Key: "user_id"}},
		{"current_user=signed:user_id@User", identify.Rule{Name: "current_user", Source: identify.Signed, Key: "user_id", Model: "User"}},
		{"current_user=session:warden:user", identify.Rule{Name: "current_user", Source: identify.Warden, Key: "user"}},
		{"s=session:session_id@to_s", identify.Rule{Name: "s", Source: identify.Session, Key: "session_id", Model: identify.ToS}},
		{"u=session:warden.user.user.key:0:0", identify.Rule{Name: "u", Source: identify.Session, Key: "warden.user.user.key", Path: []string{"0", "0"}}},
		{"u=token:token:user_id@Admin::User", identify.Rule{Name: "u", Source: identify.Token, Key: "token", Path: []string{"user_id"}, Model: "Admin::User"}},
		{"u=gocookie:auth", identify.Rule{Name: "u", Source: identify.GoCookie, Key: "auth"}},
	}
	for _, tt := range good {
		got, err := identify.ParseRule(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRule(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			continue
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParseRule(%q).String() = %q", tt.in, s)
		}
	}
	bad := []struct{ in, want string }{
		{"current_user", "want NAME=SOURCE"},
		{"=encrypted:x", "want NAME=SOURCE"},
		{"a=cookie:x", "unknown source"},
		{"a=encrypted:", "want SOURCE:NAME"},
		{"a=encrypted", "want SOURCE:NAME"},
		{"a=session:warden", "session:warden:SCOPE"},
		{"a=session:warden:user:id", "session:warden:SCOPE"},
		{"a=encrypted:x::y", "empty key"},
		{"a=encrypted:x@", "empty model"},
	}
	for _, tt := range bad {
		_, err := identify.ParseRule(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "identify: ") {
			t.Errorf("ParseRule(%q) error = %v; want %q with the package prefix", tt.in, err, tt.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	v := vectors72(t)["encrypted_user_id_int__json_sha256"]
	cookies := v.readers(t, "")
	tokens, err := auth.NewGoCookies(bytes.Repeat([]byte{1}, 32), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	enc := identify.Rule{Name: "u", Source: identify.Encrypted, Key: "user_id"}
	tests := []struct {
		name  string
		cfg   identify.Config
		rules []identify.Rule
		want  string
	}{
		{"no rules", identify.Config{Cookies: cookies}, nil, "no rules"},
		{"no cookies reader", identify.Config{Tokens: tokens}, []identify.Rule{enc}, "Config.Cookies"},
		{"no session key", identify.Config{Cookies: cookies}, []identify.Rule{{Name: "u", Source: identify.Warden, Key: "user"}}, "Config.SessionKey"},
		{"no tokens reader", identify.Config{Cookies: cookies}, []identify.Rule{{Name: "u", Source: identify.Token, Key: "t"}}, "Config.Tokens"},
		{"model without app", identify.Config{Cookies: cookies}, []identify.Rule{{Name: "u", Source: identify.Encrypted, Key: "user_id", Model: "User"}}, "GlobalIDApp"},
		{"default model without app", identify.Config{Cookies: cookies, DefaultModel: "User"}, []identify.Rule{enc}, "GlobalIDApp"},
		{"no source", identify.Config{Cookies: cookies}, []identify.Rule{{Name: "u", Key: "user_id"}}, "no source"},
		{"no name", identify.Config{Cookies: cookies}, []identify.Rule{{Source: identify.Encrypted, Key: "user_id"}}, "no identifier name"},
		{"warden path", identify.Config{Cookies: cookies, SessionKey: "_s"}, []identify.Rule{{Name: "u", Source: identify.Warden, Key: "user", Path: []string{"0"}}}, "no path"},
	}
	for _, tt := range tests {
		a, err := identify.New(tt.cfg, tt.rules...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "identify: ") {
			t.Errorf("%s: New = %v, %v; want an error about %s", tt.name, a, err, tt.want)
		}
	}
	// A model rendered with to_s needs no app, even with a default model.
	toS := enc
	toS.Model = identify.ToS
	if _, err := identify.New(identify.Config{Cookies: cookies, DefaultModel: "User"}, toS); err != nil {
		t.Errorf("New(@to_s with a default model and no app) = %v", err)
	}
	var zero identify.Authenticator
	r := httptest.NewRequest("GET", "/cable", nil)
	if id, err := zero.Authenticate(r.Context(), r); !errors.Is(err, cable.ErrUnauthorized) {
		t.Errorf("zero Authenticator: Authenticate = %v, %v; want a refusal", id, err)
	}
}

// debugLogger returns a logger that writes everything into buf.
func debugLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
