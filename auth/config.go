package auth

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Serializer is the value of config.action_dispatch.cookies_serializer.
type Serializer string

// The cookies_serializer settings
// (actionpack/lib/action_dispatch/middleware/cookies.rb, SerializedCookieJars#serializer;
// activesupport/lib/active_support/messages/serializer_with_fallback.rb).
const (
	// SerializerMarshal is :marshal, also Rails' default when the setting
	// is nil. Under the 7.1+ rules it reads Marshal, JSON and MessagePack;
	// 6.1/7.0 read Marshal and JSON; 5.2/6.0 read Marshal only.
	SerializerMarshal Serializer = "marshal"
	// SerializerJSON is :json: JSON (and MessagePack from 7.1); Marshal is
	// refused.
	SerializerJSON Serializer = "json"
	// SerializerHybrid is :hybrid: JSON, and Marshal for cookies written
	// before the switch to JSON (plus MessagePack from 7.1, where it is
	// :json_allow_marshal).
	SerializerHybrid Serializer = "hybrid"
	// SerializerJSONAllowMarshal is :json_allow_marshal (7.1+).
	SerializerJSONAllowMarshal Serializer = "json_allow_marshal"
	// SerializerMessagePack is :message_pack (7.1+): MessagePack and JSON;
	// Marshal is refused.
	SerializerMessagePack Serializer = "message_pack"
	// SerializerMessagePackAllowMarshal is :message_pack_allow_marshal (7.1+).
	SerializerMessagePackAllowMarshal Serializer = "message_pack_allow_marshal"
)

// ParseSerializer accepts a cookies_serializer name, with or without the
// leading colon of a Ruby symbol. The empty string is SerializerMarshal,
// Rails' nil.
func ParseSerializer(s string) (Serializer, error) {
	n := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), ":")
	switch sz := Serializer(n); sz {
	case "", "nil":
		return SerializerMarshal, nil
	case SerializerMarshal, SerializerJSON, SerializerHybrid, SerializerJSONAllowMarshal,
		SerializerMessagePack, SerializerMessagePackAllowMarshal:
		return sz, nil
	}
	return "", fmt.Errorf("auth: unknown cookies_serializer %q", s)
}

// Jar names a Rails cookie jar.
type Jar string

// The jars. The CookieStore session is the encrypted jar under the session
// key (actionpack/lib/action_dispatch/middleware/session/cookie_store.rb,
// cookie_jar.signed_or_encrypted, which is encrypted whenever
// secret_key_base is set).
const (
	JarEncrypted Jar = "encrypted" // cookies.encrypted[name]
	JarSigned    Jar = "signed"    // cookies.signed[name]
)

// Rotation is one entry of config.action_dispatch.cookies_rotations, that is
// one `cookies.rotate :encrypted, secret, sign_secret, **options` or
// `cookies.rotate :signed, secret, **options` line of an initializer. A Go
// program cannot run that initializer, so the keys are given as bytes: use
// DeriveKey to compute them from an old secret_key_base, as the 7.0
// upgrade guide's cookie_rotator.rb does.
//
// Options that are not given are inherited from the primary encryptor or
// verifier, as Rails does (activesupport/lib/active_support/messages/rotator.rb,
// build_rotation).
type Rotation struct {
	// Secret is the raw key: 32 bytes for aes-256-gcm and aes-256-cbc, any
	// length (usually 64) for a signed rotation. Required.
	Secret []byte

	// SignSecret is the HMAC key of a CBC rotation (MessageEncryptor's
	// second argument). nil inherits the primary's sign secret when the
	// primary is CBC (use_authenticated_cookie_encryption = false);
	// otherwise Secret itself signs, as MessageEncryptor does when it has
	// no sign_secret (activesupport/lib/active_support/message_encryptor.rb).
	// Ignored for GCM and for signed rotations.
	SignSecret []byte

	// Cipher is the rotation's cipher (encrypted rotations only): "" means
	// the primary's cipher.
	Cipher string

	// Digest is the HMAC digest: for a signed rotation "" means the
	// signed_cookie_digest; for a CBC rotation "" means SHA1, because the
	// jar's encryptors are built without a digest option.
	Digest Digest
}

