package runner

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gocable/gocable/auth"
	"github.com/gocable/gocable/auth/identify"
	"github.com/gocable/gocable/cable"
)

// authConfig holds the flags that say how a connection is identified from Rails cookies.
//
// Every flag has an environment default. Secrets (the secret_key_base,
// token keys, rotation specs) are read from the environment only when the
// flag is not given, never as a flag default, so that -h cannot print them.
type authConfig struct {
	secretKeyBase string
	loadDefaults  string
	railsVersion  string
	keyDigest     string
	authEncrypt   string // "", "true" or "false"
	cipher        string
	serializer    string
	signedDigest  string
	cookiesDigest string
	iterations    int
	noFallback    bool
	signedSalt    string
	encSalt       string
	encSignedSalt string
	authEncSalt   string
	rotEncrypted  listFlag
	rotSigned     listFlag
	sessionKey    string

	identify      listFlag
	gidApp        string
	gidModel      string
	wardenTimeout time.Duration

	tokenHashKey  string
	tokenBlockKey string
	tokenMaxAge   time.Duration
}

// listFlag is a repeatable flag whose default comes from an environment
// variable (entries separated by sep), read when the flag is not given.
type listFlag struct {
	env  string
	sep  string
	vals []string
	set  bool
}

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.vals, l.sep)
}

func (l *listFlag) Set(s string) error {
	l.set = true
	l.vals = append(l.vals, s)
	return nil
}

