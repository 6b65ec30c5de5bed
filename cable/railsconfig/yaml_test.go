package railsconfig

import (
	"strconv"
	"strings"
	"testing"
)

// dump renders a node compactly: {k: v}, [a], "string", null, plain.
func dump(n *yamlNode) string {
	if n == nil {
		return "<nil>"
	}
	switch n.kind {
	case mapNode:
		parts := make([]string, len(n.keys))
		for i, k := range n.keys {
			parts[i] = k + ": " + dump(n.vals[i])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case seqNode:
		parts := make([]string, len(n.items))
		for i, it := range n.items {
			parts[i] = dump(it)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if n.isNull() {
		return "null"
	}
	if n.quoted {
		return strconv.Quote(n.value)
	}
	return n.value
}

func TestParseYAML(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"mapping", "a: 1\nb: two\n", "{a: 1, b: two}"},
		{"nested", "production:\n  adapter: redis\n  url: redis://h:6379/1\n", "{production: {adapter: redis, url: redis://h:6379/1}}"},
		{"document start and comments", "---\n# c\na: 1 # trailing\n\n  # indented comment\nb: x#not-a-comment\n", "{a: 1, b: x#not-a-comment}"},
		{"null forms", "a:\nb: ~\nc: null\nd: ''\n", `{a: null, b: null, c: null, d: ""}`},
		{"double-quoted escapes", `a: "x\"y\\z\t\u00e9\x41"`, `{a: "x\"y\\z\té` + `A"}`},
		{"single-quoted", `a: 'it''s # not a comment'`, `{a: "it's # not a comment"}`},
		{"quoted key", `"a b": 1`, "{a b: 1}"},
		{"symbol key", ":url: redis://x", "{url: redis://x}"},
		{"url with colons and hash", "url: redis://:p#w@h:6379/0", "{url: redis://:p#w@h:6379/0}"},
		{"anchor and merge", "base: &b\n  a: 1\n  b: 2\nprod:\n  <<: *b\n  b: 3\n", "{base: {a: 1, b: 2}, prod: {a: 1, b: 3}}"},
		{"merge after a key overwrites it (Psych)", "base: &b\n  a: 1\nprod:\n  a: 0\n  <<: *b\n", "{base: {a: 1}, prod: {a: 1}}"},
		{"merge list: earlier wins", "x: &x\n  a: 1\ny: &y\n  a: 2\n  b: 2\nz:\n  <<: [*x, *y]\n", "{x: {a: 1}, y: {a: 2, b: 2}, z: {a: 1, b: 2}}"},
		{"scalar anchor", "a: &v hello\nb: *v\n", "{a: hello, b: hello}"},
		{"block list", "s:\n  - a\n  - 'b'\n", `{s: [a, "b"]}`},
		{"block list at key indentation", "s:\n- a\n- b\nt: 1\n", "{s: [a, b], t: 1}"},
		{"list of mappings", "s:\n  - host: h1\n    port: 1\n  - host: h2\n", "{s: [{host: h1, port: 1}, {host: h2}]}"},
		{"flow list", "s: [a, \"b, c\", *x]\n", "<alias error>"},
		{"flow mapping", "s: {host: h, port: 6379, url: redis://x:1/2}\n", "{s: {host: h, port: 6379, url: redis://x:1/2}}"},
		{"nested flow", "s: [{host: a}, [1, 2], {}, []] # c\n", "{s: [{host: a}, [1, 2], {}, []]}"},
		{"document end", "a: 1\n...\n", "{a: 1}"},
		{"CRLF", "a: 1\r\nb: 2\r\n", "{a: 1, b: 2}"},
		{"empty", "# nothing\n", "<nil>"},
		{"empty document", "---\n...\n", "null"},
		// What the hand-written parser refused and Psych reads, as the
		// Psych differential test (TestParseYAMLLikePsych) checks.
		{"block scalar", "a: |\n  text\n", `{a: "text\n"}`},
		{"folded scalar", "a: >-\n  one\n  two\n", `{a: "one two"}`},
		{"multi-line plain", "a: one\n  two\n", "{a: one two}"},
		{"top-level scalar", "just text\n", "just text"},
		{"explicit key", "? a\n: b\n", "{a: b}"},
		{"quoted merge key merges", "x: &x {a: 1}\ny: {\"<<\": *x, b: 2}\n", "{x: {a: 1}, y: {a: 1, b: 2}}"},
		{"merge key in a flow mapping", "x: &x {a: 1}\ny: {a: 2, <<: *x}\n", "{x: {a: 1}, y: {a: 1}}"},
		{"a key after a merge is no duplicate", "x: &x {a: 1}\ny:\n  <<: *x\n  a: 2\n", "{x: {a: 1}, y: {a: 2}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := parseYAML(tt.in)
			if tt.want == "<alias error>" {
				if err == nil || !strings.Contains(err.Error(), "unknown alias *x") {
					t.Errorf("parseYAML(%q) = %s, %v; want an unknown alias error", tt.in, dump(n), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseYAML(%q): %v", tt.in, err)
			}
			if got := dump(n); got != tt.want {
				t.Errorf("parseYAML(%q) = %s; want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseYAMLErrors(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"tab indentation", "a:\n\tb: 1\n", "line 2: tab in indentation"},
		{"tag", "a: !ruby/object:Foo {}\n", "YAML tags"},
		{"duplicate key", "a: 1\nb: 2\na: 3\n", `line 3: duplicate key "a"`},
		{"unknown alias", "a: *nope\n", "line 1: unknown alias *nope"},
		{"bad indentation", "a:\n    b: 1\n  c: 2\n", "line 3:"},
		{"value with colon-space", "a: b: c\n", "a mapping is not allowed here"},
		{"unterminated quote", "a: \"abc\n", "unterminated quoted value"},
		{"junk after quote", "a: \"abc\" x\n", "after a quoted value"},
		{"multi-document", "a: 1\n---\nb: 2\n", "only one YAML document"},
		{"directive", "%YAML 1.1\n---\na: 1\n", "directives"},
		{"complex key", "? [a]\n: b\n", "complex keys"},
		{"mapping as a key", "{a: 1}: b\n", "line 1: complex keys"},
		{"recursive alias", "a: &a\n  b: *a\n", "line 2: alias *a refers to the node that contains it"},
		{"standard tag", "a: !!str 1\n", "line 1: YAML tags (!!str) are not supported"},
		{"error after a multi-line value", "a:\n  b: [1,\n    2]\nc: @x\n", "line 4: found character that cannot start any token"},
		{"unterminated quote on a later line", "a: 1\nb: 2\nc: 'x\nd: 4\n", "line 3: unterminated quoted value"},
		{"tab after content", "a:\n  b: 1\n\tc: 2\n", "line 3: tab in indentation"},
		{"unterminated flow", "a: [1, 2\n", "unterminated flow collection"},
		{"merge of a scalar", "x: &x 1\ny:\n  <<: *x\n", "<< must be given a mapping"},
		{"bad escape", `a: "\q"`, `unknown escape \q`},
		{"list where a key is expected", "a: 1\n- b\n", "a list item where a mapping key was expected"},
		{"indicator", "a: @x\n", "cannot start with"},
		{"invalid UTF-8", "a: \xff\n", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := parseYAML(tt.in)
			if err == nil {
				t.Fatalf("parseYAML(%q) = %s; want an error containing %q", tt.in, dump(n), tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseYAML(%q) error = %q; want it to contain %q", tt.in, err, tt.wantErr)
			}
		})
	}
}
