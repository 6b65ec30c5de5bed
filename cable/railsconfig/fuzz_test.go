package railsconfig

import (
	"os"
	"path/filepath"
	"strings"
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

// FuzzParseDatabase feeds arbitrary files to the database.yml reader, with
// URL overrides set or not: none may panic; each answer is a configuration
// or an error that names the file.
func FuzzParseDatabase(f *testing.F) {
	fixtures, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "rails", "solid_cable", "database.*.yml"))
	for _, p := range fixtures {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, false)
		}
	}
	f.Add([]byte("production:\n  cable:\n    url: postgres://u:p@h:1/d?sslmode=require\n"), true)
	f.Add([]byte("production: sqlite3:db.sqlite3\n"), false)
	f.Fuzz(func(t *testing.T, src []byte, urls bool) {
		lookup := func(k string) (string, bool) {
			if urls && (k == "CABLE_DATABASE_URL" || k == "DATABASE_URL") {
				return "mysql2://root@127.0.0.1:3306/x", true
			}
			return "", false
		}
		for _, name := range []string{"primary", "cable"} {
			d, err := ParseDatabase("database.yml", src, "production", name, lookup)
			if (d == nil) == (err == nil) {
				t.Fatalf("ParseDatabase = %v, %v; want a configuration or an error", d, err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "railsconfig: database.yml: ") {
				t.Fatalf("error %q does not name the file", err)
			}
		}
	})
}
