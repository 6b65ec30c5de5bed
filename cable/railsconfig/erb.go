package railsconfig

import (
	"errors"
	"fmt"
	"strings"
)

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
