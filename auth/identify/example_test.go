package identify_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/gocable/gocable/auth"
	"github.com/gocable/gocable/auth/identify"
	"github.com/gocable/gocable/cable"
)

// ExampleNew identifies a connection by the Devise user of the Rails
// session, or, for a request without one, by an encrypted user_id cookie:
//
//	self.current_user = env["warden"].user || User.find(cookies.encrypted[:user_id])
//
// The cookie here was written by Rails 7.2 (testdata/cookies).
func ExampleNew() {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "cookies", "rails-7.2-vectors.json"))
	if err != nil {
		log.Fatal(err)
	}
	var vectors struct {
		Vectors []struct {
			Name          string `json:"name"`
			SecretKeyBase string `json:"secret_key_base"`
			Header        string `json:"cookie_header"`
		}
	}
	if err := json.Unmarshal(b, &vectors); err != nil {
		log.Fatal(err)
	}
	var secretKeyBase, header string
	for _, v := range vectors.Vectors {
		if v.Name == "encrypted_user_id_int__json_sha256" {
			secretKeyBase, header = v.SecretKeyBase, v.Header
		}
	}

	// The app's cookie settings: config.load_defaults 7.2, cookies_serializer :json.
	cfg, err := auth.LoadDefaults("7.2")
	if err != nil {
		log.Fatal(err)
	}
	cfg.SecretKeyBase = secretKeyBase
	cfg.Serializer = auth.SerializerJSON
	cookies, err := auth.NewRailsCookies(cfg)
	if err != nil {
		log.Fatal(err)
	}

	var rules []identify.Rule
	for _, s := range []string{"current_user=session:warden:user", "current_user=encrypted:user_id"} {
		r, err := identify.ParseRule(s)
		if err != nil {
			log.Fatal(err)
		}
		rules = append(rules, r)
	}
	a, err := identify.New(identify.Config{
		Cookies:      cookies,
		SessionKey:   "_myapp_session",
		GlobalIDApp:  "myapp", // bin/rails runner 'p GlobalID.app'
		DefaultModel: "User",
	}, rules...)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /cable", &cable.Server{Authenticator: a})

	r := httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("Cookie", header) // no session: the cookie decides
	identity, err := a.Authenticate(r.Context(), r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(identity["current_user"] == cable.GlobalIDParam("myapp", "User", "42"))
	// Output: true
}

// ExampleParseRule shows the parts of a rule as --identify takes it.
func ExampleParseRule() {
	r, err := identify.ParseRule("current_user=encrypted:remember:user_id@User")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Name, r.Source, r.Key, r.Path, r.Model)
	// Output: current_user encrypted remember [user_id] User
}
