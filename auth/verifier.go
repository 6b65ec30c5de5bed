package auth

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// b64 is Base64.strict_encode64 / strict_decode64.
var b64 = base64.StdEncoding.Strict()

// decodeBase64 is Codec#decode (activesupport/lib/active_support/messages/codec.rb):
// strict Base64. With urlSafeToo it is MessageVerifier#decode of Rails 8.1+
// (activesupport/lib/active_support/message_verifier.rb), which retries
// with Base64.urlsafe_decode64: "-" and "_" read as "+" and "/", and the
// padding added when it is missing.
func decodeBase64(s string, urlSafeToo bool) ([]byte, error) {
	if b, err := b64.DecodeString(s); err == nil && !strings.ContainsAny(s, "\r\n") {
		// Go's decoder skips newlines; Ruby's strict one refuses them.
		return b, nil
	}
	if !urlSafeToo || strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("not strict Base64")
	}
	t := strings.NewReplacer("-", "+", "_", "/").Replace(s)
	if !strings.HasSuffix(t, "=") && len(t)%4 != 0 {
		t += strings.Repeat("=", 4-len(t)%4)
	}
	b, err := b64.DecodeString(t)
	if err != nil {
		return nil, errors.New("neither strict nor URL-safe Base64")
	}
	return b, nil
}

// signer is the HMAC half of one ActiveSupport::MessageVerifier: one key
// and one digest. It never changes after construction.
type signer struct {
	label  string // for logs, e.g. "HMAC-SHA1 (SHA256 key)"
	key    []byte
	hash   func() hash.Hash
	hexLen int // length of the hex digest
}

func newSigner(label string, key []byte, d Digest) (*signer, error) {
	h, err := d.newHash()
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("auth: %s: empty HMAC key", label)
	}
	return &signer{label: label, key: bytes.Clone(key), hash: h, hexLen: 2 * h().Size()}, nil
}

// digest is generate_digest: the lowercase hex HMAC of data.
func (s *signer) digest(data string) []byte {
	mac := hmac.New(s.hash, s.key)
	mac.Write([]byte(data))
	out := make([]byte, s.hexLen)
	hex.Encode(out, mac.Sum(nil))
	return out
}

// sign is sign_encoded: data + "--" + digest.
func (s *signer) sign(data string) string {
	return data + "--" + string(s.digest(data))
}

// split is extract_encoded without the digest check
// (message_verifier.rb, 7.1+): the separator sits exactly 2+hexLen
// characters from the end and both halves must be present (not blank).
// ActiveSupport before 7.1 split on every "--" and ignored what followed
// a second one; Rails never writes such a message, and it is refused here.
func splitSigned(msg string, hexLen int) (data, digest string, reason Reason, detail string) {
	sep := len(msg) - hexLen - 2
	if sep < 0 || msg[sep:sep+2] != "--" {
		if strings.Contains(msg, "--") {
			return "", "", ReasonMalformed, fmt.Sprintf("signature is not %d hex digits after the last \"--\" (another digest?)", hexLen)
		}
		return "", "", ReasonMalformed, "no \"--\" separator"
	}
	data, digest = msg[:sep], msg[sep+2:]
	if blank(data) {
		return "", "", ReasonMalformed, "no data before the signature"
	}
	return data, digest, "", ""
}

// verify checks a MessageVerifier message, "data--hexdigest", and returns
// data; the digest is compared in constant time
// (message_verifier.rb, digest_matches_data?).
func (s *signer) verify(msg string) (string, Reason, string) {
	data, digest, reason, detail := splitSigned(msg, s.hexLen)
	if reason != "" {
		return "", reason, detail + " for " + s.label
	}
	if !hmac.Equal(s.digest(data), []byte(digest)) {
		return "", ReasonAuthFailed, ""
	}
	return data, "", ""
}

// blank is Ruby's String#blank?: empty or only whitespace.
func blank(s string) bool {
	return strings.TrimFunc(s, unicode.IsSpace) == ""
}

// MessageVerifier is ActiveSupport::MessageVerifier
// (activesupport/lib/active_support/message_verifier.rb): a message is
// Base64(payload) + "--" + the hex HMAC of that Base64 text, the payload
// wrapped in Rails' metadata envelope when it has a purpose or an expiry
// (see Metadata). It is the one implementation behind the signed cookie
// jar, the HMAC of CBC-encrypted cookies and Turbo's signed stream names.
//
// It signs with the first secret and accepts a message signed with any of
// them, as a verifier with rotations does
// (activesupport/lib/active_support/messages/rotator.rb). It reads with
// the rules of the newest Rails: the digest at a fixed distance from the
// end, strict or URL-safe Base64 (8.1), and both envelope forms.
//
// A MessageVerifier has no useful zero value; build one with
// NewMessageVerifier. It is immutable and safe for concurrent use.
type MessageVerifier struct {
	signers []*signer
}

// NewMessageVerifier returns a verifier using HMAC with digest (Rails'
// default is SHA1; Turbo uses SHA256) under secrets, the first of which
// signs. It fails if there is no secret, a secret is empty or the digest
// is unknown.
func NewMessageVerifier(digest Digest, secrets ...[]byte) (*MessageVerifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("auth: message verifier: no secret")
	}
	v := &MessageVerifier{}
	for i, k := range secrets {
		s, err := newSigner(fmt.Sprintf("HMAC-%s (secret %d)", digest, i+1), k, digest)
		if err != nil {
			return nil, err
		}
		v.signers = append(v.signers, s)
	}
	return v, nil
}

