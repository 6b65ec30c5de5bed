package railsconfig

// This file parses YAML with go.yaml.in/yaml/v3, a Go port of libyaml, the
// parser inside Ruby's Psych, so both read the same tree. Then it resolves
// aliases and merge keys as Psych's ToRuby visitor does
// (psych/lib/psych/visitors/to_ruby.rb, revive_hash), and leaves the scalar
// types to psych.go.

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// maxLocateLines bounds the files whose syntax errors are located line by
// line (see errorLine); cable.yml files have tens of lines.
const maxLocateLines = 2000

// parseYAML parses the single document of src; errors start with the line
// number. An empty document is nil.
//
// What Psych accepts and parseYAML refuses, so that nothing is read
// differently from Rails: tags (!ruby/object and the like, which Psych
// turns into Ruby objects), several documents (Psych reads the first one
// only), directives, keys that are not scalars, a merge key given a scalar,
// and duplicate keys (Psych keeps the last one; in a config file the first
// one is then a silent mistake).
func parseYAML(src string) (*yamlNode, error) {
	if !utf8.ValidString(src) {
		for i, l := range strings.Split(src, "\n") {
			if !utf8.ValidString(l) {
				return nil, fmt.Errorf("line %d: not valid UTF-8", i+1)
			}
		}
	}
	if err := checkDirectives(src); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(strings.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(src, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(src, err)
	default:
		return nil, fmt.Errorf("line %d: only one YAML document is supported (Rails reads the first one only)", next.Line)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	c := &converter{done: make(map[*yaml.Node]*yamlNode), active: make(map[*yaml.Node]bool)}
	return c.node(doc.Content[0])
}

// checkDirectives refuses %YAML and %TAG directives, which come before the
// first document.
func checkDirectives(src string) error {
	for i, l := range strings.Split(src, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "%"):
			return fmt.Errorf("line %d: YAML directives are not supported", i+1)
		case t == "" || strings.HasPrefix(t, "#"):
		default:
			return nil
		}
	}
	return nil
}

// converter turns a yaml.Node tree into yamlNodes, resolving each anchored
// node once, however many aliases name it.
type converter struct {
	done   map[*yaml.Node]*yamlNode
	active map[*yaml.Node]bool // being converted: an alias to one is a cycle
}

func (c *converter) node(n *yaml.Node) (*yamlNode, error) {
	if out, ok := c.done[n]; ok {
		return out, nil
	}
	if c.active[n] {
		return nil, fmt.Errorf("line %d: an alias refers to the node that contains it", n.Line)
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return nil, fmt.Errorf("line %d: YAML tags (%s) are not supported", n.Line, n.Tag)
	}
	c.active[n] = true
	defer delete(c.active, n)
	var out *yamlNode
	var err error
	switch n.Kind {
	case yaml.ScalarNode:
		quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0
		out = &yamlNode{kind: scalarNode, line: n.Line, value: n.Value, quoted: quoted}
	case yaml.AliasNode:
		if c.active[n.Alias] {
			return nil, fmt.Errorf("line %d: alias *%s refers to the node that contains it", n.Line, n.Value)
		}
		out, err = c.node(n.Alias)
	case yaml.SequenceNode:
		out = &yamlNode{kind: seqNode, line: n.Line}
		for _, item := range n.Content {
			v, err := c.node(item)
			if err != nil {
				return nil, err
			}
			out.items = append(out.items, v)
		}
	case yaml.MappingNode:
		out, err = c.mapping(n)
	default:
		err = fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	if err != nil {
		return nil, err
	}
	c.done[n] = out
	return out, nil
}

// mapping converts a mapping as Psych's revive_hash does: entries are set in
// order, and a merge key (<<) sets the keys of the mapping it names, so that
// they overwrite the keys set before it and are overwritten by the keys set
// after it.
func (c *converter) mapping(n *yaml.Node) (*yamlNode, error) {
	out := &yamlNode{kind: mapNode, line: n.Line}
	explicit := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		k, err := c.node(kn)
		if err != nil {
			return nil, err
		}
		if k.kind != scalarNode {
			return nil, fmt.Errorf("line %d: complex keys (a list or mapping as a key) are not supported", kn.Line)
		}
		v, err := c.node(vn)
		if err != nil {
			return nil, err
		}
		// Psych merges on "<<" unless the key is tagged !!str, quoted
		// or not; tags are refused above.
		if k.value == "<<" {
			if err := merge(out, v, kn.Line); err != nil {
				return nil, err
			}
			continue
		}
		name, err := k.keyName()
		if err != nil {
			return nil, err
		}
		if explicit[name] {
			return nil, fmt.Errorf("line %d: duplicate key %q", kn.Line, name)
		}
		explicit[name] = true
		out.set(name, v)
	}
	return out, nil
}

