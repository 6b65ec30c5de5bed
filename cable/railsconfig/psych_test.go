package railsconfig

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// psychTree renders n as testdata/rails/psych_load.rb renders what Ruby
// loads, for the differential tests.
func psychTree(t *testing.T, n *yamlNode) any {
	t.Helper()
	if n == nil {
		return map[string]any{"class": "nil"}
	}
	switch n.kind {
	case mapNode:
		pairs := make([]any, len(n.keys))
		for i, k := range n.keys {
			pairs[i] = []any{k, psychTree(t, n.vals[i])}
		}
		return map[string]any{"map": pairs}
	case seqNode:
		items := make([]any, len(n.items))
		for i, it := range n.items {
			items[i] = psychTree(t, it)
		}
		return map[string]any{"seq": items}
	}
	v, err := n.ruby()
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	out := map[string]any{"class": v.kind.String()}
	switch v.kind {
	case rubyString, rubySymbol, rubyInteger, rubyBool:
		out["s"] = v.s
	}
	return out
}

// psychLoad runs testdata/rails/psych_load.rb on docs and returns its
// result for each, as JSON.
func psychLoad(t *testing.T, docs []string) []string {
	t.Helper()
	if err := requireRuby(); err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(docs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ruby", filepath.Join("..", "..", "testdata", "rails", "psych_load.rb"))
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("psych_load.rb: %v\n%s", err, stderrOf(err))
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil || len(raw) != len(docs) {
		t.Fatalf("psych_load.rb printed %q (%v); want %d results", out, err, len(docs))
	}
	res := make([]string, len(raw))
	for i, r := range raw {
		res[i] = canonJSON(t, r)
	}
	return res
}

// canonJSON re-encodes JSON so that equal trees compare equal as strings.
func canonJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestPsychScalars checks the typing of plain scalars, each of them a place
// where Psych's YAML 1.1 rules differ from YAML 1.2 or are easy to get
// wrong, against Ruby itself. want is the Ruby class and to_s.
func TestPsychScalars(t *testing.T) {
	tests := []struct{ in, want string }{
		// booleans: YAML 1.1 words, in any case, up to 5 characters
		{"yes", "boolean true"}, {"No", "boolean false"}, {"ON", "boolean true"}, {"off", "boolean false"},
		{"tRuE", "boolean true"}, {"FaLsE", "boolean false"}, {"y", "String y"}, {"n", "String n"},
		{"yes!", "String yes!"}, {"onion", "String onion"},
		// nil
		{"~", "nil "}, {"null", "nil "}, {"nUlL", "nil "}, {"nil", "String nil"}, {"none", "String none"},
		// symbols, as keys are in Rails' own templates
		{":url", "Symbol url"}, {`:"with space"`, "Symbol with space"}, {`:'q'`, "Symbol q"}, {"::x", "Symbol :x"},
		{"a:b", "String a:b"},
		// integers
		{"6379", "Integer 6379"}, {"-1", "Integer -1"}, {"+7", "Integer 7"}, {"0", "Integer 0"},
		{"0123", "Integer 83"}, {"0x1F", "Integer 31"}, {"0b101", "Integer 5"}, {"1_000", "Integer 1000"},
		{"1,000", "Integer 1000"}, {"1:30", "Integer 5400"}, {"1:30:15", "Integer 5415"}, {"-1:30", "Integer -1800"},
		{"09", "String 09"}, {"0o17", "String 0o17"},
		// floats, dates and times: only the class is compared
		{"1.5", "Float "}, {".5", "Float "}, {"1.", "Float "}, {".inf", "Float "}, {"-.Inf", "Float "}, {".NaN", "Float "},
		{"1:30.5", "Float "}, {".", "String ."},
		{"2024-01-02", "Date "}, {"2024-1-2", "Date "}, {"2024-02-30", "String 2024-02-30"},
		{"2024-01-02 10:00:00", "Time "}, {"2024-01-02T10:00:00Z", "Time "},
		// strings that look like something else in YAML 1.2
		{"1e5", "String 1e5"}, {"1.2.3", "String 1.2.3"}, {"10.0.0.1", "String 10.0.0.1"},
		{"redis://h:6379/1", "String redis://h:6379/1"}, {"myapp_production", "String myapp_production"},
		{"é", "String é"}, {"-x", "String -x"}, {"1-2", "String 1-2"},
	}
	docs := make([]string, len(tests))
	for i, tt := range tests {
		docs[i] = "v: " + tt.in
	}
	rails := psychLoad(t, docs)
	for i, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := parseYAML(docs[i])
			if err != nil {
				t.Fatalf("parseYAML(%q): %v", docs[i], err)
			}
			v, err := n.get("v").ruby()
			if err != nil {
				t.Fatalf("ruby() of %q: %v", tt.in, err)
			}
			if got := v.kind.String() + " " + v.s; got != tt.want {
				t.Errorf("%q is %q; want %q", tt.in, got, tt.want)
			}
			tree, _ := json.Marshal(psychTree(t, n))
			if got := canonJSON(t, tree); got != rails[i] {
				t.Errorf("%q: gocable reads\n %s\nRuby reads\n %s", docs[i], got, rails[i])
			}
		})
	}
}

