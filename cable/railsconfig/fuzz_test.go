package railsconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseCable feeds arbitrary files to the reader: an operator's
// cable.yml may be anything, and none may panic or hang it (ERB, YAML
// aliases and merge keys included); each answer is settings or an error
// that names the file.
func FuzzParseCable(f *testing.F) {
	fixtures, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "rails", "cable.*.yml"))
	for _, p := range fixtures {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("a: &a\n  b: *a\n"))
	f.Add([]byte("production:\n  <<: *x\n"))
	f.Add([]byte("development:\n  url: <%= ENV.fetch(\"X\") { \"redis://\" } %>\n"))
	lookup := func(k string) (string, bool) { return "v-" + k, k != "UNSET" }
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, env := range []string{"development", "production"} {
			c, err := ParseCable("cable.yml", src, env, lookup)
			if (c == nil) == (err == nil) {
				t.Fatalf("ParseCable = %v, %v; want settings or an error", c, err)
			}
		}
	})
}
