package runner

// This file reads a Rails config/cable.yml: the ERB subset such files use,
// then the YAML subset, then the settings of one environment. There is no
// YAML library among our dependencies, so the parser below is small and
// strict: whatever it does not understand is an error that names the line,
// never a silent guess.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// cableSettings is what gocable uses from one environment of cable.yml. As
// in Rails, keys may be written as symbols (":url") too; a key given as null
// counts as missing.
type cableSettings struct {
	Adapter       string  // "redis" when missing (actioncable/lib/action_cable/server/configuration.rb, pubsub_adapter)
	URL           string  // "" when missing
	ChannelPrefix *string // nil when missing or null; "" is a prefix (channel_prefix.rb)
	ID            *string // "id": the Redis client name; nil when missing

	// Connection options that redis-rb takes besides url, which override
	// the URL's parts (redis-rb lib/redis/client.rb, _parse_options).
	Host, Path, Username, Password *string
	Port, DB                       *int
	SSL                            *bool
	SSLVerifyNone                  bool // ssl_params: {verify_mode: OpenSSL::SSL::VERIFY_NONE}

	// Sentinel: "sentinels" as a list of {host:, port:} mappings or of
	// "host:port" strings; "name" is the master name (else the URL's
	// host, as redis-rb reads it).
	Sentinels        []string
	MasterName       string
	SentinelUsername string
	SentinelPassword string

	// Ignored lists the keys that gocable does not use, such as
	// reconnect_attempts or driver, for a log line.
	Ignored []string
}

// loadCableYML reads the settings of environment env from the cable.yml at
// path, rendering its ERB with lookupEnv as the process environment.
func loadCableYML(path, env string, lookupEnv func(string) (string, bool)) (*cableSettings, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCableYML(path, src, env, lookupEnv)
}

