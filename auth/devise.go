package auth

import (
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Warden is the user Devise keeps in a Rails session for one Warden scope.
type Warden struct {
	// Scope is the Warden scope, e.g. "user" or "admin".
	Scope string

	// Key is record.to_key as stored: usually one int64 or string (UUID),
	// several values for a composite primary key.
	Key []any

	// ID is Key rendered with Ruby's to_s and joined with "/", e.g. "7".
	// IDParts holds the parts before the join. A record's GlobalID
	// escapes each part before joining them ("gid://app/User/<part>/…"):
	// pass IDParts to cable.GlobalIDParam.
	ID      string
	IDParts []string

	// Salt is record.authenticatable_salt when the user signed in; for
	// database_authenticatable it is the first 29 characters of the bcrypt
	// encrypted_password. Devise loads the user only if the record's salt
	// still equals it, so a password change ends every session
	// (lib/devise/models/authenticatable.rb, serialize_from_session). An
	// application that can read its users table should check it too. ""
	// when Devise stored nil.
	Salt string

	// LastRequestAt is warden.user.<scope>.session["last_request_at"],
	// which Devise's timeoutable module updates on every request; the
	// zero time when absent.
	LastRequestAt time.Time
}

// WardenUser returns the Devise user of scope from a session read by
// RailsCookies.Session: the session entry "warden.user.<scope>.key" holds
// [record.to_key, record.authenticatable_salt]
// (lib/devise/models/authenticatable.rb, serialize_into_session). The
// older [class_name, to_key, salt] form is accepted too. It returns an
// error wrapping ErrNoUser when nobody is signed in for scope, and
// ErrInvalid when the entry has another shape.
func WardenUser(session map[string]any, scope string) (Warden, error) {
	name := "warden.user." + scope + ".key"
	fail := func(reason Reason, detail string) (Warden, error) {
		return Warden{}, &DecodeError{Jar: "session entry", Name: name, Reason: reason, Detail: detail}
	}
	raw, ok := session[name]
	if !ok || raw == nil {
		return fail(ReasonNoUser, "")
	}
	a, ok := raw.([]any)
	if ok && len(a) == 3 {
		if _, isClass := a[0].(string); isClass {
			a = a[1:]
		}
	}
	if !ok || len(a) != 2 {
		return fail(ReasonDeserializeFailed, "want [to_key, salt]")
	}
	key, ok := a[0].([]any)
	if !ok {
		// A bare id, as some custom serializers store it.
		key = []any{a[0]}
	}
	if len(key) == 0 {
		return fail(ReasonDeserializeFailed, "empty to_key")
	}
	parts := make([]string, len(key))
	for i, k := range key {
		switch k.(type) {
		case int64, *big.Int, string:
		default:
			return fail(ReasonDeserializeFailed, fmt.Sprintf("to_key holds a %T", k))
		}
		parts[i], _ = RubyToS(k)
	}
	w := Warden{Scope: scope, Key: key, ID: strings.Join(parts, "/"), IDParts: parts}
	if parts[0] == "" {
		return fail(ReasonDeserializeFailed, "empty id")
	}
	switch s := a[1].(type) {
	case string:
		w.Salt = s
	case nil:
	default:
		return fail(ReasonDeserializeFailed, fmt.Sprintf("salt is a %T", a[1]))
	}
	if data, ok := session["warden.user."+scope+".session"].(map[string]any); ok {
		switch t := data["last_request_at"].(type) {
		case int64:
			w.LastRequestAt = time.Unix(t, 0)
		case float64:
			w.LastRequestAt = time.Unix(0, int64(t*1e9))
		case string:
			if p, err := time.Parse(time.RFC3339Nano, t); err == nil {
				w.LastRequestAt = p
			}
		}
	}
	return w, nil
}