// values returns the flag's entries, or the environment's when the flag
// was not given.
func (l *listFlag) values() []string {
	if l.set {
		return l.vals
	}
	var out []string
	for _, v := range strings.FieldsFunc(os.Getenv(l.env), func(r rune) bool {
		return strings.ContainsRune(l.sep, r) || r == '\n'
	}) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func authEnv(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func authEnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func authEnvBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}

func authEnvDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

// secret returns a flag value, or the environment variable when the flag
// is empty.
func secret(flagValue, env string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv(env)
}

// register registers the auth flags on fs; defaults come from the environment.
func (c *authConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.secretKeyBase, "secret-key-base", "",
		"the Rails app's secret_key_base (env SECRET_KEY_BASE; prefer the environment, flags show in ps)")
	fs.StringVar(&c.loadDefaults, "load-defaults", authEnv("RAILS_LOAD_DEFAULTS", ""),
		"the app's config.load_defaults, 5.0 to 8.1: sets the cookie defaults below (env RAILS_LOAD_DEFAULTS); unset: read every cipher, key digest and serializer")
	fs.StringVar(&c.railsVersion, "rails-version", authEnv("RAILS_VERSION", ""),
		"the Rails release of the app, 5.2 to 8.1, whose reading rules apply (env RAILS_VERSION); unset: the newest rules, which accept what every older release does")
	fs.StringVar(&c.keyDigest, "key-digest", authEnv("RAILS_KEY_DIGEST", ""),
		"key_generator_hash_digest_class: sha1, sha256 or both (env RAILS_KEY_DIGEST); default from -load-defaults, else both")
	fs.StringVar(&c.authEncrypt, "authenticated-encryption", authEnv("RAILS_USE_AUTHENTICATED_COOKIE_ENCRYPTION", ""),
		"use_authenticated_cookie_encryption: true (AES-256-GCM) or false (AES-256-CBC+HMAC) (env RAILS_USE_AUTHENTICATED_COOKIE_ENCRYPTION); default from -load-defaults, else true")
	fs.StringVar(&c.cipher, "cookie-cipher", authEnv("RAILS_ENCRYPTED_COOKIE_CIPHER", ""),
		"encrypted_cookie_cipher (env RAILS_ENCRYPTED_COOKIE_CIPHER); default aes-256-gcm")
	fs.StringVar(&c.serializer, "cookies-serializer", authEnv("RAILS_COOKIES_SERIALIZER", ""),
		"cookies_serializer: json, marshal, hybrid, json_allow_marshal, message_pack or message_pack_allow_marshal (env RAILS_COOKIES_SERIALIZER); default from -load-defaults, else marshal, which reads all of them")
	fs.StringVar(&c.signedDigest, "signed-cookie-digest", authEnv("RAILS_SIGNED_COOKIE_DIGEST", ""),
		"signed_cookie_digest (env RAILS_SIGNED_COOKIE_DIGEST); default SHA1")
	fs.StringVar(&c.cookiesDigest, "cookies-digest", authEnv("RAILS_COOKIES_DIGEST", ""),
		"cookies_digest, the HMAC of legacy CBC cookies read by a GCM app (env RAILS_COOKIES_DIGEST); default SHA1")
	fs.IntVar(&c.iterations, "key-iterations", authEnvInt("RAILS_KEY_ITERATIONS", auth.DefaultIterations),
		"PBKDF2 iterations of the key generator (env RAILS_KEY_ITERATIONS)")
	fs.BoolVar(&c.noFallback, "no-cipher-fallback", authEnvBool("RAILS_NO_CIPHER_FALLBACK"),
		"do not read cookies of the other cipher (GCM/CBC); Rails does only when their salts are blank (env RAILS_NO_CIPHER_FALLBACK)")
	fs.StringVar(&c.signedSalt, "signed-cookie-salt", authEnv("RAILS_SIGNED_COOKIE_SALT", ""),
		`signed_cookie_salt (env RAILS_SIGNED_COOKIE_SALT); default "signed cookie"`)
	fs.StringVar(&c.encSalt, "encrypted-cookie-salt", authEnv("RAILS_ENCRYPTED_COOKIE_SALT", ""),
		`encrypted_cookie_salt (env RAILS_ENCRYPTED_COOKIE_SALT); default "encrypted cookie"`)
	fs.StringVar(&c.encSignedSalt, "encrypted-signed-cookie-salt", authEnv("RAILS_ENCRYPTED_SIGNED_COOKIE_SALT", ""),
		`encrypted_signed_cookie_salt (env RAILS_ENCRYPTED_SIGNED_COOKIE_SALT); default "signed encrypted cookie"`)
	fs.StringVar(&c.authEncSalt, "authenticated-encrypted-cookie-salt", authEnv("RAILS_AUTHENTICATED_ENCRYPTED_COOKIE_SALT", ""),
		`authenticated_encrypted_cookie_salt (env RAILS_AUTHENTICATED_ENCRYPTED_COOKIE_SALT); default "authenticated encrypted cookie"`)
	c.rotEncrypted = listFlag{env: "RAILS_COOKIES_ROTATE_ENCRYPTED", sep: ";"}
	fs.Var(&c.rotEncrypted, "rotate-encrypted",
		"a cookies_rotations.encrypted entry, repeatable: comma-separated key=HEX[,sign_key=HEX] or secret_key_base=...|secret_key_base_env=NAME[,key_digest=sha1][,salt=...][,sign_salt=...], plus [cipher=aes-256-cbc][,digest=sha256] (env RAILS_COOKIES_ROTATE_ENCRYPTED, entries separated by ;)")
	c.rotSigned = listFlag{env: "RAILS_COOKIES_ROTATE_SIGNED", sep: ";"}
	fs.Var(&c.rotSigned, "rotate-signed",
		"a cookies_rotations.signed entry, repeatable, as -rotate-encrypted (env RAILS_COOKIES_ROTATE_SIGNED)")
	fs.StringVar(&c.sessionKey, "session-key", authEnv("RAILS_SESSION_KEY", ""),
		"cookie name of the Rails session, e.g. _myapp_session (env RAILS_SESSION_KEY)")

	c.identify = listFlag{env: "GOCABLE_IDENTIFY", sep: "; \t"}
	fs.Var(&c.identify, "identify",
		"an identified_by identifier, repeatable (the same NAME again adds a source tried when the earlier ones give nothing, as Ruby's || does): NAME=SOURCE[@Model|@to_s] where SOURCE is encrypted:COOKIE, signed:COOKIE, session:KEY, session:warden:SCOPE (Devise), token:PARAM or gocookie:COOKIE (-token-hash-key values), optionally followed by :KEY to dig into a hash; e.g. current_user=session:warden:user (env GOCABLE_IDENTIFY, separated by spaces or ;); none: connections are anonymous")
	fs.StringVar(&c.gidApp, "gid-app", authEnv("GOCABLE_GID_APP", ""),
		"GlobalID app name: with a model, identifiers render as gid://APP/Model/ID the way Rails renders a record; it must equal the app's GlobalID.app, derived from its module name (MyApp: my-app), as printed by bin/rails runner 'p GlobalID.app' (env GOCABLE_GID_APP)")
	fs.StringVar(&c.gidModel, "gid-model", authEnv("GOCABLE_GID_MODEL", ""),
		"GlobalID model of identifiers without @Model, e.g. User (env GOCABLE_GID_MODEL); unset: the value's to_s")
	fs.DurationVar(&c.wardenTimeout, "warden-timeout", authEnvDuration("GOCABLE_WARDEN_TIMEOUT"),
		"Devise timeoutable timeout_in: refuse a session:warden user idle longer (env GOCABLE_WARDEN_TIMEOUT); 0: no check")
	fs.StringVar(&c.tokenHashKey, "token-hash-key", "",
		"gorilla/securecookie hash key, hex or base64:..., for token: and gocookie: identifiers (env GOCABLE_TOKEN_HASH_KEY)")
	fs.StringVar(&c.tokenBlockKey, "token-block-key", "",
		"gorilla/securecookie block (AES) key, hex or base64:..., if the values are encrypted (env GOCABLE_TOKEN_BLOCK_KEY)")
	fs.DurationVar(&c.tokenMaxAge, "token-max-age", authEnvDuration("GOCABLE_TOKEN_MAX_AGE"),
		"oldest token: or gocookie: value accepted (env GOCABLE_TOKEN_MAX_AGE); 0: 720h")
}

