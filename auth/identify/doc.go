// Package identify identifies ActionCable connections from Rails cookies,
// the Rails session, Devise's Warden user or gorilla/securecookie tokens,
// by rules: the Go form of what an ApplicationCable::Connection's connect
// method computes for each identified_by name. It is what the --identify
// flag of gocable runs, for programs that build their own server.
//
// A rule names an identifier, a source and, optionally, a GlobalID model:
//
//	rules := []identify.Rule{
//		must(identify.ParseRule("current_user=encrypted:user_id@User")),
//		must(identify.ParseRule("current_user=session:warden:user@User")),
//	}
//	a, err := identify.New(identify.Config{
//		Cookies:     cookies, // *auth.RailsCookies
//		SessionKey:  "_myapp_session",
//		GlobalIDApp: "myapp", // bin/rails runner 'p GlobalID.app'
//	}, rules...)
//	srv := &cable.Server{Authenticator: a}
//
// is the Go form of
//
//	identified_by :current_user
//	def connect
//	  self.current_user = User.find_by(id: cookies.encrypted[:user_id]) ||
//	    env["warden"].user || reject_unauthorized_connection
//	end
//
// except that no record is loaded: a genuine cookie is trusted.
//
// # Several sources for one identifier
//
// Rules with the same name are tried in the order given, as Ruby's ||
// tries its operands: the first rule that gives a value wins. A rule gives
// nothing when its cookie, session entry, Warden user or token is missing,
// altered, expired, signed for another purpose or cannot be deserialized,
// since Rails' cookie jars read all of these as nil
// (actionpack/lib/action_dispatch/middleware/cookies.rb:
// EncryptedKeyRotatingCookieJar#parse rescues InvalidMessage and
// InvalidSignature, SignedKeyRotatingCookieJar uses
// MessageVerifier#verified, SerializedCookieJars#parse rescues the
// serializer's errors), and an empty value gives nothing too. The reason
// each rule gave nothing is logged at debug. A value that no identifier
// can have (a hash or an array where an id was expected) refuses the
// connection at once: it shows a wrong rule, not a signed-out user.
//
// When no rule of an identifier gives a value, the connection is refused:
// Authenticate returns an error wrapping cable.ErrUnauthorized and the
// *auth.DecodeError of each rule tried, which the server answers with
// {"type":"disconnect","reason":"unauthorized","reconnect":false}.
//
// # Rendering
//
// A value renders as Rails renders an identifier
// (actioncable/lib/action_cable/connection/identification.rb): with a
// model, the record's to_gid_param (cable.GlobalIDParam, with
// Config.GlobalIDApp); otherwise Ruby's to_s. Config.GlobalIDApp must
// equal the application's GlobalID.app, or remote disconnects from Rails
// miss the connection.
//
// # Logs
//
// At debug: why each rule gave nothing, and the connection identifier of
// each identified connection. At info: the refusal of a request that
// carried no Cookie header at all, which is what a cable served from
// another host than the app receives unless the app sets its cookies for
// the parent domain. Cookie values and secrets are never logged; the debug
// line of an identified connection holds its identifiers as Rails renders
// them (a GlobalID param, or the value's to_s), as Rails' own
// "Registered connection" line does.
//
// # Concurrency
//
// An Authenticator is immutable once built and safe for concurrent use;
// it starts no goroutine.
package identify