// TestParseYAMLLikePsych parses documents, the valid ones of TestParseYAML
// and more, and compares the whole tree with what Ruby loads; documents
// that Psych refuses must be refused too.
func TestParseYAMLLikePsych(t *testing.T) {
	docs := []string{
		"a: 1\nb: two\n",
		"production:\n  adapter: redis\n  url: redis://h:6379/1\n",
		"---\n# c\na: 1 # trailing\n\n  # indented comment\nb: x#not-a-comment\n",
		"a:\nb: ~\nc: null\nd: ''\n",
		`a: "x\"y\\z\t\u00e9\x41"`,
		`a: 'it''s # not a comment'`,
		`"a b": 1`,
		":url: redis://x\n",
		"url: redis://:p#w@h:6379/0\n",
		"base: &b\n  a: 1\n  b: 2\nprod:\n  <<: *b\n  b: 3\n",
		"base: &b\n  a: 1\nprod:\n  a: 0\n  <<: *b\n",
		"x: &x\n  a: 1\ny: &y\n  a: 2\n  b: 2\nz:\n  <<: [*x, *y]\n",
		"x: &x {a: 1}\ny: {\"<<\": *x, b: 2}\n",
		"x: &x {a: 1}\ny: {a: 2, <<: *x}\n",
		"a: &v hello\nb: *v\n",
		"s:\n  - a\n  - 'b'\n",
		"s:\n- a\n- b\nt: 1\n",
		"s:\n  - host: h1\n    port: 1\n  - host: h2\n",
		"s: {host: h, port: 6379, url: redis://x:1/2}\n",
		"s: [{host: a}, [1, 2], {}, []] # c\n",
		"a: 1\n...\n",
		"a: 1\r\nb: 2\r\n",
		"a: |\n  text\n",
		"a: >-\n  one\n  two\n",
		"a: |+\n  kept\n\n",
		"a: one\n  two\n",
		"just text\n",
		"? a\n: b\n",
		"yes: 1\n1: x\n:sym: 2\n~: 3\n0x10: 4\n",
		"a: \"multi\n  line\"\n",
		// refused by both
		"a: b: c\n",
		"a:\n\tb: 1\n",
		"a: *nope\n",
		"a: [1, 2\n",
		"a: 'x\n",
	}
	rails := psychLoad(t, docs)
	for i, doc := range docs {
		t.Run(doc, func(t *testing.T) {
			n, err := parseYAML(doc)
			if strings.Contains(rails[i], `"error"`) {
				if err == nil {
					t.Errorf("parseYAML(%q) = %s; Ruby refuses it: %s", doc, dump(n), rails[i])
				}
				return
			}
			if err != nil {
				t.Fatalf("parseYAML(%q): %v; Ruby reads %s", doc, err, rails[i])
			}
			tree, _ := json.Marshal(psychTree(t, n))
			if got := canonJSON(t, tree); got != rails[i] {
				t.Errorf("%q: gocable reads\n %s\nRuby reads\n %s", doc, got, rails[i])
			}
		})
	}
}

// TestFixturesLikePsych compares the whole tree of each cable.yml of
// testdata/rails, its ERB rendered with an empty environment, with what
// Ruby loads from the same text.
func TestFixturesLikePsych(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "rails", "cable.*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	docs := make([]string, len(files))
	for i, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if docs[i], err = renderERB(string(src), envMap{}.lookup); err != nil {
			t.Fatalf("renderERB(%s): %v", f, err)
		}
	}
	rails := psychLoad(t, docs)
	for i, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			n, err := parseYAML(docs[i])
			if err != nil {
				t.Fatalf("parseYAML(%s): %v", f, err)
			}
			tree, _ := json.Marshal(psychTree(t, n))
			if got := canonJSON(t, tree); got != rails[i] {
				t.Errorf("%s: gocable reads\n %s\nRuby reads\n %s", f, got, rails[i])
			}
		})
	}
}
