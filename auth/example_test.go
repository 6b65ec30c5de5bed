package auth_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gocable/gocable/auth"
)

// The cookies below were written by Rails 7.2.3.2
// (testdata/cookies/rails-7.2-vectors.json).
const (
	secretKeyBase = "9c4ac1d9e8b4f3a27b5e6d0c1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70819aabbcc"

	// cookies.encrypted[:user_id] = 42
	encryptedUserID = "user_id=b1HraJpYwEdRCbNg9HDAz6DKIygO7OqNOanAbtOfm81ym7w6f6kB3qaduXLvde3Rl0QliOXuQXxQ0YxL0l0Z--BQpYfRc2bNmV3fAc--4pa0rlOAjdq5aukuQwfEGg%3D%3D"

	// cookies.signed[:user_id] = 42
	signedUserID = "user_id=eyJfcmFpbHMiOnsibWVzc2FnZSI6Ik5EST0iLCJleHAiOm51bGwsInB1ciI6ImNvb2tpZS51c2VyX2lkIn19--7a0ff7dcb2d556c2176b40c83b785f3f872c1641"

	// The session after Devise's sign_in of user 42.
	deviseSession = "_myapp_session=txLcdL7ZNcn8E5kSkmo0rZxXYg5uiOewJcyB093ok%2BjF6yyI5oSg%2Fj7xiKFqek89zEdURhhGkEFcAw63orTodd9HZGCjNUkjAooJCbPSm2cd2j7aEkdnajI3Qsp53OR2NR46wGhUhr1ep9jfygPfxP5I97b%2Fb9KwRx2kmbRCp19KQvOv1evSoP9yTvOCgMllVYnN9qVAWjbU7d5WrQOeJqVuTEeNGIBn3bMps8pKzvE0SV0narrri32PrmuVQNIlQS9G7imhoc%2BUC%2BRrmClXjfUH8PRl0wQCOKKGn%2BBV2XGPH0pbrBEQr83g7GgT4erE2TMwhn6MOMZi5kXOSpzUNE2VoFCBgXC73FiKAr3K1jfPqy%2BmhU1K5fogFOVgxs3epR1M06TRIIbackxvirMDXb%2FuIES262MWrxw2ii3%2B%2Buyb2SqlOJLniC04yHBMDJuKhQCPoWdphaERleJSl%2FOVbTtL01QZ6WAcvZWXNNYCJHvd8Gc1ndo%3D--PERJs96Uz2KwwcLI--%2FxRvI5wAxyWM7EFsl8VOGg%3D%3D"

	// cookies.encrypted[:user_id] = { value: 42, expires: 1.hour.ago }
	expiredUserID = "user_id=k9vaELSYFi%2B9pdv7OVh%2FEJLMN3fhTO7qiC%2BNr3EvqoiYaU6RK1Bgta2Hfc4eVM81f9xQshwHVgUk7ZTGb%2B%2B%2FzbcPqPyf5xofvVSUr6Nutb%2BP0NqJ%2BA%3D%3D--5vfykqVVSB5TmElk--YLRpLq20gGVHk9EnXSGPkQ%3D%3D"

	// cookies.encrypted[:remember] = {user_id: 42, scopes: ["read", :write], ...} with :marshal
	marshalRemember = "remember=T3KvXbpbzZTC0jAazNxnHyiE5E4iCR3tnbyxidVAQdfBUCYMoCqeXiHW2msBBhR8H3ayTvJgUSKXQidvd4d2Kb45nekmjUXgszZl%2Fqwf0PK2bmid7FeWe8CEcKiEb4f3i0SFhWnQpnj1FxbLHvIRNLjNVNWzUIbK%2B%2FVkWYFmUArDWLRD7aIleOrTcy9SWhUJamwx4I97lhOVEnKy8an9%2Bw%3D%3D--hnmCGm23Ltp3W%2Bwd--lBakHliW26XUfqOO4apOhQ%3D%3D"
)

func ExampleRailsCookies_Encrypted() {
	cfg, err := auth.LoadDefaults("7.2") // config.load_defaults 7.2
	if err != nil {
		panic(err)
	}
	cfg.SecretKeyBase = secretKeyBase
	cookies, err := auth.NewRailsCookies(cfg)
	if err != nil {
		panic(err)
	}

	r := httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("Cookie", "theme=dark; "+encryptedUserID)

	var userID int64
	if err := cookies.Encrypted(r, "user_id", &userID); err != nil {
		fmt.Println("rejected:", err)
		return
	}
	fmt.Println("current_user id:", userID)
	// Output: current_user id: 42
}

func ExampleRailsCookies_Signed() {
	cookies, err := auth.NewRailsCookies(auth.Config{SecretKeyBase: secretKeyBase})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("Cookie", signedUserID)

	var userID any
	err = cookies.Signed(r, "user_id", &userID)
	fmt.Printf("%v %T %v\n", userID, userID, err)
	// Output: 42 int64 <nil>
}