// Generate is MessageVerifier#generate for a payload the caller has
// already serialized (Rails' serializer.dump): the payload, in the
// metadata envelope when m is not zero, Base64-encoded and signed with the
// first secret. The envelope is the one Rails writes for the cookie jars'
// NullSerializer and, before 7.1, for every serializer
// (activesupport/lib/active_support/messages/metadata.rb,
// wrap_in_metadata_legacy_envelope); every Rails from 5.2 reads it.
func (v *MessageVerifier) Generate(payload []byte, m Metadata) string {
	if v == nil || len(v.signers) == 0 {
		panic("auth: MessageVerifier has no secret: make it with NewMessageVerifier")
	}
	return generate(v.signers[0], payload, m)
}

// Verify is MessageVerifier#verify with purpose ("" for none) at time now
// for a NullSerializer payload: it returns the payload that Generate was
// given. The message must be signed by one of the secrets, its envelope
// (if any) must hold purpose and be unexpired at now, and a purpose is
// required when one is expected. Errors are *DecodeError values (Jar
// "signed message", Name the purpose) that unwrap to ErrExpired or
// ErrInvalid.
func (v *MessageVerifier) Verify(signed, purpose string, now time.Time) ([]byte, error) {
	p, reason, detail := v.open(signed)
	if reason == "" {
		var enveloped bool
		p, enveloped, reason, detail = openMetadata(p, latestRules, now, purpose)
		// openMetadata lets a message without an envelope through for the
		// cookie jars, which retry without a purpose (6.0+); a bare verifier
		// refuses it when a purpose is expected, as Rails' Metadata#verify
		// (6.x: @purpose.to_s == purpose.to_s) and Messages::Metadata (7.1+:
		// "missing metadata") do.
		if reason == "" && !enveloped && purpose != "" {
			reason, detail = ReasonPurposeMismatch, "missing metadata"
		}
	}
	if reason != "" {
		return nil, &DecodeError{Jar: "signed message", Name: purpose, Reason: reason, Detail: detail}
	}
	return p, nil
}

// VerifyJSON is Verify for a verifier with serializer: JSON, as Turbo's
// signed_stream_verifier (hotwired/turbo-rails lib/turbo-rails.rb): the
// payload must be one JSON value, and the envelope may also be the one
// Rails 7.1+ writes inside the JSON value with
// use_message_serializer_for_metadata, {"_rails":{"data":...,"exp":...,"pur":...}}
// (messages/metadata.rb, deserialize_with_metadata). It returns the JSON
// value, without its envelope.
func (v *MessageVerifier) VerifyJSON(signed, purpose string, now time.Time) (json.RawMessage, error) {
	fail := func(reason Reason, detail string) (json.RawMessage, error) {
		return nil, &DecodeError{Jar: "signed message", Name: purpose, Reason: reason, Detail: detail}
	}
	p, reason, detail := v.open(signed)
	if reason != "" {
		return fail(reason, detail)
	}
	p, enveloped, reason, detail := openMetadata(p, latestRules, now, purpose)
	if reason != "" {
		return fail(reason, detail)
	}
	var value json.RawMessage
	if err := json.Unmarshal(p, &value); err != nil {
		return fail(ReasonDeserializeFailed, "payload is not JSON")
	}
	if enveloped {
		return value, nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(value, &obj) != nil || obj["_rails"] == nil {
		if purpose != "" {
			return fail(ReasonPurposeMismatch, "missing metadata")
		}
		return value, nil
	}
	var meta struct {
		Data json.RawMessage `json:"data"`
		Exp  json.RawMessage `json:"exp"`
		Pur  json.RawMessage `json:"pur"`
	}
	if err := json.Unmarshal(obj["_rails"], &meta); err != nil {
		return fail(ReasonMalformed, "metadata envelope: _rails is not an object")
	}
	if reason, detail := checkMetadata(meta.Exp, meta.Pur, now, purpose); reason != "" {
		return fail(reason, detail)
	}
	if len(meta.Data) == 0 {
		return json.RawMessage("null"), nil
	}
	return meta.Data, nil
}

// open checks the signature with every secret, so that the time taken
// does not say which one matched, and decodes the Base64 data.
func (v *MessageVerifier) open(signed string) ([]byte, Reason, string) {
	if !utf8.ValidString(signed) {
		// extract_encoded: !signed.valid_encoding?
		return nil, ReasonMalformed, "not UTF-8"
	}
	data, digest, reason, detail := splitSigned(signed, v.signers[0].hexLen)
	if reason != "" {
		return nil, reason, detail
	}
	ok := false
	for _, s := range v.signers {
		if hmac.Equal(s.digest(data), []byte(digest)) {
			ok = true
		}
	}
	if !ok {
		return nil, ReasonAuthFailed, "no secret verifies the signature"
	}
	p, err := decodeBase64(data, latestRules.urlSafeBase64)
	if err != nil {
		return nil, ReasonMalformed, "signed data: " + err.Error()
	}
	return p, "", ""
}
