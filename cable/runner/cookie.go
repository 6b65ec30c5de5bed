package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"

	"github.com/gocable/gocable/auth"
)

const cookieUsage = `usage: gocable cookie [auth flags] --header 'a=1; user_id=...' [--name NAME] [--jar JAR]
       gocable cookie [auth flags] --name NAME --value VALUE [--jar JAR]
       gocable cookie [auth flags] --header '...' --identity

Decodes Rails cookies with the server's settings (the same flags and
environment variables as gocable itself) and prints the value as JSON on
stdout, or why it was refused on stderr. VALUE is the cookie as the browser
sends it, still percent-escaped. JAR is encrypted (default), signed or session;
the cookie named by -session-key is read as the session. Without --name,
every cookie of the header is tried. With --identity, the server's
-identify rules are applied to the header and the identity is printed
(rules of the same identifier are tried in order, as the server does).

Exit status: 0 decoded, 1 refused, 2 usage or configuration error.

`

// runCookie is the "gocable cookie" diagnostic subcommand.
func runCookie(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gocable cookie", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, cookieUsage)
		fs.PrintDefaults()
	}
	var ac authConfig
	ac.register(fs)
	header := fs.String("header", "", "a Cookie header: name=value pairs separated by ;")
	name := fs.String("name", "", "the cookie to decode")
	value := fs.String("value", "", "the cookie's value, as sent (%-escaped)")
	jar := fs.String("jar", "", "encrypted, signed or session (default: session for the -session-key cookie, else encrypted)")
	identity := fs.Bool("identity", false, "print the identity the server's -identify rules give for --header")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "gocable cookie: %s\n", msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage(fmt.Sprintf("unexpected arguments %q", fs.Args()))
	case *header == "" && *value == "":
		return usage("give --header or --value (see -h)")
	case *header != "" && *value != "":
		return usage("give --header or --value, not both")
	case *identity && *header == "":
		return usage("--identity needs --header")
	case *jar != "" && *jar != "encrypted" && *jar != "signed" && *jar != "session":
		return usage(fmt.Sprintf("--jar %q: want encrypted, signed or session", *jar))
	}

	if *identity {
		return printIdentity(&ac, *header, stdout, stderr)
	}

	cfg, err := ac.railsConfig()
	if err != nil {
		return usage(err.Error())
	}
	if cfg.SecretKeyBase == "" {
		return usage("no secret_key_base: set SECRET_KEY_BASE or --secret-key-base")
	}
	cookies, err := auth.NewRailsCookies(cfg)
	if err != nil {
		return usage(err.Error())
	}
	if *jar == "session" && *name == "" {
		if cfg.SessionKey == "" {
			return usage("--jar session needs --session-key or --name")
		}
		*name = cfg.SessionKey
	}
	if *value != "" && *name == "" {
		return usage("--value needs --name")
	}

	if *name != "" {
		raw := *value
		if *header != "" {
			raw = ""
		}
		v, j, err := decodeOne(cookies, cfg, *jar, *name, *header, raw)
		if err != nil {
			explain(stderr, cfg, j, *name, *header, raw, err)
			return 1
		}
		return printJSON(stdout, stderr, v)
	}

	// Every cookie of the header.
	out := map[string]any{}
	for _, n := range auth.CookieNames(*header) {
		v, j, err := decodeOne(cookies, cfg, *jar, n, *header, "")
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", n, err)
			continue
		}
		out[n] = map[string]any{"jar": j, "value": v}
	}
	if len(out) == 0 {
		fmt.Fprintln(stderr, "gocable cookie: no cookie of the header could be decoded")
		return 1
	}
	return printJSON(stdout, stderr, out)
}

// decodeOne reads one cookie from header (or its raw value) and returns the
// jar it used. With no jar given, the session cookie is read as the
// session, others as encrypted and then as signed.
func decodeOne(c *auth.RailsCookies, cfg auth.Config, jar, name, header, raw string) (any, string, error) {
	if jar == "" && name == cfg.SessionKey {
		jar = "session"
	}
	read := func(j auth.Jar) (any, error) {
		if header != "" {
			return c.Read(j, header, name)
		}
		return c.Decode(j, name, raw)
	}
	switch jar {
	case "session":
		v, err := read(auth.JarEncrypted)
		if err != nil {
			var de *auth.DecodeError
			if errors.As(err, &de) {
				de.Jar = "session"
			}
		}
		return v, "session", err
	case "signed":
		v, err := read(auth.JarSigned)
		return v, "signed", err
	case "encrypted":
		v, err := read(auth.JarEncrypted)
		return v, "encrypted", err
	}
	v, err := read(auth.JarEncrypted)
	if err == nil {
		return v, "encrypted", nil
	}
	if sv, serr := read(auth.JarSigned); serr == nil {
		return sv, "signed", nil
	} else if !errors.Is(err, auth.ErrInvalid) || reasonOf(err) == auth.ReasonMalformed && reasonOf(serr) != auth.ReasonMalformed {
		// The signed jar got further: report its reason.
		return nil, "signed", serr
	}
	return nil, "encrypted", err
}