// Config says how a Rails application reads its cookies, in the terms of
// its configuration (config.action_dispatch.* and friends, copied into the
// request env by Rails::Application#env_config,
// railties/lib/rails/application.rb).
//
// The zero value plus a SecretKeyBase is a useful, permissive
// configuration: keys derived with both SHA256 and SHA1, AES-256-GCM with
// the built-in AES-256-CBC fallback (so both ciphers are read), the
// default salts, the :marshal serializer of the newest Rails (which reads
// JSON, Marshal and MessagePack payloads), and Rails 8.1 reading rules.
// Use LoadDefaults for the exact settings of a config.load_defaults
// version.
//
// use_cookies_with_metadata (NoCookieMetadata) changes only what Rails
// writes: every Rails from 6.0 reads cookies with and without metadata
// alike (AbstractCookieJar#[] retries without a purpose).
type Config struct {
	// SecretKeyBase is Rails.application.secret_key_base, used verbatim
	// (it is not hex-decoded). Required.
	SecretKeyBase string

	// RailsVersion is the Rails release (the gem, not load_defaults) whose
	// reading rules apply, "5.2" to "8.1". It decides what the
	// serializers fall back to, whether a CBC app reads GCM cookies (6.1+)
	// and whether purpose metadata is understood (6.0+). "" means the
	// newest rules, which accept a superset of every older release.
	RailsVersion string

	// KeyDigests are the PBKDF2 digests of the key generator
	// (config.active_support.key_generator_hash_digest_class: SHA1 before
	// load_defaults 7.0, SHA256 after), tried in order. nil means SHA256
	// then SHA1, which reads apps on either side of the 7.0 switch.
	KeyDigests []Digest

	// Iterations is the PBKDF2 iteration count; 0 means DefaultIterations.
	Iterations int

	// LegacyEncryption is the negation of
	// use_authenticated_cookie_encryption: true means the primary cipher
	// is AES-256-CBC with an HMAC-SHA1 (load_defaults < 5.2). false, the
	// zero value, means Cipher (AES-256-GCM).
	LegacyEncryption bool

	// Cipher is encrypted_cookie_cipher; "" means "aes-256-gcm". Ignored
	// when LegacyEncryption is set (Rails then always uses aes-256-cbc) but
	// used by its 6.1+ GCM fallback. Supported: aes-{128,192,256}-{gcm,cbc}.
	Cipher string

	// SignedDigest is signed_cookie_digest, the HMAC of cookies.signed;
	// "" means SHA1.
	SignedDigest Digest

	// CookiesDigest is cookies_digest, the HMAC of the legacy CBC fallback
	// of a GCM app; "" means SHA1.
	CookiesDigest Digest

	// NoCipherFallback disables Rails' built-in fallback between ciphers
	// (a GCM app reading CBC cookies, a 6.1+ CBC app reading GCM ones).
	// Rails skips it only when the other cipher's salts are blank
	// (cookies.rb, upgrade_legacy_hmac_aes_cbc_cookies? and
	// prepare_upgrade_legacy_hmac_aes_cbc_cookies?).
	NoCipherFallback bool

	// The four salts; "" means the Rails default shown
	// (actionpack/lib/action_dispatch/railtie.rb).
	SignedCookieSalt                 string // "signed cookie"
	EncryptedCookieSalt              string // "encrypted cookie"
	EncryptedSignedCookieSalt        string // "signed encrypted cookie"
	AuthenticatedEncryptedCookieSalt string // "authenticated encrypted cookie"

	// Serializer is cookies_serializer; "" means SerializerMarshal, Rails'
	// nil.
	Serializer Serializer

	// EncryptedRotations and SignedRotations are
	// cookies_rotations.encrypted and cookies_rotations.signed, tried in
	// order after the primary key and before the built-in cipher fallback.
	EncryptedRotations []Rotation
	SignedRotations    []Rotation

	// SessionKey is the cookie name of the CookieStore session
	// (config.session_store :cookie_store, key: "_myapp_session"; the
	// Rails default is "_<app_name>_session"). Needed only by Session.
	SessionKey string

	// NoCookieMetadata is the negation of use_cookies_with_metadata
	// (false, the zero value, from load_defaults 6.0): values written by
	// EncryptedValue and SignedValue then carry no purpose
	// (actionpack/lib/action_dispatch/middleware/cookies.rb,
	// cookie_metadata). Rails 5.2 never writes one. Reading ignores it.
	NoCookieMetadata bool

	// Now returns the current time for expiry checks; nil means time.Now.
	Now func() time.Time
}

