package railsconfig

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// solidCableApp is the directory of the config files of a fresh Rails 8 app
// with Solid Cable.
const solidCableApp = "../../testdata/rails/solid_cable"

func TestLoadDatabaseRailsNew(t *testing.T) {
	tests := []struct {
		file, env, name string
		vars            envMap
		want            string // Database.Redacted()
		params          string // a Params entry, key=value
	}{
		{"database.sqlite3.yml", "production", "cable", nil, `sqlite3 database "storage/production_cable.sqlite3"`, "migrations_paths=db/cable_migrate"},
		{"database.sqlite3.yml", "production", "primary", nil, `sqlite3 database "storage/production.sqlite3"`, "timeout=5000"},
		{"database.sqlite3.yml", "development", "primary", nil, `sqlite3 database "storage/development.sqlite3"`, "pool=5"},
		{"database.sqlite3.yml", "development", "primary", envMap{"RAILS_MAX_THREADS": "16"}, `sqlite3 database "storage/development.sqlite3"`, "pool=16"},
		{"database.postgresql.yml", "production", "cable", envMap{"MYAPP_DATABASE_PASSWORD": "pw"}, `postgresql database "myapp_production_cable" user "myapp"`, "encoding=unicode"},
		{"database.postgresql.yml", "development", "primary", nil, `postgresql database "myapp_development"`, "pool=5"},
		{"database.mysql.yml", "development", "cable", nil, `mysql2 127.0.0.1 database "myapp_development_cable" user "root"`, "encoding=utf8mb4"},
		{"database.mysql.yml", "development", "cable", envMap{"DB_HOST": "db.internal"}, `mysql2 db.internal database "myapp_development_cable" user "root"`, "migrations_paths=db/cable_migrate"},
		// CABLE_DATABASE_URL is merged over the cable configuration, its
		// parts winning (DatabaseConfigurations#environment_url_config).
		{"database.postgresql.yml", "production", "cable", envMap{"CABLE_DATABASE_URL": "postgres://u:p@db.internal:6432/cable_db?sslmode=require"}, `postgresql db.internal:6432 database "cable_db" user "u"`, "sslmode=require"},
		// DATABASE_URL is for primary only.
		{"database.postgresql.yml", "production", "cable", envMap{"DATABASE_URL": "postgres://elsewhere/x"}, `postgresql database "myapp_production_cable" user "myapp"`, "migrations_paths=db/cable_migrate"},
		{"database.postgresql.yml", "production", "primary", envMap{"DATABASE_URL": "postgres://elsewhere/x"}, `postgresql elsewhere database "x" user "myapp"`, "encoding=unicode"},
		{"database.sqlite3.yml", "production", "cable", envMap{"CABLE_DATABASE_URL": "sqlite3:storage/other.sqlite3"}, `sqlite3 database "storage/other.sqlite3"`, "timeout=5000"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.env+"/"+tt.name, func(t *testing.T) {
			d, err := LoadDatabase(filepath.Join(solidCableApp, tt.file), tt.env, tt.name, tt.vars.lookup)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Redacted(); got != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
			k, v, _ := strings.Cut(tt.params, "=")
			if d.Params[k] != v {
				t.Errorf("Params[%q] = %q; want %q (all: %v)", k, d.Params[k], v, d.Params)
			}
			if d.Env != tt.env || d.Name != tt.name {
				t.Errorf("Env, Name = %q, %q", d.Env, d.Name)
			}
			compareWithActiveRecord(t, filepath.Join(solidCableApp, tt.file), tt.env, tt.name, tt.vars, d)
		})
	}
}

