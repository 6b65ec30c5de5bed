// Package auth identifies the user of a request from the cookies of a Rails
// application, so that a Go ActionCable server can do what
// ApplicationCable::Connection#connect does with
// cookies.encrypted[:user_id], cookies.signed[:user_id] or the Devise
// session; and, for Go applications, from cookies or query-string tokens
// issued with gorilla/securecookie.
//
// It is a leaf package: it imports only the standard library and
// gorilla/securecookie.
//
// # Reading Rails cookies
//
// Build a RailsCookies once from a Config that states the application's
// cookie settings, then read requests with it:
//
//	cfg, _ := auth.LoadDefaults("7.1") // config.load_defaults 7.1
//	cfg.SecretKeyBase = os.Getenv("SECRET_KEY_BASE")
//	cfg.SessionKey = "_myapp_session"
//	cookies, err := auth.NewRailsCookies(cfg)
//	...
//	var userID int64
//	err = cookies.Encrypted(r, "user_id", &userID) // cookies.encrypted[:user_id]
//	session, err := cookies.Session(r)              // the CookieStore session
//	user, err := auth.WardenUser(session, "user")   // Devise: user.ID, user.Salt
//
// The reader follows the Rails sources, release by release (the comments
// cite the file behind each rule):
//
//   - Keys: PBKDF2 of secret_key_base with each salt, 1000 iterations,
//     SHA1 or SHA256 (activesupport/lib/active_support/key_generator.rb,
//     railties/lib/rails/application.rb). They are derived by
//     NewRailsCookies, never per request.
//   - Encrypted jar: AES-256-GCM (use_authenticated_cookie_encryption) or
//     AES-256-CBC with HMAC, then cookies_rotations.encrypted, then Rails'
//     built-in fallback to the other cipher
//     (actionpack/lib/action_dispatch/middleware/cookies.rb,
//     activesupport/lib/active_support/message_encryptor.rb).
//   - Signed jar: HMAC with signed_cookie_digest, then
//     cookies_rotations.signed (message_verifier.rb).
//   - Session: the encrypted jar under the session key
//     (action_dispatch/middleware/session/cookie_store.rb).
//   - Metadata: "exp" is enforced (expired when now >= exp) and "pur" must
//     be absent or "cookie.<name>" (activesupport/lib/active_support/messages/metadata.rb).
//   - Serializers: :marshal, :json, :hybrid, :json_allow_marshal,
//     :message_pack and :message_pack_allow_marshal, each with the
//     fallbacks of the configured Rails release
//     (activesupport/lib/active_support/messages/serializer_with_fallback.rb).
//   - The Cookie header is split and unescaped as Rack does; the first
//     cookie of a name wins.
//
// What changes between releases, and how Config expresses it:
//
//	                          5.2   6.0   6.1   7.0   7.1+   Config
//	KDF digest (load_defaults) SHA1  SHA1  SHA1  SHA256 SHA256 KeyDigests (nil: both)
//	CBC app reads GCM          no    no    yes   yes   yes    RailsVersion
//	purpose "cookie.N"         no    yes   yes   yes   yes    RailsVersion
//	:marshal reads JSON        no    no    yes   yes   yes    RailsVersion
//	MessagePack serializers    -     -     -     -     yes    RailsVersion, Serializer
//
// # Writing Rails cookies
//
// The same RailsCookies writes cookies the configured Rails application
// reads, for Go services that issue them and for tests:
//
//	ck, err := cookies.Cookie(auth.JarEncrypted, "user_id", 42, time.Now().Add(time.Hour))
//	http.SetCookie(w, ck) // cookies.encrypted[:user_id] = { value: 42, expires: 1.hour }
//	v, err := cookies.SignedValue("theme", "dark", time.Time{}) // the %-escaped value only
//
// They are written as the Rails of Config.RailsVersion writes them
// (actionpack/lib/action_dispatch/middleware/cookies.rb, commit and
// cookie_metadata): the primary cipher and key (the first KeyDigests
// entry), a fresh random IV, the purpose "cookie.<name>" from 6.0 unless
// NoCookieMetadata, the expiry in milliseconds, JSON or
// ActiveSupport::MessagePack as cookies_serializer dumps (Marshal is never
// written: under :marshal, 6.1+ gets JSON, which it reads), and Rack's
// %-escaping. Signed values carry no randomness and are identical to the
// ones Rails writes.
//
// # Signed messages
//
// MessageVerifier is ActiveSupport::MessageVerifier
// (activesupport/lib/active_support/message_verifier.rb) and Metadata the
// purpose and expiry of its envelope (messages/metadata.rb). It is the one
// implementation behind the signed jar, the HMAC of CBC cookies and, in
// package channels, Turbo's signed stream names. The envelope rules follow
// each release: before 7.1 any JSON object with a "_rails" key is an
// envelope, from 7.1 only one that starts {"_rails":{"message":; 7.1's
// {"_rails":{"data":...}} form is read where the serializer is JSON;
// MessageVerifier reads URL-safe Base64 too from 8.1.
//
// # Values
//
// A cookie value is returned as plain Go values: nil, bool, int64 (or
// *big.Int), float64, string, []any and map[string]any, whatever the
// serializer. Encrypted and Signed also fill a typed destination through
// encoding/json. DecodeMarshal and DecodeMessagePack, used for Marshal and
// MessagePack payloads, describe how Ruby-only types (Symbol, Time,
// objects, ...) appear; nothing is ever instantiated.
//
// # Errors
//
// Every refusal is a *DecodeError: errors.Is(err, ErrNoCookie),
// errors.Is(err, ErrExpired) and errors.Is(err, ErrInvalid) tell the cases
// apart, and the error text (or its Reason and Detail) says exactly why a
// cookie was refused, for the server log. It never includes a secret or a
// cookie value. Rails answers all of these with nil, and so should a
// server: never send the reason to the client.
//
// # Go-issued values
//
// GoCookies wraps gorilla/securecookie for values a Go program issues
// itself, e.g. a short-lived ?token= for a WebSocket URL; it returns the
// same errors.
//
// # Concurrency
//
// RailsCookies, MessageVerifier and GoCookies are immutable after
// construction and safe for concurrent use.
//
// # Not supported
//
// Rails 3's secret_token cookies (read by 5.2 only), custom serializer
// objects, ciphers other than AES-GCM and AES-CBC, the 7.1 message
// envelope with "data" in cookies (Rails never writes it there, because
// the jars use a NullSerializer), and writing Marshal. Devise's
// check of the salt against the users table needs the database and is
// left to the application (see Warden.Salt).
package auth
