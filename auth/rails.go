package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// RailsCookies reads the cookies of a Rails application: cookies.encrypted,
// cookies.signed and the CookieStore session, accepting exactly what the
// configured Rails would accept. All keys are derived by NewRailsCookies;
// a RailsCookies is immutable and safe for concurrent use.
type RailsCookies struct {
	version    int // 502 ... 801
	serializer Serializer
	encrypted  []*scheme // primary(s), rotations, built-in fallback
	signed     []*scheme
	sessionKey string
	now        func() time.Time

	// What the writer needs besides the primary schemes.
	legacyEncryption bool // 5.2 writes no expiry for a CBC app
	noMetadata       bool // use_cookies_with_metadata = false
}

// NewRailsCookies checks cfg and derives every key it needs, once.
func NewRailsCookies(cfg Config) (*RailsCookies, error) {
	if cfg.SecretKeyBase == "" {
		return nil, errors.New("auth: Config.SecretKeyBase is empty")
	}
	c := &RailsCookies{version: 801, sessionKey: cfg.SessionKey, now: cfg.Now,
		legacyEncryption: cfg.LegacyEncryption, noMetadata: cfg.NoCookieMetadata}
	if c.now == nil {
		c.now = time.Now
	}
	if cfg.RailsVersion != "" {
		v, err := parseVersion(cfg.RailsVersion)
		if err != nil {
			return nil, err
		}
		if v < 502 {
			return nil, fmt.Errorf("auth: RailsVersion %q: reading rules before 5.2 are not supported", cfg.RailsVersion)
		}
		c.version = v
	}
	sz, err := ParseSerializer(string(cfg.Serializer))
	if err != nil {
		return nil, err
	}
	switch sz {
	case SerializerJSONAllowMarshal, SerializerMessagePack, SerializerMessagePackAllowMarshal:
		if c.version < 701 {
			return nil, fmt.Errorf("auth: cookies_serializer %s needs Rails 7.1 or later", sz)
		}
	}
	c.serializer = sz

	digests := cfg.KeyDigests
	if len(digests) == 0 {
		digests = []Digest{SHA256, SHA1}
	}
	if c.version < 700 {
		// KeyGenerator could only use SHA1 before 7.0
		// (activesupport/lib/active_support/key_generator.rb, v6.1).
		for _, d := range digests {
			if d != SHA1 && cfg.KeyDigests != nil {
				return nil, fmt.Errorf("auth: key digest %s needs Rails 7.0 or later", d)
			}
		}
		digests = []Digest{SHA1}
	}
	salts := saltsOf(cfg)
	kg := keyGen{skb: cfg.SecretKeyBase, iter: cfg.Iterations, cache: map[string][]byte{}}

	if err := c.buildEncrypted(cfg, digests, salts, &kg); err != nil {
		return nil, err
	}
	if err := c.buildSigned(cfg, digests, salts, &kg); err != nil {
		return nil, err
	}
	return c, nil
}