func TestLoadDatabaseURLRules(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "database.yml")
	src := `production:
  primary:
    url: postgres://a:b@primary.internal/app?pool=7
    database: ignored
    host: ignored
  cable:
    adapter: sqlite3
    database: /var/lib/cable.sqlite3
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	// A url key wins over the keys beside it, and a configuration with a
	// url key is not overridden by DATABASE_URL.
	d, err := LoadDatabase(path, "production", "primary", envMap{"DATABASE_URL": "postgres://env/x"}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if d.Host != "primary.internal" || d.Database != "app" || d.Password != "b" || d.Params["pool"] != "7" || d.URLSource != "url" {
		t.Errorf("got %+v", d)
	}
	compareWithActiveRecord(t, path, "production", "primary", envMap{"DATABASE_URL": "postgres://env/x"}, d)
	d, err = LoadDatabase(path, "production", "cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Path("/srv/app"); got != "/var/lib/cable.sqlite3" {
		t.Errorf("absolute Path = %q", got)
	}
	compareWithActiveRecord(t, path, "production", "cable", nil, d)

	// No file, or no such configuration: the variable stands alone.
	d, err = LoadDatabase(filepath.Join(dir, "missing.yml"), "production", "cable", envMap{"CABLE_DATABASE_URL": "mysql://root@127.0.0.1:3306/c"}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if d.Adapter != "mysql2" || d.Port != 3306 || d.Database != "c" || d.URLSource != "CABLE_DATABASE_URL" {
		t.Errorf("got %+v", d)
	}

	// Errors name what is there.
	_, err = LoadDatabase(path, "production", "queue", nil)
	if err == nil || !strings.Contains(err.Error(), `no database configuration named "queue" (found: primary, cable)`) || !strings.HasPrefix(err.Error(), "railsconfig: ") {
		t.Errorf("err = %v", err)
	}
	_, err = LoadDatabase(path, "staging", "cable", nil)
	if err == nil || !strings.Contains(err.Error(), `no "staging" environment (found: production)`) {
		t.Errorf("err = %v", err)
	}
	_, err = LoadDatabase(filepath.Join(dir, "missing.yml"), "production", "cable", nil)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("err = %v", err)
	}
	if err := os.WriteFile(path, []byte("production:\n  cable: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = LoadDatabase(path, "production", "cable", nil); err == nil || !strings.Contains(err.Error(), "line ") {
		t.Errorf("broken YAML: err = %v", err)
	}
}

func TestDatabasePath(t *testing.T) {
	d := &Database{Database: "storage/production_cable.sqlite3"}
	if got, want := d.Path("/srv/app"), "/srv/app/storage/production_cable.sqlite3"; got != want {
		t.Errorf("Path = %q; want %q", got, want)
	}
	d.Database = ":memory:"
	if got := d.Path("/srv/app"); got != ":memory:" {
		t.Errorf("Path = %q", got)
	}
}

func TestCableYMLSolidCable(t *testing.T) {
	s, err := LoadCable(filepath.Join(solidCableApp, "cable.yml"), "production", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := s.SolidCable
	if s.Adapter != "solid_cable" || sc.DatabaseName() != "cable" || sc.Interval() != 100*time.Millisecond || sc.Retention() != 24*time.Hour || !sc.AutotrimOn() || sc.BatchSize() != 100 {
		t.Errorf("got %+v", sc)
	}
	if len(s.Ignored) != 0 {
		t.Errorf("Ignored = %v", s.Ignored)
	}

	s, err = ParseCable("cable.yml", []byte("production:\n  adapter: solid_cable\n  polling_interval: 1.5.seconds\n  message_retention: 2.hours\n  autotrim: false\n  silence_polling: no\n  trim_batch_size: 1\n"), "production", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc = s.SolidCable
	if sc.DatabaseName() != "primary" || sc.Interval() != 1500*time.Millisecond || sc.Retention() != 2*time.Hour || sc.AutotrimOn() || *sc.SilencePolling || sc.BatchSize() != 100 {
		t.Errorf("got %+v", sc)
	}

	for _, bad := range []string{
		"polling_interval: 0.1", "polling_interval: 1.fortnightly", "message_retention: x.days",
		"connects_to: {database: {replica: cable}}", "connects_to: {shards: {one: {writing: a}}}", "autotrim: maybe",
	} {
		_, err := ParseCable("cable.yml", []byte("production:\n  adapter: solid_cable\n  "+bad+"\n"), "production", nil)
		if err == nil || !strings.HasPrefix(err.Error(), "railsconfig: cable.yml: line 3: ") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

// compareWithActiveRecord checks d against what ActiveRecord itself
// resolves from the same file and environment
// (testdata/rails/database_yml.rb, Debian's ActiveRecord 6.1).
func compareWithActiveRecord(t *testing.T, path, env, name string, vars envMap, d *Database) {
	t.Helper()
	if out, err := exec.Command("ruby", "-e", `require "active_record"`).CombinedOutput(); err != nil {
		t.Fatalf("ruby cannot load ActiveRecord (%v): apt-get install -y ruby ruby-activerecord\n%s", err, out)
	}
	cmd := exec.Command("ruby", filepath.Join("..", "..", "testdata", "rails", "database_yml.rb"), path, env, name)
	base := rubyEnv(vars)
	cmd.Env = nil
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k != "RAILS_ENV" && k != "RACK_ENV" && !strings.HasSuffix(k, "DATABASE_URL") && k != "RAILS_MAX_THREADS" && k != "DB_HOST" && k != "MYAPP_DATABASE_PASSWORD" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "RAILS_ENV="+env)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("database_yml.rb %s %s %s: %v\n%s", path, env, name, err, stderrOf(err))
	}
	var rails map[string]string
	if err := json.Unmarshal(out, &rails); err != nil {
		t.Fatalf("database_yml.rb output %q: %v", out, err)
	}
	got := maps.Clone(d.Params)
	for k, v := range map[string]string{"adapter": d.Adapter, "database": d.Database, "host": d.Host, "username": d.Username, "password": d.Password, "socket": d.Socket} {
		if v != "" {
			got[k] = v
		}
	}
	if d.Port != 0 {
		got["port"] = strconv.Itoa(d.Port)
	}
	if !maps.Equal(got, rails) {
		t.Errorf("ActiveRecord resolves\n %v\ngocable\n %v", rails, got)
	}
}
