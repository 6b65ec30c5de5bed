package cable_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/gocable/gocable/cable"
)

// gidIDs are record ids, single or composite, that need escaping.
var gidIDs = [][]string{
	{"7"}, {"alice@example.com"}, {"john doe"}, {"a/b+c%é"}, {"100%"}, {"~x-y_z.w"},
	{"acme", "42"}, {"tenant 1", "a/b"}, {"x", "y", "z"},
}

// TestIdentityGlobalIDRoundTrip renders each id as Rails renders a model
// identifier and reads the record back through Identity.GlobalID.
func TestIdentityGlobalIDRoundTrip(t *testing.T) {
	for _, ids := range gidIDs {
		t.Run(strings.Join(ids, ","), func(t *testing.T) {
			id := cable.Identity{"current_user": cable.GlobalIDParam("my-app", "User", ids...)}
			g, ok := id.GlobalID("current_user")
			if !ok {
				t.Fatalf("GlobalID(%q) found nothing", id["current_user"])
			}
			if g.App != "my-app" || g.Model != "User" || !reflect.DeepEqual(modelID(g), ids) {
				t.Errorf("GlobalID = %+v; want my-app User %q", g, ids)
			}
			if (len(ids) == 1) != (len(g.CompositeID) == 0) {
				t.Errorf("GlobalID = %+v: a single id must be ID, several CompositeID", g)
			}
			if got := g.GlobalIDParam(); got != id["current_user"] {
				t.Errorf("GlobalIDParam() = %q; want %q back", got, id["current_user"])
			}
			back, err := cable.ParseGlobalID(g.String())
			if err != nil || !reflect.DeepEqual(back, g) {
				t.Errorf("ParseGlobalID(%q) = %+v, %v; want %+v", g.String(), back, err, g)
			}
		})
	}
}

func modelID(g cable.GlobalID) []string {
	if len(g.CompositeID) > 0 {
		return g.CompositeID
	}
	return []string{g.ID}
}

// rubyGIDScript builds each GlobalID as rails/globalid 1.2+ does
// (lib/global_id/uri/gid.rb, build: each model id part CGI.escape'd,
// joined with "/"; global_id.rb, to_param: urlsafe_encode64 without
// padding) with Ruby's own CGI and Base64, and also prints the padded
// form, which GlobalID.parse accepts too.
//
// Where the globalid gem is installed, a single id is also rendered by
// GlobalID itself (URI::GID.build, to_param), and the script reports
// whether that matches.
const rubyGIDScript = `
require "json"; require "cgi"; require "base64"
have_gid = begin; require "globalid"; true; rescue LoadError; false; end
out = JSON.parse(STDIN.read).map do |ids|
  uri = "gid://my-app/User/" + ids.map { |i| CGI.escape(i) }.join("/")
  real = ""
  if have_gid && ids.size == 1
    real = GlobalID.new(URI::GID.build(app: "my-app", model_name: "User", model_id: ids[0])).to_param
  end
  [uri, Base64.urlsafe_encode64(uri, padding: false), Base64.urlsafe_encode64(uri), real]
end
puts JSON.generate(out)
`

// TestParseGlobalIDFromRuby parses GlobalIDs escaped and encoded by Ruby.
func TestParseGlobalIDFromRuby(t *testing.T) {
	if _, err := exec.LookPath("ruby"); err != nil {
		t.Fatalf("ruby not found in PATH: %v", err)
	}
	in, _ := json.Marshal(gidIDs)
	cmd := exec.Command("ruby", "-e", rubyGIDScript)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ruby: %v", err)
	}
	var forms [][4]string
	if err := json.Unmarshal(out, &forms); err != nil || len(forms) != len(gidIDs) {
		t.Fatalf("ruby printed %s (%v)", out, err)
	}
	for i, ids := range gidIDs {
		for _, s := range forms[i] {
			if s == "" {
				continue // no globalid gem, or a composite id
			}
			g, err := cable.ParseGlobalID(s)
			if err != nil || g.App != "my-app" || g.Model != "User" || !reflect.DeepEqual(modelID(g), ids) {
				t.Errorf("ParseGlobalID(%q) = %+v, %v; want my-app User %q", s, g, err, ids)
			}
		}
		if got := cable.GlobalIDParam("my-app", "User", ids...); got != forms[i][1] {
			t.Errorf("GlobalIDParam(%q) = %q; Ruby's is %q", ids, got, forms[i][1])
		}
		if real := forms[i][3]; real != "" && real != forms[i][1] {
			t.Errorf("globalid's to_param of %q is %q; CGI.escape gives %q", ids, real, forms[i][1])
		}
	}
}

