package runner

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gocable/gocable/auth"
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
		"an identified_by identifier, repeatable: NAME=SOURCE[@Model|@to_s] where SOURCE is encrypted:COOKIE, signed:COOKIE, session:KEY, session:warden:SCOPE (Devise), token:PARAM or gocookie:COOKIE (-token-hash-key values), optionally followed by :KEY to dig into a hash; e.g. current_user=session:warden:user (env GOCABLE_IDENTIFY, separated by spaces or ;); none: connections are anonymous")
	fs.StringVar(&c.gidApp, "gid-app", authEnv("GOCABLE_GID_APP", ""),
		"GlobalID app name: with a model, identifiers render as gid://APP/Model/ID the way Rails renders a record (env GOCABLE_GID_APP)")
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

// identifier is one parsed -identify entry.
type identifier struct {
	name   string   // identified_by name, e.g. current_user
	source string   // encrypted, signed, session, warden, token, gocookie
	arg    string   // cookie name, session key, Warden scope or parameter
	path   []string // keys to dig into the value
	model  string   // GlobalID model; "" renders with to_s
	app    string   // GlobalID app
	spec   string   // as given, for logs
}

func (c *authConfig) identifiers() ([]identifier, error) {
	var ids []identifier
	seen := map[string]bool{}
	for _, spec := range c.identify.values() {
		name, src, ok := strings.Cut(spec, "=")
		if !ok || name == "" || src == "" {
			return nil, fmt.Errorf("-identify %q: want NAME=SOURCE, e.g. current_user=encrypted:user_id", spec)
		}
		if seen[name] {
			return nil, fmt.Errorf("-identify: %s given twice", name)
		}
		seen[name] = true
		id := identifier{name: name, spec: spec, model: c.gidModel, app: c.gidApp}
		if src, model, ok := cutLast(src, "@"); ok {
			id.model = model
			if model == "to_s" {
				id.model = ""
			}
			spec = src
		} else {
			spec = src
		}
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || parts[1] == "" {
			return nil, fmt.Errorf("-identify %q: want SOURCE:NAME, e.g. encrypted:user_id", id.spec)
		}
		id.source, id.arg, id.path = parts[0], parts[1], parts[2:]
		switch id.source {
		case "encrypted", "signed", "token", "gocookie":
		case "session":
			if id.arg == "warden" {
				if len(parts) != 3 || parts[2] == "" {
					return nil, fmt.Errorf("-identify %q: want session:warden:SCOPE, e.g. session:warden:user", id.spec)
				}
				id.source, id.arg, id.path = "warden", parts[2], nil
			}
		default:
			return nil, fmt.Errorf("-identify %q: unknown source %q (want encrypted, signed, session, token or gocookie)", id.spec, id.source)
		}
		for _, p := range id.path {
			if p == "" {
				return nil, fmt.Errorf("-identify %q: empty key", id.spec)
			}
		}
		if id.model != "" && c.gidApp == "" {
			return nil, fmt.Errorf("-identify %q: a GlobalID model needs -gid-app", id.spec)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// resolver reads the identifiers of a request.
type resolver struct {
	rails  *auth.RailsCookies
	tokens *auth.GoCookies
	cfg    *authConfig
	now    func() time.Time
}

// authenticator builds the connection authenticator; nil, nil when no cookie identification is configured.
func (c *authConfig) authenticator(logger *slog.Logger) (cable.Authenticator, error) {
	ids, err := c.identifiers()
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		if secret(c.secretKeyBase, "SECRET_KEY_BASE") != "" {
			logger.Info("auth: a secret_key_base is set but no -identify: connections are not identified")
		}
		return nil, nil
	}
	res, err := c.resolver(ids)
	if err != nil {
		return nil, err
	}
	return cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
		identity, id, err := res.identify(r, ids)
		if err != nil {
			attrs := []any{"identifier", id.name, "source", id.spec, "remote", r.RemoteAddr, "err", err}
			var de *auth.DecodeError
			if errors.As(err, &de) {
				attrs = append(attrs, "reason", string(de.Reason))
			}
			logger.DebugContext(ctx, "auth: connection not identified", attrs...)
			return nil, fmt.Errorf("%w: %s: %w", cable.ErrUnauthorized, id.name, err)
		}
		return identity, nil
	}), nil
}

