package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
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
}

// scheme is one way to open a cookie value: one cipher or HMAC with
// one key. Its fields never change after construction.
type scheme struct {
	label   string      // for logs, e.g. "aes-256-gcm (key SHA256)"
	aead    cipher.AEAD // GCM ciphers
	block   cipher.Block
	macKey  []byte // HMAC key: signed, and CBC ciphers
	macHash func() hash.Hash
	macHex  int // length of the hex digest
}

// cipherSpec describes an encrypted_cookie_cipher.
type cipherSpec struct {
	name   string
	keyLen int
	gcm    bool
}

func parseCipher(name string) (cipherSpec, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	var c cipherSpec
	switch n {
	case "aes-128-gcm", "aes-192-gcm", "aes-256-gcm":
		c.gcm = true
	case "aes-128-cbc", "aes-192-cbc", "aes-256-cbc":
	default:
		return c, fmt.Errorf("auth: unsupported cipher %q (want aes-{128,192,256}-{gcm,cbc})", name)
	}
	c.name = n
	switch n[4:7] {
	case "128":
		c.keyLen = 16
	case "192":
		c.keyLen = 24
	default:
		c.keyLen = 32
	}
	return c, nil
}

// newCipherScheme builds an ActiveSupport::MessageEncryptor for cipher c
// (activesupport/lib/active_support/message_encryptor.rb): an AEAD, or
// CBC with a MessageVerifier keyed by signKey (key itself when nil) using
// macDigest.
func newCipherScheme(label string, c cipherSpec, key, signKey []byte, macDigest Digest) (*scheme, error) {
	if len(key) != c.keyLen {
		return nil, fmt.Errorf("auth: %s: key must be %d bytes, got %d", label, c.keyLen, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	s := &scheme{label: label}
	if c.gcm {
		if s.aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
		return s, nil
	}
	s.block = block
	if signKey == nil {
		signKey = key
	}
	if err := s.setMAC(signKey, macDigest); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *scheme) setMAC(key []byte, d Digest) error {
	h, err := d.newHash()
	if err != nil {
		return err
	}
	if len(key) == 0 {
		return fmt.Errorf("auth: %s: empty HMAC key", s.label)
	}
	s.macKey = key
	s.macHash = h
	s.macHex = 2 * h().Size()
	return nil
}

// NewRailsCookies checks cfg and derives every key it needs, once.
func NewRailsCookies(cfg Config) (*RailsCookies, error) {
	if cfg.SecretKeyBase == "" {
		return nil, errors.New("auth: Config.SecretKeyBase is empty")
	}
	c := &RailsCookies{version: 801, sessionKey: cfg.SessionKey, now: cfg.Now}
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

type saltSet struct{ signed, encrypted, encryptedSigned, authenticated string }

func saltsOf(cfg Config) saltSet {
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	return saltSet{
		signed:          or(cfg.SignedCookieSalt, defaultSignedCookieSalt),
		encrypted:       or(cfg.EncryptedCookieSalt, defaultEncryptedCookieSalt),
		encryptedSigned: or(cfg.EncryptedSignedCookieSalt, defaultEncryptedSignedCookieSalt),
		authenticated:   or(cfg.AuthenticatedEncryptedCookieSalt, defaultAuthenticatedEncryptedCookieSalt),
	}
}

// keyGen is ActiveSupport::CachingKeyGenerator for one secret_key_base.
type keyGen struct {
	skb   string
	iter  int
	cache map[string][]byte
}

func (k *keyGen) key(d Digest, salt string, n int) ([]byte, error) {
	id := fmt.Sprintf("%s|%d|%s", d, n, salt)
	if b, ok := k.cache[id]; ok {
		return b, nil
	}
	b, err := DeriveKey(k.skb, d, k.iter, salt, n)
	if err != nil {
		return nil, err
	}
	k.cache[id] = b
	return b, nil
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

// b64 is Base64.strict_decode64.
var b64 = base64.StdEncoding.Strict()

// verify checks a MessageVerifier message, "data--hexdigest", and returns
// data (activesupport/lib/active_support/message_verifier.rb: the
// separator sits 2+hexlen characters from the end; the digest is compared
// as lowercase hex in constant time).
func (s *scheme) verify(msg string) (string, Reason, string) {
	n := s.macHex
	if len(msg) < n+3 {
		return "", ReasonMalformed, "too short for " + s.label
	}
	sep := len(msg) - n - 2
	if msg[sep:sep+2] != "--" {
		if strings.Contains(msg, "--") {
			return "", ReasonMalformed, "signature length does not fit " + s.label + " (another digest?)"
		}
		return "", ReasonMalformed, "no \"--\" separator"
	}
	data, sig := msg[:sep], msg[sep+2:]
	mac := hmac.New(s.macHash, s.macKey)
	mac.Write([]byte(data))
	want := make([]byte, n)
	hex.Encode(want, mac.Sum(nil))
	if !hmac.Equal(want, []byte(sig)) {
		return "", ReasonAuthFailed, ""
	}
	return data, "", ""
}

// open returns the plaintext of an encrypted or signed cookie value.
func (s *scheme) open(msg string, signed bool) ([]byte, Reason, string) {
	switch {
	case signed:
		data, reason, detail := s.verify(msg)
		if reason != "" {
			return nil, reason, detail
		}
		p, err := b64.DecodeString(data)
		if err != nil {
			return nil, ReasonMalformed, "signed data is not base64"
		}
		return p, "", ""
	case s.aead != nil:
		return s.openGCM(msg)
	default:
		return s.openCBC(msg)
	}
}

// openGCM reads "b64(ciphertext)--b64(iv)--b64(tag)" with an empty AAD
// (message_encryptor.rb, encrypt/decrypt/extract_parts).
func (s *scheme) openGCM(msg string) ([]byte, Reason, string) {
	parts := strings.SplitN(msg, "--", 4)
	if len(parts) != 3 {
		return nil, ReasonMalformed, fmt.Sprintf("want ciphertext--iv--tag, got %d part(s)", len(parts))
	}
	ct, err1 := b64.DecodeString(parts[0])
	iv, err2 := b64.DecodeString(parts[1])
	tag, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, ReasonMalformed, "not strict base64 (sent without %-escaping?)"
	}
	if len(iv) != s.aead.NonceSize() {
		return nil, ReasonMalformed, fmt.Sprintf("iv is %d bytes, want %d", len(iv), s.aead.NonceSize())
	}
	if len(tag) != s.aead.Overhead() {
		return nil, ReasonMalformed, "truncated auth_tag"
	}
	p, err := s.aead.Open(nil, iv, append(ct, tag...), nil)
	if err != nil {
		return nil, ReasonAuthFailed, ""
	}
	return p, "", ""
}

// openCBC reads the legacy format: a MessageVerifier message whose data is
// b64("b64(ciphertext)--b64(iv)"); the HMAC is checked before decrypting.
func (s *scheme) openCBC(msg string) ([]byte, Reason, string) {
	data, reason, detail := s.verify(msg)
	if reason != "" {
		return nil, reason, detail
	}
	inner, err := b64.DecodeString(data)
	if err != nil {
		return nil, ReasonMalformed, "signed data is not base64"
	}
	parts := bytes.SplitN(inner, []byte("--"), 3)
	if len(parts) != 2 {
		return nil, ReasonMalformed, "want ciphertext--iv inside the signed data"
	}
	ct := make([]byte, b64.DecodedLen(len(parts[0])))
	n, err1 := b64.Decode(ct, parts[0])
	iv := make([]byte, b64.DecodedLen(len(parts[1])))
	m, err2 := b64.Decode(iv, parts[1])
	if err1 != nil || err2 != nil {
		return nil, ReasonMalformed, "ciphertext or iv is not base64"
	}
	ct, iv = ct[:n], iv[:m]
	bs := s.block.BlockSize()
	if len(iv) != bs || len(ct) == 0 || len(ct)%bs != 0 {
		return nil, ReasonMalformed, "bad CBC ciphertext or iv length"
	}
	p := make([]byte, len(ct))
	cipher.NewCBCDecrypter(s.block, iv).CryptBlocks(p, ct)
	pad := int(p[len(p)-1])
	if pad == 0 || pad > bs {
		return nil, ReasonAuthFailed, "HMAC valid but decryption failed (wrong encrypted_cookie_salt?)"
	}
	for _, b := range p[len(p)-pad:] {
		if int(b) != pad {
			return nil, ReasonAuthFailed, "HMAC valid but decryption failed (wrong encrypted_cookie_salt?)"
		}
	}
	return p[:len(p)-pad], "", ""
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
		p, reason, detail := s.open(raw, signed)
		if reason == "" {
			v, reason, detail := c.unwrap(p, name)
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

// envelopePrefix starts the metadata envelope every Rails writes for
// cookies (activesupport/lib/active_support/messages/metadata.rb,
// wrap_in_metadata_legacy_envelope; cookies keep this form in 7.1+ because
// the jars use NullSerializer).
var envelopePrefix = []byte(`{"_rails":`)

// unwrap checks the metadata envelope, if any, and deserializes the
// payload.
func (c *RailsCookies) unwrap(p []byte, name string) (any, Reason, string) {
	payload := p
	if bytes.HasPrefix(p, envelopePrefix) {
		var outer map[string]json.RawMessage
		var env map[string]json.RawMessage
		if err := json.Unmarshal(p, &outer); err != nil {
			return nil, ReasonMalformed, "metadata envelope is not JSON"
		}
		if err := json.Unmarshal(outer["_rails"], &env); err != nil || env == nil {
			return nil, ReasonMalformed, "metadata envelope: _rails is not an object"
		}
		var msg, exp, pur *string
		if json.Unmarshal(env["message"], &msg) != nil || msg == nil {
			return nil, ReasonMalformed, "metadata envelope: no message"
		}
		if raw, ok := env["exp"]; ok && json.Unmarshal(raw, &exp) != nil {
			return nil, ReasonMalformed, "metadata envelope: exp is not a string"
		}
		if raw, ok := env["pur"]; ok && json.Unmarshal(raw, &pur) != nil {
			return nil, ReasonMalformed, "metadata envelope: pur is not a string"
		}
		// Expiry first, then purpose (metadata.rb,
		// extract_from_metadata_envelope): expired when now >= exp.
		if exp != nil {
			t, err := time.Parse(time.RFC3339Nano, *exp)
			if err != nil {
				return nil, ReasonMalformed, "metadata envelope: bad exp"
			}
			if !c.now().Before(t) {
				return nil, ReasonExpired, "expired at " + t.UTC().Format(time.RFC3339)
			}
		}
		// The jar reads with purpose "cookie.<name>" and, failing that,
		// with none (cookies.rb, AbstractCookieJar#[], 6.0+); 5.2 reads
		// with none only. "pur" is compared with to_s, so null == "".
		if pur != nil && *pur != "" && (c.version < 600 || *pur != "cookie."+name) {
			return nil, ReasonPurposeMismatch, fmt.Sprintf("written for purpose %q", *pur)
		}
		b, err := b64.DecodeString(*msg)
		if err != nil {
			return nil, ReasonMalformed, "metadata envelope: message is not base64"
		}
		payload = b
	}
	return c.deserialize(payload)
}

type payloadFormat int

const (
	formatUnknown payloadFormat = iota
	formatJSON
	formatMarshal
	formatMessagePack
)

func (f payloadFormat) String() string {
	return [...]string{"unknown", "JSON", "Marshal", "MessagePack"}[f]
}

var marshalSignature = []byte{4, 8}

// detectFormat is SerializerWithFallback#detect_format
// (activesupport/lib/active_support/messages/serializer_with_fallback.rb).
func detectFormat(p []byte) payloadFormat {
	switch {
	case bytes.HasPrefix(p, messagePackSignature):
		return formatMessagePack
	case bytes.HasPrefix(p, marshalSignature):
		return formatMarshal
	case jsonStart(p):
		return formatJSON
	}
	return formatUnknown
}

// jsonStart is JSON_START_WITH: /\A(?:[{\["]|-?\d|true|false|null)/.
func jsonStart(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch c := p[0]; {
	case c == '{' || c == '[' || c == '"':
		return true
	case c >= '0' && c <= '9':
		return true
	case c == '-':
		return len(p) > 1 && p[1] >= '0' && p[1] <= '9'
	}
	return bytes.HasPrefix(p, []byte("true")) || bytes.HasPrefix(p, []byte("false")) || bytes.HasPrefix(p, []byte("null"))
}

// deserialize applies the cookies_serializer of the configured Rails
// version (cookies.rb, SerializedCookieJars).
func (c *RailsCookies) deserialize(p []byte) (any, Reason, string) {
	f := detectFormat(p)
	var use payloadFormat
	switch {
	case c.version >= 701:
		// SerializerWithFallback: the primary format, any detected
		// fallback except Marshal unless allowed, and for the JSON
		// serializers an undetected payload is tried as JSON.
		var primary payloadFormat
		allowMarshal := false
		switch c.serializer {
		case SerializerMarshal:
			primary, allowMarshal = formatMarshal, true
		case SerializerJSON:
			primary = formatJSON
		case SerializerHybrid, SerializerJSONAllowMarshal:
			primary, allowMarshal = formatJSON, true
		case SerializerMessagePack:
			primary = formatMessagePack
		case SerializerMessagePackAllowMarshal:
			primary, allowMarshal = formatMessagePack, true
		}
		if f == formatUnknown && primary == formatJSON {
			f = formatJSON
		}
		switch {
		case f == formatUnknown:
			return nil, ReasonDeserializeFailed, "unsupported serialization format"
		case f == formatMarshal && !allowMarshal:
			return nil, ReasonSerializerRefused, fmt.Sprintf("Marshal payload refused by cookies_serializer :%s", c.serializer)
		}
		use = f
	case c.serializer == SerializerMarshal && c.version < 601:
		// Marshal.load only.
		use = formatMarshal
	case c.serializer == SerializerMarshal || c.serializer == SerializerHybrid:
		// MarshalWithJsonFallback (6.1, 7.0), and :hybrid's
		// needs_migration? (5.2+): Marshal if it has the signature, else JSON.
		use = formatJSON
		if f == formatMarshal {
			use = formatMarshal
		}
	default: // :json before 7.1: JsonSerializer
		if f == formatMarshal {
			return nil, ReasonSerializerRefused, "Marshal payload refused by cookies_serializer :json"
		}
		use = formatJSON
	}
	var v any
	var err error
	switch use {
	case formatJSON:
		v, err = decodeJSON(p)
	case formatMarshal:
		v, err = DecodeMarshal(p)
	case formatMessagePack:
		v, err = DecodeMessagePack(p)
	}
	if err != nil {
		return nil, ReasonDeserializeFailed, strings.TrimPrefix(err.Error(), "auth: ")
	}
	return v, "", ""
}

func assignErr(jar, name string, val, dst any) error {
	if err := assign(val, dst); err != nil {
		return &DecodeError{Jar: jar, Name: name, Reason: ReasonDeserializeFailed,
			Detail: fmt.Sprintf("cannot store a %T in %T: %v", val, dst, err)}
	}
	return nil
}
