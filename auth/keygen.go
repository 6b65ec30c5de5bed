package auth

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"
)

// Digest names a hash function the way Rails configuration does
// ("SHA1", "SHA256", ...). It is used for the key generator
// (config.active_support.key_generator_hash_digest_class) and for HMACs
// (signed_cookie_digest, cookies_digest, rotation digests).
type Digest string

// The supported digests.
const (
	SHA1   Digest = "SHA1"
	SHA256 Digest = "SHA256"
	SHA384 Digest = "SHA384"
	SHA512 Digest = "SHA512"
)

// ParseDigest accepts a digest name in any case, with or without a dash
// ("sha256", "SHA-256", "OpenSSL::Digest::SHA256").
func ParseDigest(s string) (Digest, error) {
	n := strings.ToUpper(strings.TrimSpace(s))
	n = strings.TrimPrefix(n, "OPENSSL::DIGEST::")
	n = strings.ReplaceAll(n, "-", "")
	switch d := Digest(n); d {
	case SHA1, SHA256, SHA384, SHA512:
		return d, nil
	}
	return "", fmt.Errorf("auth: unsupported digest %q (want SHA1, SHA256, SHA384 or SHA512)", s)
}

// newHash returns the constructor for d; d must be valid.
func (d Digest) newHash() (func() hash.Hash, error) {
	switch d {
	case SHA1:
		return sha1.New, nil
	case SHA256:
		return sha256.New, nil
	case SHA384:
		return sha512.New384, nil
	case SHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("auth: unsupported digest %q", string(d))
}

// DefaultIterations is the PBKDF2 iteration count of the application key
// generator: Rails::Application#key_generator builds
// ActiveSupport::KeyGenerator.new(secret_key_base, iterations: 1000)
// (railties/lib/rails/application.rb, identical 5.2–8.1).
const DefaultIterations = 1000

// DeriveKey returns what ActiveSupport::KeyGenerator#generate_key(salt,
// length) returns: PBKDF2-HMAC-digest of secretKeyBase used verbatim as
// bytes (it is not hex-decoded) with the salt string
// (activesupport/lib/active_support/key_generator.rb). iterations <= 0
// means DefaultIterations. Use it to build Rotation keys from an old
// secret_key_base.
func DeriveKey(secretKeyBase string, digest Digest, iterations int, salt string, length int) ([]byte, error) {
	h, err := digest.newHash()
	if err != nil {
		return nil, err
	}
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	if length <= 0 {
		return nil, fmt.Errorf("auth: invalid key length %d", length)
	}
	if secretKeyBase == "" {
		return nil, fmt.Errorf("auth: empty secret_key_base")
	}
	return pbkdf2.Key(h, secretKeyBase, []byte(salt), iterations, length)
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