// railsConfig builds the auth.Config the flags describe.
func (c *authConfig) railsConfig() (auth.Config, error) {
	var cfg auth.Config
	if c.loadDefaults != "" {
		var err error
		if cfg, err = auth.LoadDefaults(c.loadDefaults); err != nil {
			return cfg, err
		}
	}
	cfg.SecretKeyBase = secret(c.secretKeyBase, "SECRET_KEY_BASE")
	cfg.RailsVersion = c.railsVersion
	cfg.Iterations = c.iterations
	cfg.SessionKey = c.sessionKey
	cfg.NoCipherFallback = c.noFallback
	cfg.SignedCookieSalt = c.signedSalt
	cfg.EncryptedCookieSalt = c.encSalt
	cfg.EncryptedSignedCookieSalt = c.encSignedSalt
	cfg.AuthenticatedEncryptedCookieSalt = c.authEncSalt
	cfg.Cipher = c.cipher
	if c.keyDigest != "" {
		ds, err := parseDigests(c.keyDigest)
		if err != nil {
			return cfg, fmt.Errorf("-key-digest: %w", err)
		}
		cfg.KeyDigests = ds
	}
	if c.authEncrypt != "" {
		b, err := strconv.ParseBool(c.authEncrypt)
		if err != nil {
			return cfg, fmt.Errorf("-authenticated-encryption %q: want true or false", c.authEncrypt)
		}
		cfg.LegacyEncryption = !b
	}
	if c.serializer != "" {
		sz, err := auth.ParseSerializer(c.serializer)
		if err != nil {
			return cfg, err
		}
		cfg.Serializer = sz
	}
	for _, p := range []struct {
		dst  *auth.Digest
		flag string
		val  string
	}{{&cfg.SignedDigest, "signed-cookie-digest", c.signedDigest}, {&cfg.CookiesDigest, "cookies-digest", c.cookiesDigest}} {
		if p.val == "" {
			continue
		}
		d, err := auth.ParseDigest(p.val)
		if err != nil {
			return cfg, fmt.Errorf("-%s: %w", p.flag, err)
		}
		*p.dst = d
	}
	saltOr := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	def := rotationDefaults{
		digests:     cfg.KeyDigests,
		iterations:  c.iterations,
		salt:        saltOr(c.authEncSalt, "authenticated encrypted cookie"),
		cbcSalt:     saltOr(c.encSalt, "encrypted cookie"),
		cbcSignSalt: saltOr(c.encSignedSalt, "signed encrypted cookie"),
	}
	for i, spec := range c.rotEncrypted.values() {
		rs, err := parseRotation(spec, false, def)
		if err != nil {
			return cfg, fmt.Errorf("-rotate-encrypted #%d: %w", i+1, err)
		}
		cfg.EncryptedRotations = append(cfg.EncryptedRotations, rs...)
	}
	def.salt = saltOr(c.signedSalt, "signed cookie")
	for i, spec := range c.rotSigned.values() {
		rs, err := parseRotation(spec, true, def)
		if err != nil {
			return cfg, fmt.Errorf("-rotate-signed #%d: %w", i+1, err)
		}
		cfg.SignedRotations = append(cfg.SignedRotations, rs...)
	}
	return cfg, nil
}