func TestParseGlobalIDRefuses(t *testing.T) {
	for _, s := range []string{
		"", "gid://", "gid://app", "gid://app/User", "gid://app/User/", "gid://app/ /1", "gid://app/User/ ",
		"gid://app/User//", "gid:///User/1", "http://app/User/1", "not base64!", "dXNlcg", // "user"
		"gid://app/User/" + strings.Repeat("1/", 20) + "1",
	} {
		if g, err := cable.ParseGlobalID(s); err == nil {
			t.Errorf("ParseGlobalID(%q) = %+v; want an error", s, g)
		}
	}
	for s, want := range map[string]cable.GlobalID{
		"gid://app/User/1?tenant=x":                        {App: "app", Model: "User", ID: "1"},
		"gid://app/User/1//2":                              {App: "app", Model: "User", CompositeID: []string{"1", "2"}},
		"gid://app/User/%zz%4":                             {App: "app", Model: "User", ID: "%zz%4"},
		"gid://app/User/" + strings.Repeat("1/", 19) + "1": {App: "app", Model: "User", CompositeID: strings.Split(strings.Repeat("1/", 19)+"1", "/")},
	} {
		if g, err := cable.ParseGlobalID(s); err != nil || !reflect.DeepEqual(g, want) {
			t.Errorf("ParseGlobalID(%q) = %+v, %v; want %+v", s, g, err, want)
		}
	}
}

func TestIdentityAccessors(t *testing.T) {
	id := cable.Identity{
		"current_user": cable.GlobalIDParam("app", "User", "42"),
		"tenant":       "acme",
		"account_id":   "17",
		"blank":        " ",
	}
	for _, tc := range []struct {
		name    string
		exists  bool
		present bool
		s       string
		n       int64
	}{
		{"tenant", true, true, "acme", 0},
		{"account_id", true, true, "17", 17},
		{"blank", true, false, " ", 0},
		{"missing", false, false, "", 0},
	} {
		v := id.Get(tc.name)
		if v.Exists() != tc.exists || v.Present() != tc.present || v.String() != tc.s || v.Int() != tc.n {
			t.Errorf("Get(%q): Exists %v, Present %v, String %q, Int %d; want %v %v %q %d",
				tc.name, v.Exists(), v.Present(), v.String(), v.Int(), tc.exists, tc.present, tc.s, tc.n)
		}
	}
	if g, ok := id.GlobalID("current_user"); !ok || !reflect.DeepEqual(g, cable.GlobalID{App: "app", Model: "User", ID: "42"}) {
		t.Errorf("GlobalID(current_user) = %+v, %v", g, ok)
	} else if n, ok := g.IntID(); !ok || n != 42 {
		t.Errorf("IntID() = %d, %v; want 42", n, ok)
	}
	for _, name := range []string{"tenant", "missing"} {
		if g, ok := id.GlobalID(name); ok {
			t.Errorf("GlobalID(%q) = %+v; want none", name, g)
		}
	}
	for _, g := range []cable.GlobalID{{ID: "007"}, {ID: "alice"}, {ID: "99999999999999999999"}, {CompositeID: []string{"1", "2"}}} {
		if n, ok := g.IntID(); ok {
			t.Errorf("%+v.IntID() = %d; want none", g, n)
		}
	}
}