// buildEncrypted mirrors EncryptedKeyRotatingCookieJar#initialize
// (actionpack/lib/action_dispatch/middleware/cookies.rb): the primary
// encryptor, then cookies_rotations.encrypted, then the built-in upgrade
// rotation between GCM and CBC.
func (c *RailsCookies) buildEncrypted(cfg Config, digests []Digest, salts saltSet, kg *keyGen) error {
	cipherName := cfg.Cipher
	if cipherName == "" {
		cipherName = "aes-256-gcm"
	}
	primaryCipher, err := parseCipher(cipherName)
	if err != nil {
		return err
	}
	cbc, _ := parseCipher("aes-256-cbc")
	cookiesDigest := cfg.CookiesDigest
	if cookiesDigest == "" {
		cookiesDigest = SHA1
	}

	// Primary. A GCM app: MessageEncryptor.new(secret, cipher:) with
	// secret = generate_key(authenticated_encrypted_cookie_salt, key_len).
	// A CBC app: MessageEncryptor.new(secret, sign_secret, cipher:
	// "aes-256-cbc"), whose verifier uses MessageVerifier's default SHA1.
	primarySign := map[Digest][]byte{}
	for _, d := range digests {
		var s *scheme
		if !cfg.LegacyEncryption {
			key, err := kg.key(d, salts.authenticated, primaryCipher.keyLen)
			if err != nil {
				return err
			}
			label := fmt.Sprintf("%s (%s key)", primaryCipher.name, d)
			if !primaryCipher.gcm {
				label = fmt.Sprintf("%s+HMAC-SHA1 (%s key)", primaryCipher.name, d)
			}
			s, err = newCipherScheme(label, primaryCipher, key, nil, SHA1)
			if err != nil {
				return err
			}
		} else {
			key, err := kg.key(d, salts.encrypted, cbc.keyLen)
			if err != nil {
				return err
			}
			sign, err := kg.key(d, salts.encryptedSigned, 64)
			if err != nil {
				return err
			}
			primarySign[d] = sign
			s, err = newCipherScheme(fmt.Sprintf("aes-256-cbc+HMAC-SHA1 (%s key)", d), cbc, key, sign, SHA1)
			if err != nil {
				return err
			}
		}
		c.encrypted = append(c.encrypted, s)
	}

	// cookies_rotations.encrypted: options not given are inherited
	// (activesupport/lib/active_support/messages/rotator.rb, build_rotation).
	for i, rot := range cfg.EncryptedRotations {
		rc := primaryCipher
		if cfg.LegacyEncryption {
			rc = cbc
		}
		if rot.Cipher != "" {
			if rc, err = parseCipher(rot.Cipher); err != nil {
				return err
			}
		}
		d := rot.Digest
		if d == "" {
			d = SHA1
		}
		if len(rot.Secret) == 0 {
			return fmt.Errorf("auth: encrypted rotation %d: empty Secret", i+1)
		}
		var signs [][]byte
		switch {
		case rc.gcm || rot.SignSecret != nil:
			signs = [][]byte{rot.SignSecret}
		case cfg.LegacyEncryption:
			// Inherit the primary's sign_secret (*@args.drop(args.length)).
			for _, pd := range digests {
				signs = append(signs, primarySign[pd])
			}
		default:
			signs = [][]byte{nil}
		}
		for _, sign := range signs {
			label := fmt.Sprintf("rotation %d: %s", i+1, rc.name)
			if !rc.gcm {
				label += "+HMAC-" + string(d)
			}
			s, err := newCipherScheme(label, rc, rot.Secret, sign, d)
			if err != nil {
				return err
			}
			c.encrypted = append(c.encrypted, s)
		}
	}

	if cfg.NoCipherFallback {
		return nil
	}
	for _, d := range digests {
		if !cfg.LegacyEncryption {
			// upgrade_legacy_hmac_aes_cbc_cookies? (5.2+): CBC with the
			// cookies_digest HMAC.
			key, err := kg.key(d, salts.encrypted, cbc.keyLen)
			if err != nil {
				return err
			}
			sign, err := kg.key(d, salts.encryptedSigned, 64)
			if err != nil {
				return err
			}
			s, err := newCipherScheme(fmt.Sprintf("fallback aes-256-cbc+HMAC-%s (%s key)", cookiesDigest, d), cbc, key, sign, cookiesDigest)
			if err != nil {
				return err
			}
			c.encrypted = append(c.encrypted, s)
		} else if c.version >= 601 {
			// prepare_upgrade_legacy_hmac_aes_cbc_cookies? (6.1+): the
			// future cipher, encrypted_cookie_cipher || "aes-256-gcm".
			key, err := kg.key(d, salts.authenticated, primaryCipher.keyLen)
			if err != nil {
				return err
			}
			s, err := newCipherScheme(fmt.Sprintf("fallback %s (%s key)", primaryCipher.name, d), primaryCipher, key, nil, SHA1)
			if err != nil {
				return err
			}
			c.encrypted = append(c.encrypted, s)
		}
	}
	return nil
}

// buildSigned mirrors SignedKeyRotatingCookieJar#initialize: a
// MessageVerifier keyed by generate_key(signed_cookie_salt) (64 bytes) with
// signed_cookie_digest || "SHA1", then cookies_rotations.signed, which
// inherit that digest.
func (c *RailsCookies) buildSigned(cfg Config, digests []Digest, salts saltSet, kg *keyGen) error {
	sd := cfg.SignedDigest
	if sd == "" {
		sd = SHA1
	}
	for _, d := range digests {
		key, err := kg.key(d, salts.signed, 64)
		if err != nil {
			return err
		}
		s := &scheme{label: fmt.Sprintf("HMAC-%s (%s key)", sd, d)}
		if err := s.setMAC(key, sd); err != nil {
			return err
		}
		c.signed = append(c.signed, s)
	}
	for i, rot := range cfg.SignedRotations {
		d := rot.Digest
		if d == "" {
			d = sd
		}
		s := &scheme{label: fmt.Sprintf("rotation %d: HMAC-%s", i+1, d)}
		if len(rot.Secret) == 0 {
			return fmt.Errorf("auth: signed rotation %d: empty Secret", i+1)
		}
		if err := s.setMAC(rot.Secret, d); err != nil {
			return err
		}
		c.signed = append(c.signed, s)
	}
	return nil
}

// Encrypted reads cookies.encrypted[name] from r's Cookie header and stores
// the value in v, which may be a *any (see DecodeMarshal for the Go types
// of the values) or any pointer encoding/json can fill from the value.
func (c *RailsCookies) Encrypted(r *http.Request, name string, v any) error {
	val, err := c.Read(JarEncrypted, cookieHeader(r), name)
	if err != nil {
		return err
	}
	return assignErr(string(JarEncrypted), name, val, v)
}

// Signed reads cookies.signed[name] from r's Cookie header and stores the
// value in v, like Encrypted. A signed cookie is authenticated but not
// secret: anyone can read its payload.
func (c *RailsCookies) Signed(r *http.Request, name string, v any) error {
	val, err := c.Read(JarSigned, cookieHeader(r), name)
	if err != nil {
		return err
	}
	return assignErr(string(JarSigned), name, val, v)
}

