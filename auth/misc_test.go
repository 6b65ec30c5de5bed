package auth

import (
	"errors"
	"math"
	"math/big"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCookieValue(t *testing.T) {
	tests := []struct {
		header, name string
		want         string
		ok           bool
	}{
		{"user_id=abc", "user_id", "abc", true},
		{"a=1; user_id=abc; b=2", "user_id", "abc", true},
		{"a=1;user_id=abc", "user_id", "abc", true},
		{"a=1;   user_id=abc", "user_id", "abc", true},
		{"user_id=first; user_id=second", "user_id", "first", true},
		{"user_id; user_id=second", "user_id", "", false}, // Rack keeps the nil first
		{"user_id=", "user_id", "", true},
		{"user_id=a%2Bb%2F%3D", "user_id", "a+b/=", true},
		{"user_id=a+b", "user_id", "a b", true},
		{"user_id=100%", "user_id", "100%", true}, // bad escape: raw value
		{"user_id=x=y", "user_id", "x=y", true},
		{"xuser_id=1", "user_id", "", false},
		{"User_id=1", "user_id", "", false},
		{"user_id =1", "user_id", "", false},
		{"", "user_id", "", false},
		{";;; user_id=1", "user_id", "1", true},
	}
	for _, tt := range tests {
		got, ok := cookieValue(tt.header, tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("cookieValue(%q, %q) = %q, %v; want %q, %v", tt.header, tt.name, got, ok, tt.want, tt.ok)
		}
	}
	if got := CookieNames("a=1; b=2; a=3; c"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("CookieNames = %q", got)
	}
}

func TestRubyToS(t *testing.T) {
	tests := []struct {
		in   any
		want string
		ok   bool
	}{
		{nil, "", true},
		{"x", "x", true},
		{true, "true", true},
		{int64(-42), "-42", true},
		{big.NewInt(0).Lsh(big.NewInt(1), 70), "1180591620717411303424", true},
		{1.5, "1.5", true},
		{3.0, "3.0", true},
		{100.0, "100.0", true},
		{1e15, "1000000000000000.0", true},
		{1e16, "1.0e+16", true},
		{1.25e20, "1.25e+20", true},
		{0.0001, "0.0001", true},
		{0.00001, "1.0e-05", true},
		{-2.5e-7, "-2.5e-07", true},
		{math.Copysign(0, -1), "-0.0", true},
		{math.Inf(1), "Infinity", true},
		{math.NaN(), "NaN", true},
		{[]any{}, "", false},
		{map[string]any{}, "", false},
	}
	for _, tt := range tests {
		got, ok := RubyToS(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("RubyToS(%#v) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDecodeErrorIs(t *testing.T) {
	tests := []struct {
		reason Reason
		want   error
	}{
		{ReasonNoCookie, ErrNoCookie},
		{ReasonExpired, ErrExpired},
		{ReasonNoUser, ErrNoUser},
		{ReasonMalformed, ErrInvalid},
		{ReasonAuthFailed, ErrInvalid},
		{ReasonPurposeMismatch, ErrInvalid},
		{ReasonDeserializeFailed, ErrInvalid},
		{ReasonSerializerRefused, ErrInvalid},
	}
	all := []error{ErrNoCookie, ErrExpired, ErrInvalid, ErrNoUser}
	for _, tt := range tests {
		var err error = &DecodeError{Jar: "encrypted", Name: "user_id", Reason: tt.reason, Detail: "why"}
		for _, s := range all {
			if got := errors.Is(err, s); got != (s == tt.want) {
				t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
			}
		}
		if !strings.HasPrefix(err.Error(), `auth: encrypted cookie "user_id": `+string(tt.reason)+": why") {
			t.Errorf("Error() = %q", err)
		}
	}
}

func TestWardenUser(t *testing.T) {
	ts := int64(1700000000)
	tests := []struct {
		name    string
		session map[string]any
		want    Warden
		err     error
	}{
		{"devise", map[string]any{
			"warden.user.user.key":     []any{[]any{int64(42)}, "$2a$12$salt"},
			"warden.user.user.session": map[string]any{"last_request_at": ts}},
			Warden{Scope: "user", Key: []any{int64(42)}, ID: "42", IDParts: []string{"42"}, Salt: "$2a$12$salt", LastRequestAt: time.Unix(ts, 0)}, nil},
		{"uuid and nil salt", map[string]any{"warden.user.user.key": []any{[]any{"0b9c-uuid"}, nil}},
			Warden{Scope: "user", Key: []any{"0b9c-uuid"}, ID: "0b9c-uuid", IDParts: []string{"0b9c-uuid"}}, nil},
		{"composite key", map[string]any{"warden.user.user.key": []any{[]any{int64(1), int64(2)}, "s"}},
			Warden{Scope: "user", Key: []any{int64(1), int64(2)}, ID: "1/2", IDParts: []string{"1", "2"}, Salt: "s"}, nil},
		{"old devise form", map[string]any{"warden.user.user.key": []any{"User", []any{int64(7)}, "s"}},
			Warden{Scope: "user", Key: []any{int64(7)}, ID: "7", IDParts: []string{"7"}, Salt: "s"}, nil},
		{"signed out", map[string]any{"session_id": "x"}, Warden{}, ErrNoUser},
		{"bad shape", map[string]any{"warden.user.user.key": "42"}, Warden{}, ErrInvalid},
		{"empty key", map[string]any{"warden.user.user.key": []any{[]any{}, "s"}}, Warden{}, ErrInvalid},
		{"hash id", map[string]any{"warden.user.user.key": []any{[]any{map[string]any{}}, "s"}}, Warden{}, ErrInvalid},
		{"nil id", map[string]any{"warden.user.user.key": []any{[]any{nil}, "s"}}, Warden{}, ErrInvalid},
	}
	for _, tt := range tests {
		got, err := WardenUser(tt.session, "user")
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: WardenUser error = %v; want %v", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: WardenUser = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestRequestAPI(t *testing.T) {
	gcm := mustKey(t, SHA256, defaultAuthenticatedEncryptedCookieSalt, 32)
	c, err := NewRailsCookies(Config{SecretKeyBase: testSKB, SessionKey: "_app_session"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/cable", nil)
	r.Header.Add("Cookie", "user_id="+sealGCM(t, gcm, envelope([]byte("42"), "", "cookie.user_id")))
	r.Header.Add("Cookie", "prefs="+sealGCM(t, gcm, []byte(`{"theme":"dark","n":[1,2]}`)))

	var id int64
	if err := c.Encrypted(r, "user_id", &id); err != nil || id != 42 {
		t.Errorf("Encrypted(&int64) = %d, %v", id, err)
	}
	var s string
	if err := c.Encrypted(r, "user_id", &s); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encrypted(&string) error = %v; want ErrInvalid", err)
	}
	var prefs struct {
		Theme string
		N     []int
	}
	if err := c.Encrypted(r, "prefs", &prefs); err != nil || prefs.Theme != "dark" || len(prefs.N) != 2 {
		t.Errorf("Encrypted(&struct) = %+v, %v", prefs, err)
	}
	var anyv any
	if err := c.Encrypted(r, "prefs", &anyv); err != nil {
		t.Errorf("Encrypted(&any): %v", err)
	}
	if err := c.Signed(r, "user_id", &anyv); !errors.Is(err, ErrInvalid) {
		t.Errorf("Signed(encrypted cookie) error = %v; want ErrInvalid", err)
	}
	if err := c.Encrypted(r, "missing", &anyv); !errors.Is(err, ErrNoCookie) {
		t.Errorf("Encrypted(missing) error = %v; want ErrNoCookie", err)
	}
	if _, err := c.Session(r); !errors.Is(err, ErrNoCookie) {
		t.Errorf("Session error = %v; want ErrNoCookie", err)
	}
	if _, err := c.Read("plain", "", "x"); err == nil {
		t.Error("Read with an unknown jar succeeded")
	}
	noKey, _ := NewRailsCookies(Config{SecretKeyBase: testSKB})
	if _, err := noKey.Session(r); err == nil || errors.Is(err, ErrNoCookie) {
		t.Errorf("Session without SessionKey error = %v", err)
	}
}

func TestGoCookies(t *testing.T) {
	hashKey := []byte(strings.Repeat("h", 32))
	blockKey := []byte(strings.Repeat("b", 32))
	g, err := NewGoCookies(hashKey, blockKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := g.Encode("token", map[string]any{"user_id": 42})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		UserID int64 `json:"user_id"`
	}
	if err := g.Decode("token", tok, &got); err != nil || got.UserID != 42 {
		t.Fatalf("Decode = %+v, %v", got, err)
	}

	r := httptest.NewRequest("GET", "/cable?token="+tok, nil)
	if err := g.Query(r, "token", &got); err != nil {
		t.Errorf("Query: %v", err)
	}
	r.Header.Set("Cookie", "token="+tok)
	if err := g.Cookie(r, "token", &got); err != nil {
		t.Errorf("Cookie: %v", err)
	}

	other, _ := NewGoCookies([]byte(strings.Repeat("x", 32)), blockKey, 0)
	later, _ := NewGoCookies(hashKey, blockKey, time.Hour)
	later.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	tests := []struct {
		name string
		err  error
		want Reason
	}{
		{"missing query", g.Query(httptest.NewRequest("GET", "/cable", nil), "token", &got), ReasonNoCookie},
		{"missing cookie", g.Cookie(httptest.NewRequest("GET", "/cable", nil), "token", &got), ReasonNoCookie},
		{"other name", g.Decode("session", tok, &got), ReasonAuthFailed},
		{"other key", other.Decode("token", tok, &got), ReasonAuthFailed},
		{"expired", later.Decode("token", tok, &got), ReasonExpired},
		{"garbage", g.Decode("token", "garbage!", &got), ReasonMalformed},
		{"wrong type", g.Decode("token", tok, new(string)), ReasonDeserializeFailed},
		{"too long", g.Decode("token", strings.Repeat("A", 5000), &got), ReasonMalformed},
	}
	for _, tt := range tests {
		if r := reasonOf(tt.err); r != tt.want {
			t.Errorf("%s: error %v; want reason %s", tt.name, tt.err, tt.want)
		}
	}
	if !errors.Is(tests[4].err, ErrExpired) || !errors.Is(tests[3].err, ErrInvalid) || !errors.Is(tests[0].err, ErrNoCookie) {
		t.Error("GoCookies errors do not wrap the sentinels")
	}

	for _, bad := range []struct {
		hash, block []byte
		age         time.Duration
	}{{nil, nil, 0}, {hashKey, []byte("short"), 0}, {hashKey, nil, -time.Second}} {
		if _, err := NewGoCookies(bad.hash, bad.block, bad.age); err == nil {
			t.Errorf("NewGoCookies(%q, %q, %v) succeeded", bad.hash, bad.block, bad.age)
		}
	}
}