func ExampleRailsCookies_Session() {
	cookies, err := auth.NewRailsCookies(auth.Config{
		SecretKeyBase: secretKeyBase,
		SessionKey:    "_myapp_session",
	})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("Cookie", deviseSession)

	session, err := cookies.Session(r)
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	user, err := auth.WardenUser(session, "user") // Devise scope :user
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	fmt.Println("user", user.ID, "salt", user.Salt)
	// Output: user 42 salt $2a$12$KDFqNHQx5pRdAGPNf5ZFZe
}

func ExampleRailsCookies_Read() {
	cookies, err := auth.NewRailsCookies(auth.Config{SecretKeyBase: secretKeyBase})
	if err != nil {
		panic(err)
	}
	v, err := cookies.Read(auth.JarEncrypted, marshalRemember, "remember")
	fmt.Println(v, err)
	// Output: map[admin:false nothing:<nil> ratio:1.5 scopes:[read write] user_id:42] <nil>
}

func ExampleDecodeError() {
	cookies, err := auth.NewRailsCookies(auth.Config{SecretKeyBase: secretKeyBase})
	if err != nil {
		panic(err)
	}
	for _, header := range []string{"", expiredUserID, strings.Replace(encryptedUserID, "b1H", "b2H", 1)} {
		_, err := cookies.Read(auth.JarEncrypted, header, "user_id")
		var de *auth.DecodeError
		errors.As(err, &de)
		switch {
		case errors.Is(err, auth.ErrNoCookie):
			fmt.Println("anonymous:", de.Reason)
		case errors.Is(err, auth.ErrExpired):
			fmt.Println("expired:", de.Reason)
		case errors.Is(err, auth.ErrInvalid):
			fmt.Println("invalid:", de.Reason) // log err; tell the client nothing
		}
	}
	// Output:
	// anonymous: no_cookie
	// expired: expired
	// invalid: auth_failed
}

func ExampleGoCookies() {
	hashKey := []byte("a 32-byte HMAC key for tokens...")
	tokens, err := auth.NewGoCookies(hashKey, nil, 5*time.Minute)
	if err != nil {
		panic(err)
	}
	// Issued by the Go app that renders the page:
	token, err := tokens.Encode("token", map[string]any{"user_id": 42})
	if err != nil {
		panic(err)
	}
	// Read by the cable server from ws://host/cable?token=...:
	r := httptest.NewRequest("GET", "/cable?token="+token, nil)
	var claims struct {
		UserID int64 `json:"user_id"`
	}
	err = tokens.Query(r, "token", &claims)
	fmt.Println(claims.UserID, err)
	// Output: 42 <nil>
}

// A Go service signs a user in for a Rails 7.2 app: it sets the cookie
// that the app reads as cookies.encrypted[:user_id].
func ExampleRailsCookies_Cookie() {
	cfg, err := auth.LoadDefaults("7.2")
	if err != nil {
		panic(err)
	}
	cfg.SecretKeyBase = secretKeyBase
	cookies, err := auth.NewRailsCookies(cfg)
	if err != nil {
		panic(err)
	}

	w := httptest.NewRecorder()
	ck, err := cookies.Cookie(auth.JarEncrypted, "user_id", 42, time.Now().Add(time.Hour))
	if err != nil {
		panic(err)
	}
	ck.HttpOnly, ck.Secure = true, true
	http.SetCookie(w, ck)

	// The browser sends it back; Rails (or gocable) reads it.
	r := httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("Cookie", strings.SplitN(w.Header().Get("Set-Cookie"), ";", 2)[0])
	var userID int64
	err = cookies.Encrypted(r, "user_id", &userID)
	fmt.Println(userID, err)

	// It was written for user_id only: the purpose "cookie.user_id".
	_, err = cookies.Read(auth.JarEncrypted, "session_id="+ck.Value, "session_id")
	fmt.Println(errors.Is(err, auth.ErrInvalid))
	// Output:
	// 42 <nil>
	// true
}

// A MessageVerifier signs and checks messages as
// ActiveSupport::MessageVerifier does; here a password reset token that
// holds a JSON payload for one purpose and expires.
func ExampleMessageVerifier() {
	v, err := auth.NewMessageVerifier(auth.SHA256, []byte("a secret of the application"))
	if err != nil {
		panic(err)
	}
	issued := time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC)
	token := v.Generate([]byte(`{"user_id":42}`), auth.Metadata{Purpose: "password_reset", Expires: issued.Add(15 * time.Minute)})

	payload, err := v.Verify(token, "password_reset", issued.Add(time.Minute))
	fmt.Printf("%s %v\n", payload, err)

	_, err = v.Verify(token, "login", issued.Add(time.Minute))
	fmt.Println(errors.Is(err, auth.ErrInvalid))

	_, err = v.Verify(token, "password_reset", issued.Add(time.Hour))
	fmt.Println(errors.Is(err, auth.ErrExpired))
	// Output:
	// {"user_id":42} <nil>
	// true
	// true
}