// parseCableYML is loadCableYML on the file's contents; name is used in
// errors.
func parseCableYML(name string, src []byte, env string, lookupEnv func(string) (string, bool)) (*cableSettings, error) {
	text, err := renderERB(string(src), lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	root, err := parseYAML(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, err := selectEnv(root, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// selectEnv extracts environment env as Rails' config_for does
// (railties/lib/rails/application.rb): the env section deep-merged over
// the "shared" section, if any. Unlike Rails, which then falls back to a
// Redis on localhost, a missing section is an error.
func selectEnv(root *yamlNode, env string) (*cableSettings, error) {
	if root == nil || root.isNull() {
		return nil, errors.New("the file is empty")
	}
	if root.kind != mapNode {
		return nil, fmt.Errorf("line %d: the top level is not a mapping of environments", root.line)
	}
	section, shared := root.get(env), root.get("shared")
	if section != nil && section.isNull() {
		section = nil
	}
	if shared != nil && shared.isNull() {
		shared = nil
	}
	switch {
	case section == nil && shared == nil:
		return nil, fmt.Errorf("no %q environment (found: %s)", env, strings.Join(root.keys, ", "))
	case section != nil && !section.isNull() && section.kind != mapNode:
		return nil, fmt.Errorf("line %d: environment %q is not a mapping", section.line, env)
	case shared != nil && !shared.isNull() && shared.kind != mapNode:
		return nil, fmt.Errorf("line %d: \"shared\" is not a mapping", shared.line)
	}
	m := deepMerge(shared, section)
	if m == nil {
		m = &yamlNode{kind: mapNode}
	}
	return settingsFrom(m)
}

// deepMerge returns b deep-merged over a, as ActiveSupport's deep_merge:
// mappings merge key by key, anything else in b (null included) replaces a.
// A nil a or b is missing.
func deepMerge(a, b *yamlNode) *yamlNode {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	if a.kind != mapNode || b.kind != mapNode {
		return b
	}
	out := &yamlNode{kind: mapNode, line: b.line}
	for i, k := range a.keys {
		out.set(k, a.vals[i])
	}
	for i, k := range b.keys {
		out.set(k, deepMerge(out.get(k), b.vals[i]))
	}
	return out
}

// settingsFrom reads the keys of one environment.
func settingsFrom(m *yamlNode) (*cableSettings, error) {
	s := &cableSettings{Adapter: "redis"}
	for i, key := range m.keys {
		v := m.vals[i]
		if v.isNull() {
			continue // as Ruby's nil: the default applies
		}
		var err error
		switch key {
		case "adapter":
			s.Adapter, err = v.str(key)
		case "url":
			s.URL, err = v.str(key)
		case "channel_prefix":
			s.ChannelPrefix, err = v.strPtr(key)
		case "id":
			s.ID, err = v.strPtr(key)
		case "host":
			s.Host, err = v.strPtr(key)
		case "path":
			s.Path, err = v.strPtr(key)
		case "username":
			s.Username, err = v.strPtr(key)
		case "password":
			s.Password, err = v.strPtr(key)
		case "port":
			s.Port, err = v.intPtr(key)
		case "db":
			s.DB, err = v.intPtr(key)
		case "ssl":
			var b bool
			b, err = v.boolean(key)
			s.SSL = &b
		case "ssl_params":
			err = s.readSSLParams(v)
		case "sentinels":
			err = s.readSentinels(v)
		case "name":
			s.MasterName, err = v.str(key)
		case "role":
			var role string
			role, err = v.str(key)
			if err == nil && role != "master" {
				err = fmt.Errorf("line %d: role %q: gocable subscribes through the Sentinel master only", v.line, role)
			}
		case "sentinel_username":
			s.SentinelUsername, err = v.str(key)
		case "sentinel_password":
			s.SentinelPassword, err = v.str(key)
		default:
			s.Ignored = append(s.Ignored, key)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// readSSLParams reads ssl_params, of which gocable understands verify_mode
// (OpenSSL::SSL::VERIFY_NONE is 0, VERIFY_PEER 1), as Heroku's Redis
// instructions use it.
func (s *cableSettings) readSSLParams(v *yamlNode) error {
	if v.kind != mapNode {
		return fmt.Errorf("line %d: ssl_params is not a mapping", v.line)
	}
	for i, k := range v.keys {
		switch k {
		case "verify_mode":
			n, err := v.vals[i].intPtr("ssl_params.verify_mode")
			if err != nil {
				return err
			}
			switch *n {
			case 0:
				s.SSLVerifyNone = true
			case 1:
			default:
				return fmt.Errorf("line %d: ssl_params.verify_mode %d: want 0 (VERIFY_NONE) or 1 (VERIFY_PEER)", v.vals[i].line, *n)
			}
		default:
			return fmt.Errorf("line %d: ssl_params.%s is not supported by gocable (only verify_mode is)", v.vals[i].line, k)
		}
	}
	return nil
}

// readSentinels reads a list of {host:, port:} mappings or "host:port"
// strings, as redis-rb takes them.
func (s *cableSettings) readSentinels(v *yamlNode) error {
	if v.kind != seqNode {
		return fmt.Errorf("line %d: sentinels is not a list", v.line)
	}
	for _, item := range v.items {
		switch item.kind {
		case scalarNode:
			addr, err := item.str("sentinels")
			if err != nil {
				return err
			}
			s.Sentinels = append(s.Sentinels, addr)
		case mapNode:
			host, port := "", 26379
			for i, k := range item.keys {
				var err error
				switch k {
				case "host":
					host, err = item.vals[i].str("sentinels.host")
				case "port":
					var p *int
					p, err = item.vals[i].intPtr("sentinels.port")
					if p != nil {
						port = *p
					}
				case "password":
					s.SentinelPassword, err = item.vals[i].str("sentinels.password")
				case "username":
					s.SentinelUsername, err = item.vals[i].str("sentinels.username")
				default:
					err = fmt.Errorf("line %d: sentinels.%s is not supported by gocable", item.vals[i].line, k)
				}
				if err != nil {
					return err
				}
			}
			if host == "" {
				return fmt.Errorf("line %d: a sentinel has no host", item.line)
			}
			s.Sentinels = append(s.Sentinels, host+":"+strconv.Itoa(port))
		default:
			return fmt.Errorf("line %d: a sentinel is neither host:port nor a mapping", item.line)
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// ERB

// renderERB renders the ERB that cable.yml files use: <%= expr %> output
// tags whose expression is built from ENV["X"], ENV.fetch("X"),
// ENV.fetch("X", default), ENV.fetch("X") { default }, string and integer
// literals, nil, ||, and the constants OpenSSL::SSL::VERIFY_NONE and
// VERIFY_PEER; <%# comments %>; and <%% for a literal "<%". Anything else,
// code tags included, is an error. Rails renders with ERB.new(src).result
// (activesupport/lib/active_support/configuration_file.rb), without a trim
// mode, so the text around tags is kept as is.
func renderERB(src string, lookupEnv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	line := 1
	for {
		i := strings.Index(src, "<%")
		if i < 0 {
			b.WriteString(src)
			return b.String(), nil
		}
		b.WriteString(src[:i])
		line += strings.Count(src[:i], "\n")
		src = src[i+2:]
		if strings.HasPrefix(src, "%") { // <%% is a literal <%
			b.WriteString("<%")
			src = src[1:]
			continue
		}
		end := strings.Index(src, "%>")
		if end < 0 {
			return "", fmt.Errorf("line %d: unterminated ERB tag", line)
		}
		tag := src[:end]
		src = src[end+2:]
		tagLine := line
		line += strings.Count(tag, "\n")
		switch {
		case strings.HasPrefix(tag, "#"):
			// comment
		case strings.HasPrefix(tag, "="):
			v, err := evalRuby(strings.TrimSpace(tag[1:]), lookupEnv)
			if err != nil {
				return "", fmt.Errorf("line %d: <%%=%s%%>: %w", tagLine, tag[1:], err)
			}
			b.WriteString(v.String())
		default:
			return "", fmt.Errorf("line %d: ERB tag <%%%s%%> is not supported: gocable understands only <%%= %%> output tags with ENV lookups and literals", tagLine, tag)
		}
	}
}

// rubyValue is the value of a Ruby expression in an ERB tag: a string, an
// integer (kept as its text) or nil.
type rubyValue struct {
	s   string
	nil bool
}

// String returns what ERB outputs for v: "" for nil.
func (v rubyValue) String() string { return v.s }

// evalRuby evaluates the expression of an output tag.
func evalRuby(expr string, lookupEnv func(string) (string, bool)) (rubyValue, error) {
	p := &rubyParser{src: expr, lookupEnv: lookupEnv}
	v, err := p.expr()
	if err != nil {
		return rubyValue{}, err
	}
	p.space()
	if p.pos < len(p.src) {
		return rubyValue{}, fmt.Errorf("unsupported Ruby at %q", p.src[p.pos:])
	}
	return v, nil
}

// rubyParser is a recursive-descent parser of the Ruby expressions that
// renderERB accepts; it evaluates as it parses.
type rubyParser struct {
	src       string
	pos       int
	lookupEnv func(string) (string, bool)
}

func (p *rubyParser) space() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

// eat consumes tok after optional space, reporting whether it was there.
func (p *rubyParser) eat(tok string) bool {
	p.space()
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *rubyParser) want(tok string) error {
	if !p.eat(tok) {
		return fmt.Errorf("want %q at %q", tok, p.src[p.pos:])
	}
	return nil
}

// expr = primary { "||" primary }, with Ruby's truthiness: the first value
// that is not nil. ("" is true in Ruby.)
func (p *rubyParser) expr() (rubyValue, error) {
	v, err := p.primary()
	if err != nil {
		return v, err
	}
	for p.eat("||") {
		w, err := p.primary()
		if err != nil {
			return w, err
		}
		if v.nil {
			v = w
		}
	}
	return v, nil
}

func (p *rubyParser) primary() (rubyValue, error) {
	p.space()
	rest := p.src[p.pos:]
	switch {
	case rest == "":
		return rubyValue{}, errors.New("missing expression")
	case rest[0] == '"' || rest[0] == '\'':
		s, err := p.stringLit()
		return rubyValue{s: s}, err
	case rest[0] >= '0' && rest[0] <= '9':
		n := p.pos
		for p.pos < len(p.src) && (p.src[p.pos] >= '0' && p.src[p.pos] <= '9' || p.src[p.pos] == '_') {
			p.pos++
		}
		return rubyValue{s: strings.ReplaceAll(p.src[n:p.pos], "_", "")}, nil
	case rest[0] == '(':
		p.pos++
		v, err := p.expr()
		if err != nil {
			return v, err
		}
		return v, p.want(")")
	case p.word("nil"):
		return rubyValue{nil: true}, nil
	case p.word("OpenSSL::SSL::VERIFY_NONE"):
		return rubyValue{s: "0"}, nil
	case p.word("OpenSSL::SSL::VERIFY_PEER"):
		return rubyValue{s: "1"}, nil
	case p.word("ENV"):
		return p.env()
	}
	return rubyValue{}, fmt.Errorf("unsupported Ruby at %q (gocable understands ENV[...], ENV.fetch(...), literals, nil and ||)", rest)
}

// word consumes w if it is not followed by an identifier character.
func (p *rubyParser) word(w string) bool {
	rest := p.src[p.pos:]
	if !strings.HasPrefix(rest, w) {
		return false
	}
	if len(rest) > len(w) {
		c := rest[len(w)]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' {
			return false
		}
	}
	p.pos += len(w)
	return true
}

// env parses what follows ENV: ["X"] or .fetch("X"[, default]) [{ default }].
func (p *rubyParser) env() (rubyValue, error) {
	if p.eat("[") {
		name, err := p.nameArg()
		if err != nil {
			return rubyValue{}, err
		}
		if err := p.want("]"); err != nil {
			return rubyValue{}, err
		}
		v, ok := p.lookupEnv(name)
		return rubyValue{s: v, nil: !ok}, nil
	}
	if !p.eat(".fetch") {
		return rubyValue{}, fmt.Errorf("unsupported use of ENV at %q", p.src[p.pos:])
	}
	if err := p.want("("); err != nil {
		return rubyValue{}, err
	}
	name, err := p.nameArg()
	if err != nil {
		return rubyValue{}, err
	}
	var def *rubyValue
	if p.eat(",") {
		d, err := p.expr()
		if err != nil {
			return rubyValue{}, err
		}
		def = &d
	}
	if err := p.want(")"); err != nil {
		return rubyValue{}, err
	}
	if p.eat("{") {
		// The block wins over a default argument, as in Ruby.
		d := rubyValue{nil: true}
		if !p.eat("}") {
			if d, err = p.expr(); err != nil {
				return rubyValue{}, err
			}
			if err := p.want("}"); err != nil {
				return rubyValue{}, err
			}
		}
		def = &d
	}
	if v, ok := p.lookupEnv(name); ok {
		return rubyValue{s: v}, nil
	}
	if def == nil {
		return rubyValue{}, fmt.Errorf("ENV.fetch(%q): %s is not set (Rails would raise KeyError)", name, name)
	}
	return *def, nil
}

func (p *rubyParser) nameArg() (string, error) {
	p.space()
	if p.pos >= len(p.src) || p.src[p.pos] != '"' && p.src[p.pos] != '\'' {
		return "", fmt.Errorf("want a quoted variable name at %q", p.src[p.pos:])
	}
	return p.stringLit()
}

// stringLit parses a single- or double-quoted Ruby string literal without
// interpolation.
func (p *rubyParser) stringLit() (string, error) {
	q := p.src[p.pos]
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == q:
			return b.String(), nil
		case c == '#' && q == '"' && p.pos < len(p.src) && p.src[p.pos] == '{':
			return "", errors.New("string interpolation #{...} is not supported")
		case c == '\\' && p.pos < len(p.src):
			e := p.src[p.pos]
			p.pos++
			if q == '\'' {
				if e != '\\' && e != '\'' {
					b.WriteByte('\\')
				}
				b.WriteByte(e)
				continue
			}
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 's':
				b.WriteByte(' ')
			case '0':
				b.WriteByte(0)
			case 'e':
				b.WriteByte(0x1b)
			case '\\', '"', '#', '\'':
				b.WriteByte(e)
			default:
				return "", fmt.Errorf("unsupported escape \\%c in a Ruby string", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated Ruby string")
}

// ---------------------------------------------------------------------------
// YAML

// nodeKind is the kind of a yamlNode.
type nodeKind int

const (
	scalarNode nodeKind = iota
	mapNode
	seqNode
)

// yamlNode is a parsed YAML node.
type yamlNode struct {
	kind nodeKind
	line int

	// scalars
	value  string
	quoted bool // a quoted scalar is always a string, never null or a bool

	// mappings, in order
	keys []string
	vals []*yamlNode

	// sequences
	items []*yamlNode
}

// isNull reports whether n is a null scalar: empty, ~ or null, unquoted.
func (n *yamlNode) isNull() bool {
	if n.kind != scalarNode || n.quoted {
		return false
	}
	switch n.value {
	case "", "~", "null", "Null", "NULL":
		return true
	}
	return false
}

func (n *yamlNode) get(key string) *yamlNode {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

func (n *yamlNode) set(key string, v *yamlNode) {
	for i, k := range n.keys {
		if k == key {
			n.vals[i] = v
			return
		}
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
}

// yamlBools are the plain scalars that Psych, Ruby's YAML 1.1 parser,
// reads as booleans.
var yamlBools = map[string]bool{
	"true": true, "True": true, "TRUE": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"false": false, "False": false, "FALSE": false, "no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

// str returns a scalar as Ruby's to_s of what Psych reads: booleans become
// "true" or "false", a plain :symbol its name, anything else its text.
func (n *yamlNode) str(key string) (string, error) {
	if n.kind != scalarNode {
		return "", fmt.Errorf("line %d: %s is not a string", n.line, key)
	}
	if !n.quoted {
		if b, ok := yamlBools[n.value]; ok {
			return strconv.FormatBool(b), nil
		}
		if len(n.value) > 1 && n.value[0] == ':' {
			return n.value[1:], nil
		}
	}
	return n.value, nil
}

func (n *yamlNode) strPtr(key string) (*string, error) {
	s, err := n.str(key)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (n *yamlNode) intPtr(key string) (*int, error) {
	s, err := n.str(key)
	if err != nil {
		return nil, err
	}
	i, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
	if err != nil {
		return nil, fmt.Errorf("line %d: %s %q is not an integer", n.line, key, s)
	}
	return &i, nil
}

func (n *yamlNode) boolean(key string) (bool, error) {
	if n.kind == scalarNode && !n.quoted {
		if b, ok := yamlBools[n.value]; ok {
			return b, nil
		}
	}
	return false, fmt.Errorf("line %d: %s is not true or false", n.line, key)
}

// yamlLine is one line of the document that is not blank or only a
// comment.
type yamlLine struct {
	num    int    // from 1
	indent int    // columns of leading spaces
	text   string // the rest, comments included
}

// yamlParser parses the block-style YAML subset used by Rails config files:
// block mappings and sequences, plain, single- and double-quoted scalars on
// one line, one-line flow collections ([a, b], {k: v}), comments, one
// document (an optional leading ---), anchors (&a), aliases (*a) and merge
// keys (<<: *a, <<: [*a, *b]). Block scalars (| and >), multi-line scalars,
// tags, complex keys, tabs in indentation and duplicate keys are errors.
type yamlParser struct {
	lines   []yamlLine
	i       int
	anchors map[string]*yamlNode
}

// parseYAML parses src; errors start with the line number.
func parseYAML(src string) (*yamlNode, error) {
	p := &yamlParser{anchors: make(map[string]*yamlNode)}
	if !utf8.ValidString(src) {
		return nil, errors.New("line 1: the file is not valid UTF-8")
	}
	src = strings.TrimPrefix(src, "\ufeff")
	started := false
	for n, raw := range strings.Split(src, "\n") {
		raw = strings.TrimRight(raw, " \t\r")
		body := strings.TrimLeft(raw, " ")
		if body == "" || body[0] == '#' {
			continue
		}
		indent := len(raw) - len(body)
		if body[0] == '\t' {
			return nil, fmt.Errorf("line %d: tab in indentation", n+1)
		}
		if indent == 0 {
			switch {
			case body == "---" && !started && len(p.lines) == 0:
				started = true
				continue
			case body == "---" || strings.HasPrefix(body, "--- "):
				return nil, fmt.Errorf("line %d: only one YAML document is supported", n+1)
			case body == "...":
				continue
			case body[0] == '%':
				return nil, fmt.Errorf("line %d: YAML directives are not supported", n+1)
			}
		}
		p.lines = append(p.lines, yamlLine{num: n + 1, indent: indent, text: body})
	}
	if len(p.lines) == 0 {
		return nil, nil
	}
	root, err := p.block(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		l := p.lines[p.i]
		return nil, fmt.Errorf("line %d: unexpected indentation or content %q", l.num, l.text)
	}
	return root, nil
}

// block parses the block node whose first line is the current one, which
// must be indented at least min.
func (p *yamlParser) block(min int) (*yamlNode, error) {
	l := p.lines[p.i]
	if l.indent < min {
		return nil, fmt.Errorf("line %d: bad indentation", l.num)
	}
	if l.text == "-" || strings.HasPrefix(l.text, "- ") {
		return p.sequence(l.indent)
	}
	return p.mapping(l.indent)
}

// mapping parses a block mapping whose keys are at column indent.
func (p *yamlParser) mapping(indent int) (*yamlNode, error) {
	m := &yamlNode{kind: mapNode, line: p.lines[p.i].num}
	explicit := make(map[string]bool)
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent < indent {
			break
		}
		if l.indent > indent {
			return nil, fmt.Errorf("line %d: bad indentation of a mapping entry", l.num)
		}
		if l.text == "-" || strings.HasPrefix(l.text, "- ") {
			return nil, fmt.Errorf("line %d: a list item where a mapping key was expected", l.num)
		}
		key, rest, err := splitKey(l)
		if err != nil {
			return nil, err
		}
		p.i++
		v, err := p.value(rest, l, indent)
		if err != nil {
			return nil, err
		}
		if key == "<<" {
			if err := p.merge(m, v, l.num); err != nil {
				return nil, err
			}
			continue
		}
		if explicit[key] {
			return nil, fmt.Errorf("line %d: duplicate key %q", l.num, key)
		}
		explicit[key] = true
		m.set(key, v)
	}
	return m, nil
}

// merge applies a merge key as Psych does (psych/visitors/to_ruby.rb,
// revive_hash): the merged mapping's keys overwrite the keys set so far, and
// keys set later overwrite them; with a list, earlier mappings win.
func (p *yamlParser) merge(m, v *yamlNode, line int) error {
	var sources []*yamlNode
	switch v.kind {
	case mapNode:
		sources = []*yamlNode{v}
	case seqNode:
		for i := len(v.items) - 1; i >= 0; i-- {
			sources = append(sources, v.items[i])
		}
	default:
		return fmt.Errorf("line %d: << must be given a mapping, an alias of one, or a list of them", line)
	}
	for _, src := range sources {
		if src.kind != mapNode {
			return fmt.Errorf("line %d: << must be given a mapping, an alias of one, or a list of them", line)
		}
		for i, k := range src.keys {
			m.set(k, src.vals[i])
		}
	}
	return nil
}

// splitKey splits a mapping entry line into its key and the text after
// the colon.
func splitKey(l yamlLine) (key, rest string, err error) {
	t := l.text
	switch t[0] {
	case '"', '\'':
		k, n, err := quoted(t, l.num)
		if err != nil {
			return "", "", err
		}
		after := t[n:]
		if after != ":" && !strings.HasPrefix(after, ": ") {
			return "", "", fmt.Errorf("line %d: want \": \" after the key %s", l.num, t[:n])
		}
		return k, strings.TrimPrefix(after[1:], " "), nil
	case '?':
		return "", "", fmt.Errorf("line %d: complex keys (?) are not supported", l.num)
	case '&', '*', '!', '[', '{', '|', '>', '@', '`', '%':
		return "", "", fmt.Errorf("line %d: unsupported key %q", l.num, t)
	}
	i := strings.Index(t, ": ")
	if i < 0 {
		if !strings.HasSuffix(t, ":") {
			return "", "", fmt.Errorf("line %d: want \"key: value\", got %q", l.num, t)
		}
		i = len(t) - 1
	}
	key = t[:i]
	if j := strings.Index(key, " #"); j >= 0 {
		return "", "", fmt.Errorf("line %d: want \"key: value\", got %q", l.num, t)
	}
	if len(key) > 1 && key[0] == ':' {
		key = key[1:] // a Ruby symbol key; Rails reads keys indifferently
	}
	rest = ""
	if i+1 < len(t) {
		rest = strings.TrimLeft(t[i+2:], " ")
	}
	return key, rest, nil
}

// value parses the value of a mapping entry or list item: rest is the text
// after "key:" or "- " on line l, and the node may continue on the
// following lines, indented more than parent.
func (p *yamlParser) value(rest string, l yamlLine, parent int) (*yamlNode, error) {
	anchor := ""
	if strings.HasPrefix(rest, "&") {
		name, after, _ := strings.Cut(rest[1:], " ")
		if name == "" {
			return nil, fmt.Errorf("line %d: empty anchor name", l.num)
		}
		anchor, rest = name, strings.TrimLeft(after, " ")
	}
	if strings.HasPrefix(rest, "#") {
		rest = ""
	}
	var n *yamlNode
	var err error
	if rest == "" {
		// A nested block, or null.
		if p.i < len(p.lines) && (p.lines[p.i].indent > parent ||
			// A list may sit at its key's indentation.
			p.lines[p.i].indent == parent && !l.isItem() && (p.lines[p.i].text == "-" || strings.HasPrefix(p.lines[p.i].text, "- "))) {
			n, err = p.block(parent)
			if err != nil {
				return nil, err
			}
		} else {
			n = &yamlNode{kind: scalarNode, line: l.num}
		}
	} else {
		n, err = p.inline(rest, l.num)
		if err != nil {
			return nil, err
		}
		if p.i < len(p.lines) && p.lines[p.i].indent > parent && !l.isItem() {
			return nil, fmt.Errorf("line %d: multi-line values are not supported (or bad indentation)", p.lines[p.i].num)
		}
	}
	if anchor != "" {
		p.anchors[anchor] = n
	}
	return n, nil
}

// isItem reports whether l is a list item line.
func (l yamlLine) isItem() bool { return l.text == "-" || strings.HasPrefix(l.text, "- ") }

// sequence parses a block sequence whose dashes are at column indent.
func (p *yamlParser) sequence(indent int) (*yamlNode, error) {
	s := &yamlNode{kind: seqNode, line: p.lines[p.i].num}
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent < indent || l.indent == indent && !l.isItem() {
			break
		}
		if l.indent > indent {
			return nil, fmt.Errorf("line %d: bad indentation of a list item", l.num)
		}
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		col := l.indent + len(l.text) - len(rest)
		if rest != "" && !strings.HasPrefix(rest, "#") && isMappingEntry(rest) {
			// "- key: value": a mapping whose keys are at col; parse
			// the rest of this line as its first entry.
			p.lines[p.i] = yamlLine{num: l.num, indent: col, text: rest}
			m, err := p.mapping(col)
			if err != nil {
				return nil, err
			}
			s.items = append(s.items, m)
			continue
		}
		p.i++
		v, err := p.value(rest, l, indent)
		if err != nil {
			return nil, err
		}
		s.items = append(s.items, v)
	}
	return s, nil
}

// isMappingEntry reports whether the text of a list item starts a mapping.
func isMappingEntry(t string) bool {
	switch t[0] {
	case '"', '\'':
		if _, n, err := quoted(t, 0); err == nil {
			return t[n:] == ":" || strings.HasPrefix(t[n:], ": ")
		}
		return false
	case '[', '{', '&', '*', '!', '|', '>':
		return false
	}
	i := strings.Index(t, ": ")
	if j := strings.Index(t, " #"); j >= 0 && (i < 0 || j < i) {
		return strings.HasSuffix(strings.TrimSpace(t[:j]), ":")
	}
	return i >= 0 || strings.HasSuffix(t, ":")
}

// inline parses a node written on the rest of one line: a scalar, an
// alias or a flow collection, followed by an optional comment.
func (p *yamlParser) inline(t string, line int) (*yamlNode, error) {
	switch t[0] {
	case '|', '>':
		return nil, fmt.Errorf("line %d: block scalars (| and >) are not supported", line)
	case '!':
		return nil, fmt.Errorf("line %d: YAML tags (%s) are not supported", line, strings.Fields(t)[0])
	case '@', '`', '%', ',', ']', '}':
		return nil, fmt.Errorf("line %d: a plain value cannot start with %q; quote it", line, t[0])
	case '-', '?':
		if t == "-" || t == "?" || t[1] == ' ' {
			return nil, fmt.Errorf("line %d: %q is not allowed here", line, t)
		}
	case '[', '{':
		f := &flowParser{src: t, line: line, y: p}
		n, err := f.node()
		if err != nil {
			return nil, err
		}
		f.space()
		if f.pos < len(t) && t[f.pos] != '#' {
			return nil, fmt.Errorf("line %d: unexpected %q after a flow collection", line, t[f.pos:])
		}
		return n, nil
	case '*':
		name, after, _ := strings.Cut(t[1:], " ")
		if after = strings.TrimLeft(after, " "); after != "" && after[0] != '#' {
			return nil, fmt.Errorf("line %d: unexpected %q after the alias *%s", line, after, name)
		}
		return p.alias(name, line)
	case '"', '\'':
		s, n, err := quoted(t, line)
		if err != nil {
			return nil, err
		}
		if after := strings.TrimLeft(t[n:], " "); after != "" && after[0] != '#' {
			return nil, fmt.Errorf("line %d: unexpected %q after a quoted value", line, after)
		}
		return &yamlNode{kind: scalarNode, line: line, value: s, quoted: true}, nil
	}
	v := t
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimRight(v[:i], " ")
	}
	if strings.Contains(v, ": ") || strings.HasSuffix(v, ":") {
		return nil, fmt.Errorf("line %d: %q: a mapping is not allowed here; quote the value if it contains \": \"", line, v)
	}
	return &yamlNode{kind: scalarNode, line: line, value: v}, nil
}

func (p *yamlParser) alias(name string, line int) (*yamlNode, error) {
	n, ok := p.anchors[name]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown alias *%s (anchors must be defined before use)", line, name)
	}
	return n, nil
}

// quoted parses the quoted scalar at the start of t, returning its value and
// the length of its source.
func quoted(t string, line int) (string, int, error) {
	q := t[0]
	var b strings.Builder
	for i := 1; i < len(t); i++ {
		c := t[i]
		if q == '\'' {
			if c == '\'' {
				if i+1 < len(t) && t[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				return b.String(), i + 1, nil
			}
			b.WriteByte(c)
			continue
		}
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			i++
			if i >= len(t) {
				return "", 0, fmt.Errorf("line %d: unterminated escape in a quoted value", line)
			}
			switch e := t[i]; e {
			case '0':
				b.WriteByte(0)
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 't', '\t':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'v':
				b.WriteByte('\v')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case 'e':
				b.WriteByte(0x1b)
			case ' ', '"', '/', '\\':
				b.WriteByte(e)
			case 'N':
				b.WriteString("\u0085")
			case '_':
				b.WriteString("\u00a0")
			case 'x', 'u', 'U':
				size := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if i+size >= len(t) {
					return "", 0, fmt.Errorf("line %d: short \\%c escape", line, e)
				}
				r, err := strconv.ParseUint(t[i+1:i+1+size], 16, 32)
				if err != nil || !utf8.ValidRune(rune(r)) {
					return "", 0, fmt.Errorf("line %d: bad \\%c escape %q", line, e, t[i+1:i+1+size])
				}
				b.WriteRune(rune(r))
				i += size
			default:
				return "", 0, fmt.Errorf("line %d: unknown escape \\%c", line, e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("line %d: unterminated quoted value (multi-line quoted values are not supported)", line)
}

// flowParser parses a one-line flow collection.
type flowParser struct {
	src  string
	pos  int
	line int
	y    *yamlParser
}

func (f *flowParser) space() {
	for f.pos < len(f.src) && f.src[f.pos] == ' ' {
		f.pos++
	}
}

func (f *flowParser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: "+format, append([]any{f.line}, args...)...)
}

// node parses a flow node: a collection, a quoted or plain scalar, or an
// alias, with an optional anchor.
func (f *flowParser) node() (*yamlNode, error) {
	f.space()
	if f.pos >= len(f.src) {
		return nil, f.errorf("unterminated flow collection (multi-line ones are not supported)")
	}
	anchor := ""
	if f.src[f.pos] == '&' {
		start := f.pos + 1
		for f.pos < len(f.src) && f.src[f.pos] != ' ' {
			f.pos++
		}
		anchor = f.src[start:f.pos]
		f.space()
	}
	var n *yamlNode
	var err error
	switch c := f.src[f.pos]; c {
	case '[':
		n, err = f.seq()
	case '{':
		n, err = f.mapping()
	case '"', '\'':
		var s string
		var size int
		s, size, err = quoted(f.src[f.pos:], f.line)
		f.pos += size
		n = &yamlNode{kind: scalarNode, line: f.line, value: s, quoted: true}
	case '*':
		start := f.pos + 1
		for f.pos < len(f.src) && !strings.ContainsRune(" ,]}", rune(f.src[f.pos])) {
			f.pos++
		}
		n, err = f.y.alias(f.src[start:f.pos], f.line)
	case '!', '|', '>', '@', '`', '%', '?':
		return nil, f.errorf("unsupported %q in a flow collection", c)
	default:
		start := f.pos
		for f.pos < len(f.src) && !strings.ContainsRune(",]}", rune(f.src[f.pos])) &&
			!(f.src[f.pos] == ':' && (f.pos+1 == len(f.src) || strings.ContainsRune(" ,]}", rune(f.src[f.pos+1])))) &&
			!(f.src[f.pos] == '#' && f.src[f.pos-1] == ' ') {
			f.pos++
		}
		n = &yamlNode{kind: scalarNode, line: f.line, value: strings.TrimRight(f.src[start:f.pos], " ")}
	}
	if err != nil {
		return nil, err
	}
	if anchor != "" {
		f.y.anchors[anchor] = n
	}
	return n, nil
}

func (f *flowParser) seq() (*yamlNode, error) {
	f.pos++ // [
	s := &yamlNode{kind: seqNode, line: f.line}
	for {
		f.space()
		if f.pos < len(f.src) && f.src[f.pos] == ']' {
			f.pos++
			return s, nil
		}
		n, err := f.node()
		if err != nil {
			return nil, err
		}
		s.items = append(s.items, n)
		f.space()
		switch {
		case f.pos < len(f.src) && f.src[f.pos] == ',':
			f.pos++
		case f.pos < len(f.src) && f.src[f.pos] == ']':
		case f.pos >= len(f.src):
			return nil, f.errorf("unterminated flow collection (multi-line ones are not supported)")
		default:
			return nil, f.errorf("want , or ] in a flow list")
		}
	}
}

func (f *flowParser) mapping() (*yamlNode, error) {
	f.pos++ // {
	m := &yamlNode{kind: mapNode, line: f.line}
	for {
		f.space()
		if f.pos < len(f.src) && f.src[f.pos] == '}' {
			f.pos++
			return m, nil
		}
		k, err := f.node()
		if err != nil {
			return nil, err
		}
		if k.kind != scalarNode {
			return nil, f.errorf("flow mapping keys must be scalars")
		}
		key := k.value
		if !k.quoted && len(key) > 1 && key[0] == ':' {
			key = key[1:]
		}
		f.space()
		if f.pos >= len(f.src) || f.src[f.pos] != ':' {
			return nil, f.errorf("want : after the key %q in a flow mapping", key)
		}
		f.pos++
		f.space()
		v := &yamlNode{kind: scalarNode, line: f.line}
		if f.pos < len(f.src) && f.src[f.pos] != ',' && f.src[f.pos] != '}' {
			if v, err = f.node(); err != nil {
				return nil, err
			}
		}
		if key == "<<" {
			if err := f.y.merge(m, v, f.line); err != nil {
				return nil, err
			}
		} else {
			if m.get(key) != nil {
				return nil, f.errorf("duplicate key %q", key)
			}
			m.set(key, v)
		}
		f.space()
		switch {
		case f.pos < len(f.src) && f.src[f.pos] == ',':
			f.pos++
		case f.pos < len(f.src) && f.src[f.pos] == '}':
		case f.pos >= len(f.src):
			return nil, f.errorf("unterminated flow collection (multi-line ones are not supported)")
		default:
			return nil, f.errorf("want , or } in a flow mapping")
		}
	}
}