// parseDigests reads "sha1", "sha256", "both" or a comma-separated list.
func parseDigests(s string) ([]auth.Digest, error) {
	if strings.EqualFold(strings.TrimSpace(s), "both") {
		return []auth.Digest{auth.SHA256, auth.SHA1}, nil
	}
	var ds []auth.Digest
	for _, p := range strings.Split(s, ",") {
		d, err := auth.ParseDigest(p)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// rotationDefaults are what a rotation spec inherits from the app.
type rotationDefaults struct {
	digests     []auth.Digest // the app's key digests
	iterations  int
	salt        string // the jar's salt (GCM or signed)
	cbcSalt     string // encrypted_cookie_salt
	cbcSignSalt string // encrypted_signed_cookie_salt
}

// parseRotation reads a rotation spec such as
// "secret_key_base_env=OLD_SECRET_KEY_BASE,key_digest=sha1" or
// "key=<hex>,cipher=aes-256-cbc". A secret_key_base is fed through the key
// generator, as the 7.0 upgrade guide's cookie_rotator.rb does, with
// key_digest (default: each of the app's key digests, one rotation each),
// and the salt and length of the cipher, or of the signed jar.
func parseRotation(spec string, signed bool, def rotationDefaults) ([]auth.Rotation, error) {
	kv := map[string]string{}
	for _, part := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", part)
		}
		switch k {
		case "key", "sign_key", "secret_key_base", "secret_key_base_env", "key_digest", "salt", "sign_salt", "cipher", "digest", "length", "iterations":
		default:
			return nil, fmt.Errorf("unknown key %q", k)
		}
		kv[k] = v
	}
	var base auth.Rotation
	if d, ok := kv["digest"]; ok {
		dd, err := auth.ParseDigest(d)
		if err != nil {
			return nil, err
		}
		base.Digest = dd
	}
	base.Cipher = kv["cipher"]
	if signed && base.Cipher != "" {
		return nil, errors.New("a signed rotation has no cipher")
	}
	var err error
	if h, ok := kv["key"]; ok {
		if base.Secret, err = decodeKey(h); err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		if h, ok := kv["sign_key"]; ok {
			if base.SignSecret, err = decodeKey(h); err != nil {
				return nil, fmt.Errorf("sign_key: %w", err)
			}
		}
		return []auth.Rotation{base}, nil
	}
	skb := kv["secret_key_base"]
	if env, ok := kv["secret_key_base_env"]; ok {
		if skb = os.Getenv(env); skb == "" {
			return nil, fmt.Errorf("environment variable %s is empty", env)
		}
	}
	if skb == "" {
		return nil, errors.New("want key=HEX, secret_key_base=... or secret_key_base_env=NAME")
	}
	digests := def.digests
	if len(digests) == 0 {
		digests = []auth.Digest{auth.SHA256, auth.SHA1}
	}
	if d, ok := kv["key_digest"]; ok {
		if digests, err = parseDigests(d); err != nil {
			return nil, err
		}
	}
	iterations := def.iterations
	if n, ok := kv["iterations"]; ok {
		if iterations, err = strconv.Atoi(n); err != nil {
			return nil, fmt.Errorf("iterations %q", n)
		}
	}
	cipher := strings.ToLower(base.Cipher)
	cbc := strings.Contains(cipher, "cbc")
	length := 32
	switch {
	case signed:
		length = 64
	case strings.Contains(cipher, "128"):
		length = 16
	case strings.Contains(cipher, "192"):
		length = 24
	}
	salt := def.salt
	if cbc {
		salt = def.cbcSalt
	}
	if s, ok := kv["salt"]; ok {
		salt = s
	}
	if n, ok := kv["length"]; ok {
		if length, err = strconv.Atoi(n); err != nil {
			return nil, fmt.Errorf("length %q", n)
		}
	}
	signSalt := def.cbcSignSalt
	if s, ok := kv["sign_salt"]; ok {
		signSalt = s
	}
	var out []auth.Rotation
	for _, d := range digests {
		r := base
		if r.Secret, err = auth.DeriveKey(skb, d, iterations, salt, length); err != nil {
			return nil, err
		}
		if cbc && !signed {
			if r.SignSecret, err = auth.DeriveKey(skb, d, iterations, signSalt, 64); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// decodeKey reads a key given as hex, or as "base64:..." (standard or URL
// alphabet).
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b64, ok := strings.CutPrefix(s, "base64:"); ok {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(b64); err == nil {
				return b, nil
			}
		}
		return nil, errors.New("bad base64")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("want hex, or base64 after \"base64:\"")
	}
	return b, nil
}

// rules parses the -identify entries (identify.ParseRule). Several
// entries may name the same identifier: they are tried in the order given.
func (c *authConfig) rules() ([]identify.Rule, error) {
	var rules []identify.Rule
	for _, spec := range c.identify.values() {
		r, err := identify.ParseRule(spec)
		if err != nil {
			return nil, fmt.Errorf("-identify: %w", err)
		}
		explicit := r.Model != "" && r.Model != identify.ToS
		if c.gidApp == "" && (explicit || r.Model == "" && c.gidModel != "" && c.gidModel != identify.ToS) {
			return nil, fmt.Errorf("-identify %q: a GlobalID model needs -gid-app", spec)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// authenticator builds the connection authenticator; nil, nil when no
// cookie identification is configured.
func (c *authConfig) authenticator(logger *slog.Logger) (cable.Authenticator, error) {
	a, err := c.identifier(logger)
	if a == nil || err != nil {
		return nil, err
	}
	return a, nil
}

// identifier builds the -identify rules' authenticator with the readers
// they need; nil, nil when there are no rules.
func (c *authConfig) identifier(logger *slog.Logger) (*identify.Authenticator, error) {
	rules, err := c.rules()
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		if secret(c.secretKeyBase, "SECRET_KEY_BASE") != "" {
			logger.Info("auth: a secret_key_base is set but no -identify: connections are not identified")
		}
		return nil, nil
	}
	cfg := identify.Config{
		SessionKey:    c.sessionKey,
		GlobalIDApp:   c.gidApp,
		DefaultModel:  c.gidModel,
		WardenTimeout: c.wardenTimeout,
		Logger:        logger,
	}
	for _, r := range rules {
		switch r.Source {
		case identify.Token, identify.GoCookie:
			if cfg.Tokens != nil {
				continue
			}
			hk := secret(c.tokenHashKey, "GOCABLE_TOKEN_HASH_KEY")
			if hk == "" {
				return nil, fmt.Errorf("-identify %q needs -token-hash-key", r)
			}
			hash, err := decodeKey(hk)
			if err != nil {
				return nil, fmt.Errorf("-token-hash-key: %w", err)
			}
			var block []byte
			if bk := secret(c.tokenBlockKey, "GOCABLE_TOKEN_BLOCK_KEY"); bk != "" {
				if block, err = decodeKey(bk); err != nil {
					return nil, fmt.Errorf("-token-block-key: %w", err)
				}
			}
			if cfg.Tokens, err = auth.NewGoCookies(hash, block, c.tokenMaxAge); err != nil {
				return nil, err
			}
		default:
			if cfg.Cookies != nil {
				continue
			}
			rc, err := c.railsConfig()
			if err != nil {
				return nil, err
			}
			if rc.SecretKeyBase == "" {
				return nil, fmt.Errorf("-identify %q needs -secret-key-base or SECRET_KEY_BASE", r)
			}
			if cfg.Cookies, err = auth.NewRailsCookies(rc); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range rules {
		if (r.Source == identify.Session || r.Source == identify.Warden) && c.sessionKey == "" {
			return nil, fmt.Errorf("-identify %q needs -session-key", r)
		}
	}
	a, err := identify.New(cfg, rules...)
	if err != nil {
		return nil, err
	}
	// A wrong -gid-app gives identifiers Rails never computes, and remote
	// disconnects then miss without a word: say which app is used.
	if models := a.Models(); len(models) > 0 {
		logger.Info("auth: identifiers render as GlobalIDs gid://APP/MODEL/ID; -gid-app must equal the app's GlobalID.app (bin/rails runner 'p GlobalID.app')",
			"gid_app", c.gidApp, "models", models)
	}
	return a, nil
}

// configured tells whether -identify (or GOCABLE_IDENTIFY) names any
// identifier.
func (c *authConfig) configured() bool { return len(c.identify.values()) > 0 }
