package auth

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

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
