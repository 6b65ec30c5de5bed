package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"strings"
)

// scheme is one way to open a cookie value: one cipher or HMAC with
// one key. Its fields never change after construction.
type scheme struct {
	label string      // for logs, e.g. "aes-256-gcm (key SHA256)"
	aead  cipher.AEAD // GCM ciphers
	block cipher.Block
	mac   *signer // signed, and CBC ciphers
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
	m, err := newSigner(s.label, key, d)
	if err != nil {
		return err
	}
	s.mac = m
	return nil
}

// open returns the plaintext of an encrypted or signed cookie value.
// rules.urlSafeBase64 applies to the signed data of the signed jar and of
// CBC, which Rails reads with a MessageVerifier.
func (s *scheme) open(msg string, signed bool, rules readRules) ([]byte, Reason, string) {
	switch {
	case signed:
		data, reason, detail := s.mac.verify(msg)
		if reason != "" {
			return nil, reason, detail
		}
		p, err := decodeBase64(data, rules.urlSafeBase64)
		if err != nil {
			return nil, ReasonMalformed, "signed data is not base64"
		}
		return p, "", ""
	case s.aead != nil:
		return s.openGCM(msg)
	default:
		return s.openCBC(msg, rules)
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
func (s *scheme) openCBC(msg string, rules readRules) ([]byte, Reason, string) {
	data, reason, detail := s.mac.verify(msg)
	if reason != "" {
		return nil, reason, detail
	}
	inner, err := decodeBase64(data, rules.urlSafeBase64)
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

// seal encrypts plaintext as MessageEncryptor#encrypt_and_sign does with
// this scheme's cipher, with a fresh random IV
// (activesupport/lib/active_support/message_encryptor.rb): GCM writes
// "b64(ciphertext)--b64(iv)--b64(auth_tag)" with an empty AAD and a
// 12-byte IV; CBC pads with PKCS#7 and signs
// b64("b64(ciphertext)--b64(iv)") with its MessageVerifier.
func (s *scheme) seal(plaintext []byte) (string, error) {
	if s.aead != nil {
		iv := make([]byte, s.aead.NonceSize())
		if _, err := rand.Read(iv); err != nil {
			return "", err
		}
		out := s.aead.Seal(nil, iv, plaintext, nil)
		ct, tag := out[:len(out)-s.aead.Overhead()], out[len(out)-s.aead.Overhead():]
		return b64.EncodeToString(ct) + "--" + b64.EncodeToString(iv) + "--" + b64.EncodeToString(tag), nil
	}
	bs := s.block.BlockSize()
	iv := make([]byte, bs)
	if _, err := rand.Read(iv); err != nil {
		return "", err
	}
	pad := bs - len(plaintext)%bs
	p := append(bytes.Clone(plaintext), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(s.block, iv).CryptBlocks(p, p)
	inner := b64.EncodeToString(p) + "--" + b64.EncodeToString(iv)
	return s.mac.sign(b64.EncodeToString([]byte(inner))), nil
}
