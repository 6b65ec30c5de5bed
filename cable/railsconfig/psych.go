package railsconfig

// This file holds what Ruby's YAML loader, Psych, does differently from the
// YAML library: Psych resolves plain scalars by the YAML 1.1 rules of its
// ScalarScanner (psych/lib/psych/scalar_scanner.rb, tokenize), which the
// YAML 1.2 library does not follow (yes/on/off booleans, any-case null and
// booleans, :symbols, 0123 as octal, 1:30 as sexagesimal, 1,000 and 1_000 as
// integers, 1e5 as a string). The parse tree itself comes from the library,
// a port of libyaml, the parser Psych wraps.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// nodeKind is the kind of a yamlNode.
type nodeKind int

const (
	scalarNode nodeKind = iota
	mapNode
	seqNode
)

// yamlNode is a YAML node after aliases and merge keys are resolved.
type yamlNode struct {
	kind nodeKind
	line int

	// scalars
	value  string
	quoted bool // quoted or a block scalar (| or >): a string, never resolved

	// mappings, in order
	keys []string
	vals []*yamlNode

	// sequences
	items []*yamlNode
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

// rubyKind is the class of the Ruby value Psych makes of a plain scalar.
type rubyKind int

const (
	rubyString rubyKind = iota
	rubyNil
	rubyBool
	rubyInteger
	rubyFloat
	rubySymbol
	rubyTime
	rubyDate
)

var rubyKindNames = [...]string{"String", "nil", "boolean", "Integer", "Float", "Symbol", "Time", "Date"}

func (k rubyKind) String() string { return rubyKindNames[k] }

// psychScalar is the Ruby value of a scalar: its kind, and for a String,
// Symbol, boolean or Integer its to_s.
type psychScalar struct {
	kind rubyKind
	s    string // to_s; empty for nil, Float, Time and Date
	i    int64  // an Integer's value
}

// The patterns of Psych's ScalarScanner (psych 4 and 5,
// lib/psych/scalar_scanner.rb). Ruby's ^ and $ match at line ends, but a
// scalar with a newline never reaches them. [[:alpha:]] is Unicode in Ruby:
// letters, letter numbers and combining marks here.
var (
	psychStringish  = regexp.MustCompile(`^[^0-9.:\-]?[\p{L}\p{Nl}\p{Mn}\p{Mc}_\s!@#$%^&*(){}<>|/\\~;=]+`)
	psychNotSpecial = regexp.MustCompile(`(?i)^[^ytonf~]`)
	psychNull       = regexp.MustCompile(`(?i)^null$`)
	psychTrue       = regexp.MustCompile(`(?i)^(yes|true|on)$`)
	psychFalse      = regexp.MustCompile(`(?i)^(no|false|off)$`)
	psychTime       = regexp.MustCompile(`^-?\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|\s+)\d{1,2}:\d\d:\d\d(?:\.\d*)?(?:\s*(?:Z|[-+]\d{1,2}:?(?:\d\d)?))?$`)
	psychDate       = regexp.MustCompile(`^\d{4}-(?:1[012]|0\d|\d)-(?:[12]\d|3[01]|0\d|\d)$`)
	psychInf        = regexp.MustCompile(`(?i)^[-+]?\.inf$`)
	psychNaN        = regexp.MustCompile(`(?i)^\.nan$`)
	psychSymbol     = regexp.MustCompile(`^:.`)
	psychQuotedSym  = regexp.MustCompile(`^:(["'])(.*)`)
	psychSexagesInt = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}$`)
	psychSexagesFlt = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}\.[0-9_]*$`)
	psychFloat      = regexp.MustCompile(`^(?:[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?)$`)
	psychInteger    = regexp.MustCompile(`^(?:[-+]?0b[0-1_,]+|[-+]?0[0-7_,]+|[-+]?(?:0|[1-9](?:[0-9]|,[0-9]|_[0-9])*)|[-+]?0x[0-9a-fA-F_,]+)$`)
)