// Default salts (actionpack/lib/action_dispatch/railtie.rb).
const (
	defaultSignedCookieSalt                 = "signed cookie"
	defaultEncryptedCookieSalt              = "encrypted cookie"
	defaultEncryptedSignedCookieSalt        = "signed encrypted cookie"
	defaultAuthenticatedEncryptedCookieSalt = "authenticated encrypted cookie"
)

// LoadDefaults returns the cookie configuration that
// config.load_defaults(version) gives, for version "5.0" to "8.1"
// (railties/lib/rails/application/configuration.rb):
//
//   - below 5.2: use_authenticated_cookie_encryption is false (LegacyEncryption);
//   - below 6.0: use_cookies_with_metadata is false (NoCookieMetadata);
//   - 5.2 and later: AES-256-GCM;
//   - below 7.0: key digest SHA1, cookies_serializer nil (SerializerMarshal);
//   - 7.0 and later: key digest SHA256, cookies_serializer :json.
//
// 7.1's message serializer settings do not change cookies. Apps generated
// by Rails 4.1 to 6.1 also have config/initializers/cookies_serializer.rb
// setting :json; set Serializer to match it. RailsVersion is left "" (the newest rules) and
// SecretKeyBase empty.
func LoadDefaults(version string) (Config, error) {
	v, err := parseVersion(version)
	if err != nil {
		return Config{}, err
	}
	if v < 500 {
		return Config{}, fmt.Errorf("auth: load_defaults %q: versions before 5.0 are not supported", version)
	}
	var c Config
	c.LegacyEncryption = v < 502
	c.NoCookieMetadata = v < 600
	if v < 700 {
		c.KeyDigests = []Digest{SHA1}
		c.Serializer = SerializerMarshal
	} else {
		c.KeyDigests = []Digest{SHA256}
		c.Serializer = SerializerJSON
	}
	return c, nil
}

// knownVersions are the Rails releases whose cookie rules this package
// knows (see the version matrix in doc.go).
var knownVersions = map[int]bool{
	500: true, 501: true, 502: true, 600: true, 601: true,
	700: true, 701: true, 702: true, 800: true, 801: true,
}

// parseVersion turns "7.2" (or "7.2.3.2") into 702. It accepts only the
// releases in knownVersions: a newer Rails may change the rules.
func parseVersion(s string) (int, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return 0, fmt.Errorf("auth: Rails version %q: want MAJOR.MINOR, e.g. 7.2", s)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major < 0 || minor < 0 || minor > 99 {
		return 0, fmt.Errorf("auth: Rails version %q: want MAJOR.MINOR, e.g. 7.2", s)
	}
	v := major*100 + minor
	if !knownVersions[v] {
		return 0, fmt.Errorf("auth: Rails version %q is not one of 5.0, 5.1, 5.2, 6.0, 6.1, 7.0, 7.1, 7.2, 8.0, 8.1", s)
	}
	return v, nil
}