// Session reads the CookieStore session (the encrypted cookie named
// Config.SessionKey) from r. Its keys are strings, as Rack stores them,
// e.g. "session_id", "_csrf_token" and Devise's "warden.user.user.key".
func (c *RailsCookies) Session(r *http.Request) (map[string]any, error) {
	return c.ReadSession(cookieHeader(r))
}

// ReadSession is Session for a Cookie header.
func (c *RailsCookies) ReadSession(header string) (map[string]any, error) {
	if c.sessionKey == "" {
		return nil, errors.New("auth: Config.SessionKey is empty")
	}
	raw, ok := cookieValue(header, c.sessionKey)
	if !ok {
		return nil, &DecodeError{Jar: "session", Name: c.sessionKey, Reason: ReasonNoCookie}
	}
	v, err := c.decode("session", c.encrypted, false, c.sessionKey, raw)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &DecodeError{Jar: "session", Name: c.sessionKey, Reason: ReasonDeserializeFailed,
			Detail: fmt.Sprintf("session is a %T, not a Hash", v)}
	}
	return m, nil
}

// Read returns the value of cookie name of jar from a Cookie header, found
// and unescaped as Rack does (the first cookie of a name wins).
func (c *RailsCookies) Read(jar Jar, header, name string) (any, error) {
	raw, ok := cookieValue(header, name)
	if !ok {
		return nil, &DecodeError{Jar: string(jar), Name: name, Reason: ReasonNoCookie}
	}
	return c.decodeJar(jar, name, raw)
}

// Decode returns the value of one cookie of jar given as it appears in a
// Cookie header, still %-escaped (it is unescaped as Rack does).
func (c *RailsCookies) Decode(jar Jar, name, value string) (any, error) {
	return c.decodeJar(jar, name, rackUnescape(value))
}

func (c *RailsCookies) decodeJar(jar Jar, name, raw string) (any, error) {
	switch jar {
	case JarEncrypted:
		return c.decode(string(jar), c.encrypted, false, name, raw)
	case JarSigned:
		return c.decode(string(jar), c.signed, true, name, raw)
	}
	return nil, fmt.Errorf("auth: unknown jar %q", string(jar))
}

// decode tries every scheme in order. The first one that authenticates the
// value decides the result: Rails moves to the next rotation only on
// format and authentication errors, never on an expired or mismatched
// envelope (activesupport/lib/active_support/messages/rotator.rb,
// read_message). When none does, the primary's failure is reported.
func (c *RailsCookies) decode(jar string, schemes []*scheme, signed bool, name, raw string) (any, error) {
	var first Reason
	var firstDetail string
	for i, s := range schemes {
		p, reason, detail := s.open(raw, signed, rulesFor(c.version, true))
		if reason == "" {
			v, reason, detail := c.unwrap(p, name, signed)
			if reason != "" {
				return nil, &DecodeError{Jar: jar, Name: name, Reason: reason,
					Detail: detail + " [authenticated by " + s.label + "]"}
			}
			return v, nil
		}
		if i == 0 {
			first, firstDetail = reason, detail
		}
	}
	labels := make([]string, len(schemes))
	for i, s := range schemes {
		labels[i] = s.label
	}
	tried := "tried " + strings.Join(labels, ", ")
	if first == ReasonAuthFailed && firstDetail == "" {
		if signed {
			firstDetail = "no key verifies the signature: wrong secret_key_base, key digest, salt or signed_cookie_digest, or the cookie was altered"
		} else {
			firstDetail = "no key decrypts it: wrong secret_key_base, key digest, salt or cipher, or the cookie was altered"
		}
	}
	if firstDetail == "" {
		firstDetail = tried
	} else {
		firstDetail += "; " + tried
	}
	return nil, &DecodeError{Jar: jar, Name: name, Reason: first, Detail: firstDetail}
}

func assignErr(jar, name string, val, dst any) error {
	if err := assign(val, dst); err != nil {
		return &DecodeError{Jar: jar, Name: name, Reason: ReasonDeserializeFailed,
			Detail: fmt.Sprintf("cannot store a %T in %T: %v", val, dst, err)}
	}
	return nil
}

// unwrap checks the metadata envelope, if any, and deserializes the
// payload. The jar reads with purpose "cookie.<name>" and, failing that,
// with none (cookies.rb, AbstractCookieJar#[], 6.0+); 5.2 reads with none
// only. The envelope of an encrypted cookie is read by MessageEncryptor,
// whose Base64 is always strict; a signed one by MessageVerifier.
func (c *RailsCookies) unwrap(p []byte, name string, signed bool) (any, Reason, string) {
	purposes := []string{""}
	if c.version >= 600 {
		purposes = append(purposes, "cookie."+name)
	}
	payload, _, reason, detail := openMetadata(p, rulesFor(c.version, signed), c.now(), purposes...)
	if reason != "" {
		return nil, reason, detail
	}
	return c.deserialize(payload)
}