// resolver builds the readers the identifiers need.
func (c *authConfig) resolver(ids []identifier) (*resolver, error) {
	res := &resolver{cfg: c, now: time.Now}
	for _, id := range ids {
		switch id.source {
		case "token", "gocookie":
			if res.tokens != nil {
				continue
			}
			hk := secret(c.tokenHashKey, "GOCABLE_TOKEN_HASH_KEY")
			if hk == "" {
				return nil, fmt.Errorf("-identify %q needs -token-hash-key", id.spec)
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
			if res.tokens, err = auth.NewGoCookies(hash, block, c.tokenMaxAge); err != nil {
				return nil, err
			}
		default:
			if res.rails != nil {
				continue
			}
			cfg, err := c.railsConfig()
			if err != nil {
				return nil, err
			}
			if cfg.SecretKeyBase == "" {
				return nil, fmt.Errorf("-identify %q needs -secret-key-base or SECRET_KEY_BASE", id.spec)
			}
			if res.rails, err = auth.NewRailsCookies(cfg); err != nil {
				return nil, err
			}
		}
	}
	for _, id := range ids {
		if (id.source == "session" || id.source == "warden") && c.sessionKey == "" {
			return nil, fmt.Errorf("-identify %q needs -session-key", id.spec)
		}
	}
	return res, nil
}

// identify computes the Identity of r; on failure it also returns the
// identifier that failed.
func (res *resolver) identify(r *http.Request, ids []identifier) (cable.Identity, identifier, error) {
	var session map[string]any
	var sessionErr error
	sessionRead := false
	getSession := func() (map[string]any, error) {
		if !sessionRead {
			sessionRead = true
			session, sessionErr = res.rails.Session(r)
		}
		return session, sessionErr
	}
	identity := cable.Identity{}
	for _, id := range ids {
		var v any
		var err error
		switch id.source {
		case "encrypted":
			err = res.rails.Encrypted(r, id.arg, &v)
		case "signed":
			err = res.rails.Signed(r, id.arg, &v)
		case "session":
			var s map[string]any
			if s, err = getSession(); err == nil {
				var ok bool
				if v, ok = s[id.arg]; !ok || v == nil {
					err = &auth.DecodeError{Jar: "session entry", Name: id.arg, Reason: auth.ReasonNoUser}
				}
			}
		case "warden":
			var s map[string]any
			if s, err = getSession(); err == nil {
				var w auth.Warden
				if w, err = auth.WardenUser(s, id.arg); err == nil {
					if t := res.cfg.wardenTimeout; t > 0 && !w.LastRequestAt.IsZero() && !res.now().Before(w.LastRequestAt.Add(t)) {
						err = &auth.DecodeError{Jar: "session entry", Name: "warden.user." + id.arg + ".session", Reason: auth.ReasonExpired,
							Detail: "Devise timeout: last request at " + w.LastRequestAt.UTC().Format(time.RFC3339)}
					}
					v = w.ID
					if len(w.IDParts) > 1 {
						v = compositeID(w.IDParts)
					}
				}
			}
		case "token":
			err = res.tokens.Query(r, id.arg, &v)
		case "gocookie":
			err = res.tokens.Cookie(r, id.arg, &v)
		}
		if err != nil {
			return nil, id, err
		}
		s, err := render(v, id)
		if err != nil {
			return nil, id, err
		}
		identity[id.name] = s
	}
	return identity, identifier{}, nil
}

// compositeID is the to_key of a record with a composite primary key, each
// part rendered with to_s.
type compositeID []string

// render digs id.path out of v and renders it as Rails renders an
// identifier: to_gid_param for a model, to_s otherwise
// (actioncable/lib/action_cable/connection/identification.rb).
func render(v any, id identifier) (string, error) {
	fail := func(detail string) error {
		return &auth.DecodeError{Jar: "identifier", Name: id.name, Reason: auth.ReasonDeserializeFailed, Detail: detail}
	}
	for _, k := range id.path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return "", fail(fmt.Sprintf("no element %q in an array of %d", k, len(x)))
			}
			v = x[i]
		default:
			return "", fail(fmt.Sprintf("cannot take %q of a %T", k, v))
		}
	}
	switch v := v.(type) {
	case compositeID:
		// A composite primary key (Rails 7.1+): GlobalID escapes each part
		// (rails/globalid lib/global_id/uri/gid.rb, URI::GID.build).
		if id.model != "" {
			return cable.GlobalIDParam(id.app, id.model, v...), nil
		}
		return strings.Join(v, "/"), nil
	case string, int64, *big.Int:
	case nil:
	case map[string]any, []any:
		return "", fail(fmt.Sprintf("value is a %T, not an id; dig into it with :KEY", v))
	default:
		return "", fail(fmt.Sprintf("value is a %T, not an id", v))
	}
	s, _ := auth.RubyToS(v)
	if s == "" {
		return "", &auth.DecodeError{Jar: "identifier", Name: id.name, Reason: auth.ReasonNoUser, Detail: "empty value"}
	}
	if id.model != "" {
		return cable.GlobalIDParam(id.app, id.model, s), nil
	}
	return s, nil
}

// configured tells whether -identify (or GOCABLE_IDENTIFY) names any
// identifier.
func (c *authConfig) configured() bool { return len(c.identify.values()) > 0 }