func reasonOf(err error) auth.Reason {
	var de *auth.DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

// explain prints why a cookie was refused and, for an authentication
// failure, which other setting would have read it.
func explain(w io.Writer, cfg auth.Config, jar, name, header, raw string, err error) {
	fmt.Fprintf(w, "gocable cookie: %v\n", err)
	var de *auth.DecodeError
	if !errors.As(err, &de) {
		return
	}
	switch de.Reason {
	case auth.ReasonAuthFailed, auth.ReasonMalformed:
		hs := hints(cfg, jar, name, header, raw)
		if len(hs) == 0 && de.Reason == auth.ReasonAuthFailed {
			hs = append(hs, "no other key digest, cipher or HMAC digest reads it: check the secret_key_base, the salts and the rotations; or the cookie was altered")
		}
		for _, h := range hs {
			fmt.Fprintf(w, "hint: %s\n", h)
		}
	case auth.ReasonSerializerRefused:
		fmt.Fprintln(w, "hint: Rails would refuse it too; it reads with --cookies-serializer hybrid (or json_allow_marshal)")
	case auth.ReasonPurposeMismatch:
		fmt.Fprintln(w, "hint: the cookie was written under another name (see its purpose); Rails refuses it too")
	case auth.ReasonExpired:
		fmt.Fprintln(w, "hint: Rails refuses it too")
	}
}

// hints tries the settings an app may have without the operator knowing,
// and returns those that read the cookie.
func hints(cfg auth.Config, jar, name, header, raw string) []string {
	type variant struct {
		flag string
		edit func(*auth.Config)
	}
	var vs []variant
	for _, d := range []auth.Digest{auth.SHA1, auth.SHA256} {
		vs = append(vs, variant{"--key-digest " + strings.ToLower(string(d)), func(c *auth.Config) { c.KeyDigests = []auth.Digest{d} }})
	}
	if jar == "signed" {
		for _, d := range []auth.Digest{auth.SHA1, auth.SHA256, auth.SHA384, auth.SHA512} {
			vs = append(vs, variant{"--signed-cookie-digest " + strings.ToLower(string(d)), func(c *auth.Config) {
				c.SignedDigest = d
				c.KeyDigests = nil
			}})
		}
	} else {
		vs = append(vs, variant{"--authenticated-encryption=false", func(c *auth.Config) {
			c.LegacyEncryption = true
			c.NoCipherFallback = false
		}})
		vs = append(vs, variant{"--authenticated-encryption=true", func(c *auth.Config) {
			c.LegacyEncryption = false
			c.NoCipherFallback = false
		}})
		for _, d := range []auth.Digest{auth.SHA256, auth.SHA512} {
			vs = append(vs, variant{"--cookies-digest " + strings.ToLower(string(d)), func(c *auth.Config) { c.CookiesDigest = d }})
		}
	}
	var out []string
	for _, v := range vs {
		c := cfg
		c.KeyDigests = append([]auth.Digest(nil), cfg.KeyDigests...)
		v.edit(&c)
		if c.RailsVersion != "" && len(c.KeyDigests) > 0 && c.KeyDigests[0] != auth.SHA1 {
			c.RailsVersion = "" // SHA256 needs 7.0+ rules
		}
		rc, err := auth.NewRailsCookies(c)
		if err != nil {
			continue
		}
		j := auth.JarEncrypted
		if jar == "signed" {
			j = auth.JarSigned
		}
		if header != "" {
			_, err = rc.Read(j, header, name)
		} else {
			_, err = rc.Decode(j, name, raw)
		}
		if r := reasonOf(err); r == "" || r == auth.ReasonExpired || r == auth.ReasonPurposeMismatch || r == auth.ReasonDeserializeFailed || r == auth.ReasonSerializerRefused {
			out = append(out, "the cookie authenticates with "+v.flag)
		}
	}
	// The other jar, with the settings as given.
	other, otherJar := auth.JarSigned, "--jar signed"
	if jar == "signed" {
		other, otherJar = auth.JarEncrypted, "--jar encrypted"
	}
	if rc, err := auth.NewRailsCookies(cfg); err == nil {
		if header != "" {
			_, err = rc.Read(other, header, name)
		} else {
			_, err = rc.Decode(other, name, raw)
		}
		if r := reasonOf(err); r != auth.ReasonAuthFailed && r != auth.ReasonMalformed && r != auth.ReasonNoCookie {
			out = append(out, "it is a cookie of the other jar: "+otherJar)
		}
	}
	return out
}

// printIdentity runs the server's -identify rules on a request with
// header. The server's startup line about the GlobalID app goes to stderr;
// a refusal names each rule's reason, in order.
func printIdentity(ac *authConfig, header string, stdout, stderr io.Writer) int {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == "remote") {
				return slog.Attr{}
			}
			return a
		},
	}))
	a, err := ac.identifier(logger)
	if err != nil {
		fmt.Fprintf(stderr, "gocable cookie: %v\n", err)
		return 2
	}
	if a == nil {
		fmt.Fprintln(stderr, "gocable cookie: no -identify rules: the server accepts everyone with an empty identity")
		return 2
	}
	r := httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("Cookie", header)
	id, err := a.Authenticate(r.Context(), r)
	if err != nil {
		fmt.Fprintf(stderr, "gocable cookie: the server would reject this connection: %v\n", err)
		return 1
	}
	return printJSON(stdout, stderr, map[string]any{"identity": id, "connection_identifier": id.ConnectionIdentifier()})
}

func printJSON(stdout, stderr io.Writer, v any) int {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "gocable cookie: the value cannot be printed as JSON: %v\n", err)
		return 1
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return 1
	}
	return 0
}
