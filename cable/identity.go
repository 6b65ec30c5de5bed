package cable

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Identity holds what a Rails connection declares with identified_by: each
// identifier's name and its value as Rails renders it in the connection
// identifier, that is the GlobalID param for a model (see GlobalIDParam) and
// to_s for anything else. For example
// Identity{"current_user": GlobalIDParam("myapp", "User", "7"), "tenant": "acme"}.
type Identity map[string]string

// ConnectionIdentifier returns the identifier Rails computes for a connection
// with these identifiers: the values sorted bytewise and joined with ":"
// (actioncable/lib/action_cable/connection/identification.rb,
// connection_identifier). An empty string is a value and takes part, as in
// Rails, which drops only nil and false: leave an identifier that is nil out
// of the map. It names the internal stream "action_cable/<id>" on which
// remote disconnects arrive; a connection whose identifier is "" has none,
// as Rails subscribes to it only when the identifier is present.
func (id Identity) ConnectionIdentifier() string {
	vals := make([]string, 0, len(id))
	for _, v := range id {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	return strings.Join(vals, ":")
}

// GlobalIDParam returns what Rails' to_gid_param gives for a record:
// the URL-safe Base64, without padding, of its GlobalID URI
// "gid://<app>/<model>/<id>" (rails/globalid lib/global_id/global_id.rb,
// to_param). id is the record's id as Ruby's to_s renders it; give several
// for a composite primary key (Rails 7.1+). As URI::GID.build does
// (rails/globalid lib/global_id/uri/gid.rb), each id is escaped with
// CGI.escape and they are joined with "/": the record "alice@example.com"
// is gid://myapp/User/alice%40example.com, and "john doe" is
// gid://myapp/User/john+doe. Compare what a Rails process computes, or a
// remote disconnect of such a user would miss its connections.
func GlobalIDParam(app, model string, id ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(globalIDURI(app, model, id)))
}

// globalIDURI renders gid://app/model/id, each id part escaped as Ruby's
// CGI.escape does: url.QueryEscape keeps the same unreserved set
// (A-Z a-z 0-9 - _ . ~), writes a space as "+" and uses upper-case hex.
func globalIDURI(app, model string, id []string) string {
	var b strings.Builder
	b.WriteString("gid://")
	b.WriteString(app)
	b.WriteByte('/')
	b.WriteString(model)
	for _, part := range id {
		b.WriteByte('/')
		b.WriteString(url.QueryEscape(part))
	}
	return b.String()
}

// Authenticator plays ActionCable::Connection::Base#connect: it turns the
// upgrade request (cookies, headers, query) into the connection's
// identifiers. An error rejects the connection as
// reject_unauthorized_connection does: the client gets
// {"type":"disconnect","reason":"unauthorized","reconnect":false} and the
// socket is closed (actioncable/lib/action_cable/connection/authorization.rb).
// The error is logged, never sent to the client. Authenticate should
// return when ctx ends: Server.Shutdown cancels it when it runs out of time.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Identity, error)
}

// AuthenticatorFunc adapts an ordinary function to an Authenticator.
type AuthenticatorFunc func(ctx context.Context, r *http.Request) (Identity, error)

// Authenticate calls f(ctx, r).
func (f AuthenticatorFunc) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	return f(ctx, r)
}