// merge applies a merge key as Psych does (psych/visitors/to_ruby.rb,
// revive_hash): the merged mapping's keys overwrite the keys set so far, and
// keys set later overwrite them; with a list, earlier mappings win.
func merge(m, v *yamlNode, line int) error {
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

// yamlErrorLine matches the position that the library puts in some of its
// messages ("yaml: line 3: ...").
var yamlErrorLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// syntaxError turns a parse error of the library into one that starts with
// the line. The library's line numbers are those of the enclosing node, or
// missing on the first line, so the line is found again: it is the first
// line such that the text up to it fails with the same message. Known
// messages get a hint after them.
func syntaxError(src string, err error) error {
	msg := err.Error()
	var libLine int
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		libLine, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	line := errorLine(src, msg)
	if line == 0 {
		line = max(libLine, 1)
	}
	text := ""
	if lines := strings.Split(src, "\n"); line <= len(lines) {
		text = lines[line-1]
	}
	return fmt.Errorf("line %d: %s", line, explain(msg, text))
}

// errorLine returns the first line n such that the first n lines of src fail
// to parse with message msg, or 0.
func errorLine(src, msg string) int {
	lines := strings.SplitAfter(src, "\n")
	if len(lines) > maxLocateLines {
		return 0
	}
	for n := 1; n <= len(lines); n++ {
		dec := yaml.NewDecoder(strings.NewReader(strings.Join(lines[:n], "")))
		var err error
		for err == nil {
			var doc yaml.Node
			err = dec.Decode(&doc)
		}
		if errors.Is(err, io.EOF) {
			continue
		}
		if yamlErrorLine.ReplaceAllString(err.Error(), "") == msg {
			return n
		}
	}
	return 0
}

var (
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
	afterQuote    = regexp.MustCompile(`("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')[ \t]*[^\s#,\]}:]`)
	badEscape     = regexp.MustCompile(`\\[^0abt\tnvfre "/\\N_LPxuU]`)
)

// explain rewords the library's message msg about line text, or adds a
// hint to it.
func explain(msg, text string) string {
	indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
	trimmed := strings.TrimSpace(text)
	switch {
	case unknownAnchor.MatchString(msg):
		return "unknown alias *" + unknownAnchor.FindStringSubmatch(msg)[1]
	case strings.Contains(indent, "\t"):
		return "tab in indentation: YAML indents with spaces (" + msg + ")"
	case msg == "found character that cannot start any token":
		return msg + ": a plain value cannot start with @, ` or a tab; quote it"
	case msg == "mapping values are not allowed in this context":
		return "a mapping is not allowed here (" + msg + "): quote a value that contains \": \""
	case msg == "found unexpected end of stream":
		return "unterminated quoted value (" + msg + ")"
	case strings.HasPrefix(msg, "did not find expected ',' or"):
		return "unterminated flow collection (" + msg + ")"
	case msg == "found unknown escape character":
		if e := badEscape.FindString(text); e != "" {
			return "unknown escape " + e + " in a double-quoted value"
		}
	case msg == "did not find expected key" && afterQuote.MatchString(text):
		return "text after a quoted value (" + msg + ")"
	case msg == "did not find expected key" && (trimmed == "-" || strings.HasPrefix(trimmed, "- ")):
		return "a list item where a mapping key was expected (" + msg + ")"
	}
	return msg
}
