package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Metadata is what Rails may write beside a message's payload: the purpose
// it is for and when it expires (activesupport/lib/active_support/messages/metadata.rb).
// The cookie jars use the purpose "cookie.<name>"
// (actionpack/lib/action_dispatch/middleware/cookies.rb, cookie_metadata).
//
// The zero Metadata means no purpose and no expiry: the payload is then
// written without an envelope, as Rails does.
type Metadata struct {
	// Purpose is the "pur" of the envelope; "" means none.
	Purpose string
	// Expires is the "exp" of the envelope, written in UTC with
	// milliseconds (Time#iso8601(3)); the zero Time means none.
	Expires time.Time
}

// IsZero reports whether m has neither a purpose nor an expiry.
func (m Metadata) IsZero() bool { return m.Purpose == "" && m.Expires.IsZero() }

// expiryLayout is Time#utc.iso8601(3) (metadata.rb, pick_expiry): the
// fraction is truncated to milliseconds, as Ruby does.
const expiryLayout = "2006-01-02T15:04:05.000Z"

// legacyEnvelope is the JSON of wrap_in_metadata_legacy_envelope with
// serialize_to_json (metadata.rb): the keys in this order, "exp" and
// "pur" null when absent. Rails 5.2–7.0 write the same JSON from
// Metadata#as_json. encoding/json escapes <, >, &, U+2028 and U+2029 as
// ActiveSupport::JSON.encode does.
type legacyEnvelope struct {
	Rails struct {
		Message string  `json:"message"`
		Exp     *string `json:"exp"`
		Pur     *string `json:"pur"`
	} `json:"_rails"`
}

// wrap is serialize_with_metadata without the message serializer for the
// metadata: payload itself when m is zero, else the legacy envelope around
// Base64(payload).
func (m Metadata) wrap(payload []byte) []byte {
	if m.IsZero() {
		return payload
	}
	var env legacyEnvelope
	env.Rails.Message = b64.EncodeToString(payload)
	if !m.Expires.IsZero() {
		exp := m.Expires.UTC().Format(expiryLayout)
		env.Rails.Exp = &exp
	}
	if m.Purpose != "" {
		pur := m.Purpose
		env.Rails.Pur = &pur
	}
	b, err := json.Marshal(env)
	if err != nil {
		panic("auth: metadata envelope: " + err.Error()) // strings only: cannot fail
	}
	return b
}

// readRules are the envelope and Base64 rules of one Rails release.
type readRules struct {
	// prefixOnly: an envelope is recognised by its first bytes,
	// {"_rails":{"message": (7.1+, dual_serialized_metadata_envelope_json?);
	// before 7.1 any JSON object with a "_rails" key is one
	// (metadata.rb, extract_metadata).
	prefixOnly bool
	// urlSafeBase64: MessageVerifier also reads URL-safe Base64 (8.1+).
	urlSafeBase64 bool
}

// rulesFor returns the reading rules of Rails version (e.g. 701).
func rulesFor(version int, verifier bool) readRules {
	return readRules{prefixOnly: version >= 701, urlSafeBase64: verifier && version >= 801}
}

// latestRules are the rules of the newest Rails, for MessageVerifier.
var latestRules = rulesFor(801, true)

var (
	legacyEnvelopePrefix = []byte(`{"_rails":{"message":`)
	envelopeStart        = []byte(`{"_rails":`)
)

// openMetadata is the envelope half of deserialize_with_metadata
// (metadata.rb; Metadata.verify before 7.1): when p is a legacy envelope it
// checks the expiry against now and the purpose against purposes (a
// missing or null "pur" reads as "", as Ruby's to_s does) and returns the
// Base64-decoded message with enveloped true. Any other p is returned as
// it is: a payload without metadata, which Rails accepts when no purpose
// is expected (7.1+: "missing metadata"; the cookie jars retry without a
// purpose, so they always accept it).
//
// The expiry is checked before the purpose, as 7.1+ does; 5.2–7.0 checked
// the purpose first, which changes only the reason given, never the
// verdict.
func openMetadata(p []byte, rules readRules, now time.Time, purposes ...string) (payload []byte, enveloped bool, reason Reason, detail string) {
	if bytes.HasPrefix(p, envelopeStart) && !json.Valid(p) {
		// Every Rails refuses it, as a payload the serializer cannot
		// parse; the reason given here is more useful.
		return nil, true, ReasonMalformed, "metadata envelope is not JSON"
	}
	if rules.prefixOnly && !bytes.HasPrefix(p, legacyEnvelopePrefix) {
		return p, false, "", ""
	}
	var outer map[string]json.RawMessage
	if !rules.prefixOnly && (len(p) == 0 || p[0] != '{' || json.Unmarshal(p, &outer) != nil || outer["_rails"] == nil) {
		return p, false, "", ""
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(p, &outer); err != nil {
		return nil, true, ReasonMalformed, "metadata envelope is not JSON"
	}
	if err := json.Unmarshal(outer["_rails"], &env); err != nil || env == nil {
		return nil, true, ReasonMalformed, "metadata envelope: _rails is not an object"
	}
	var msg *string
	if json.Unmarshal(env["message"], &msg) != nil || msg == nil {
		return nil, true, ReasonMalformed, "metadata envelope: no message"
	}
	if reason, detail := checkMetadata(env["exp"], env["pur"], now, purposes...); reason != "" {
		return nil, true, reason, detail
	}
	b, err := decodeBase64(*msg, rules.urlSafeBase64)
	if err != nil {
		return nil, true, ReasonMalformed, "metadata envelope: message: " + err.Error()
	}
	return b, true, "", ""
}

// checkMetadata is extract_from_metadata_envelope (metadata.rb): expired
// when now >= exp; the purpose's to_s must equal one of purposes (no
// purposes means "", none).
func checkMetadata(exp, pur json.RawMessage, now time.Time, purposes ...string) (Reason, string) {
	var expS, purS *string
	if len(exp) > 0 && json.Unmarshal(exp, &expS) != nil {
		return ReasonMalformed, "metadata envelope: exp is not a string"
	}
	if len(pur) > 0 && json.Unmarshal(pur, &purS) != nil {
		return ReasonMalformed, "metadata envelope: pur is not a string"
	}
	if expS != nil {
		t, err := time.Parse(time.RFC3339Nano, *expS)
		if err != nil {
			return ReasonMalformed, "metadata envelope: bad exp"
		}
		if !now.Before(t) {
			return ReasonExpired, "expired at " + t.UTC().Format(time.RFC3339)
		}
	}
	got := ""
	if purS != nil {
		got = *purS
	}
	if len(purposes) == 0 {
		purposes = []string{""}
	}
	for _, want := range purposes {
		if got == want {
			return "", ""
		}
	}
	if got == "" {
		return ReasonPurposeMismatch, "missing metadata"
	}
	return ReasonPurposeMismatch, fmt.Sprintf("written for purpose %q", got)
}