// resolvePlain returns what Psych's ScalarScanner#tokenize makes of the
// plain scalar s, in the same order of tests.
func resolvePlain(s string) (psychScalar, error) {
	if s == "" {
		return psychScalar{kind: rubyNil}, nil
	}
	switch {
	case psychStringish.MatchString(s) || strings.Contains(s, "\n"):
		if utf8.RuneCountInString(s) > 5 || psychNotSpecial.MatchString(s) {
			return psychScalar{kind: rubyString, s: s}, nil
		}
		switch {
		case s == "~" || psychNull.MatchString(s):
			return psychScalar{kind: rubyNil}, nil
		case psychTrue.MatchString(s):
			return psychScalar{kind: rubyBool, s: "true", i: 1}, nil
		case psychFalse.MatchString(s):
			return psychScalar{kind: rubyBool, s: "false"}, nil
		}
		return psychScalar{kind: rubyString, s: s}, nil
	case psychTime.MatchString(s):
		return psychScalar{kind: rubyTime}, nil // or a String if Time.utc refuses it
	case psychDate.MatchString(s):
		// Date.strptime(s, "%Y-%m-%d"), which refuses 2024-02-30: a
		// String then.
		if _, err := time.Parse("2006-1-2", s); err != nil {
			return psychScalar{kind: rubyString, s: s}, nil
		}
		return psychScalar{kind: rubyDate}, nil
	case psychInf.MatchString(s) || psychNaN.MatchString(s):
		return psychScalar{kind: rubyFloat}, nil
	case psychSymbol.MatchString(s):
		name := s[1:]
		if m := psychQuotedSym.FindStringSubmatch(s); m != nil {
			// /^:(["'])(.*)\1/: the name runs to the last matching quote.
			if j := strings.LastIndex(m[2], m[1]); j >= 0 {
				name = strings.TrimPrefix(m[2][:j], ":")
			}
		}
		return psychScalar{kind: rubySymbol, s: name}, nil
	case psychSexagesInt.MatchString(s):
		// Psych multiplies the parts, from the left, by 60**|e-2|: 1:30
		// is 1*3600 + 30*60 = 5400, and 1:30:15 is 5415 (verified
		// against Ruby in TestPsychScalars).
		parts := strings.Split(s, ":")
		var total int64
		for e, p := range parts {
			n, err := rubyToI(p)
			if err != nil {
				return psychScalar{}, err
			}
			mult := int64(1)
			for range abs(e - 2) {
				mult *= 60
			}
			total += n * mult
		}
		return psychScalar{kind: rubyInteger, s: strconv.FormatInt(total, 10), i: total}, nil
	case psychSexagesFlt.MatchString(s):
		return psychScalar{kind: rubyFloat}, nil
	case psychFloat.MatchString(s):
		if s == "." || s == "+." || s == "-." {
			return psychScalar{kind: rubyString, s: s}, nil
		}
		return psychScalar{kind: rubyFloat}, nil
	case psychInteger.MatchString(s):
		// parse_int: Integer(string.gsub(/[,_]/, "")), where a leading 0
		// means octal.
		digits := strings.NewReplacer(",", "", "_", "").Replace(s)
		i, err := strconv.ParseInt(digits, 0, 64)
		if err != nil {
			return psychScalar{}, fmt.Errorf("%s: integer out of range", s)
		}
		return psychScalar{kind: rubyInteger, s: strconv.FormatInt(i, 10), i: i}, nil
	}
	return psychScalar{kind: rubyString, s: s}, nil
}

// rubyToI is Ruby's String#to_i on the digits of a sexagesimal part.
func rubyToI(s string) (int64, error) {
	i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: integer out of range", s)
	}
	return i, nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// ruby returns the Ruby value of scalar n: a quoted or block scalar is a
// String; a plain one is resolved as Psych does.
func (n *yamlNode) ruby() (psychScalar, error) {
	if n.quoted {
		return psychScalar{kind: rubyString, s: n.value}, nil
	}
	v, err := resolvePlain(n.value)
	if err != nil {
		return v, fmt.Errorf("line %d: %w", n.line, err)
	}
	return v, nil
}

// isNull reports whether n is a scalar that Psych reads as nil: empty, ~ or
// null in any case, unquoted.
func (n *yamlNode) isNull() bool {
	if n.kind != scalarNode || n.quoted {
		return false
	}
	v, err := resolvePlain(n.value)
	return err == nil && v.kind == rubyNil
}

// keyName returns the name of a mapping key as Rails looks it up after
// deep_symbolize_keys and with_indifferent_access: the to_s of what Psych
// reads, so :url is "url".
func (n *yamlNode) keyName() (string, error) {
	v, err := n.ruby()
	if err != nil {
		return "", err
	}
	switch v.kind {
	case rubyFloat, rubyTime, rubyDate:
		return n.value, nil // no setting has such a name
	}
	return v.s, nil // "" for nil, as nil.to_s
}

// str returns a scalar as Ruby's to_s of what Psych reads: booleans become
// "true" or "false", a :symbol its name, an integer its decimal digits
// (0x1F is "31"), anything else its text. A plain scalar that Psych reads as
// a Float, Time or Date is an error rather than a guess at Ruby's to_s.
func (n *yamlNode) str(key string) (string, error) {
	if n.kind != scalarNode {
		return "", fmt.Errorf("line %d: %s is not a string", n.line, key)
	}
	v, err := n.ruby()
	if err != nil {
		return "", err
	}
	switch v.kind {
	case rubyFloat, rubyTime, rubyDate:
		return "", fmt.Errorf("line %d: %s %q is a %s to Rails, not a string: quote it", n.line, key, n.value, v.kind)
	}
	return v.s, nil
}

func (n *yamlNode) strPtr(key string) (*string, error) {
	s, err := n.str(key)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// intPtr returns an Integer, or a string of decimal digits.
func (n *yamlNode) intPtr(key string) (*int, error) {
	if n.kind == scalarNode && !n.quoted {
		if v, err := resolvePlain(n.value); err == nil && v.kind == rubyInteger {
			i := int(v.i)
			return &i, nil
		}
	}
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
		if v, err := resolvePlain(n.value); err == nil && v.kind == rubyBool {
			return v.i == 1, nil
		}
	}
	return false, fmt.Errorf("line %d: %s is not true or false", n.line, key)
}
