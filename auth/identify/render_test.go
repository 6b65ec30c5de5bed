package identify

import (
	"encoding/base64"
	"testing"
)

// A Devise user with a composite primary key (Rails 7.1+): GlobalID escapes
// each part of to_key and joins them with "/" (rails/globalid
// lib/global_id/uri/gid.rb, URI::GID.build), so "/" inside a part must not
// be confused with the separator.
func TestRenderCompositeKey(t *testing.T) {
	key := compositeID{"7", "a/b c"}
	got, err := render(key, Rule{Name: "current_user"}, "User", "myapp")
	want := base64.RawURLEncoding.EncodeToString([]byte("gid://myapp/User/7/a%2Fb+c"))
	if err != nil || got != want {
		t.Errorf("render(%q) with a model = %q, %v; want %q", key, got, err, want)
	}
	got, err = render(key, Rule{Name: "current_user"}, "", "")
	if err != nil || got != "7/a/b c" {
		t.Errorf("render(%q) with to_s = %q, %v; want %q", key, got, err, "7/a/b c")
	}
}
