package railsconfig

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// envMap is a fake environment for lookupEnv.
type envMap map[string]string

func (e envMap) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// railsView is what testdata/rails/cable_yml.rb prints for an environment,
// and how the Go reader's result is compared with it.
type railsView struct {
	Adapter          string   `json:"adapter"`
	URL              *string  `json:"url"`
	ChannelPrefix    *string  `json:"channel_prefix"`
	ID               *string  `json:"id"`
	DB               *int     `json:"db"`
	VerifyMode       *int     `json:"verify_mode"`
	Sentinels        []string `json:"sentinels"`
	SentinelPassword *string  `json:"sentinel_password"`
}

func (s *Cable) railsView() railsView {
	v := railsView{Adapter: s.Adapter, ChannelPrefix: s.ChannelPrefix, ID: s.ID, DB: s.DB, Sentinels: s.Sentinels}
	if s.URL != "" {
		v.URL = &s.URL
	}
	if s.SSLVerifyNone {
		v.VerifyMode = new(0)
	}
	if s.SentinelPassword != "" {
		v.SentinelPassword = &s.SentinelPassword
	}
	return v
}

func (v railsView) String() string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestCableYMLFixtures reads the realistic cable.yml files of testdata/rails
// and compares the result with the expected settings and with what Rails
// itself reads from them (testdata/rails/cable_yml.rb).
func TestCableYMLFixtures(t *testing.T) {
	tests := []struct {
		file, env string
		vars      envMap
		want      string // railsView JSON
	}{
		{"cable.rails-new.yml", "development", nil, `{"adapter":"async","url":null,"channel_prefix":null,"id":null,"db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.rails-new.yml", "test", nil, `{"adapter":"test","url":null,"channel_prefix":null,"id":null,"db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.rails-new.yml", "production", nil, `{"adapter":"redis","url":"redis://localhost:6379/1","channel_prefix":"myapp_production","id":null,"db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.rails-new.yml", "production", envMap{"REDIS_URL": "redis://cache.internal:6379/7"}, `{"adapter":"redis","url":"redis://cache.internal:6379/7","channel_prefix":"myapp_production","id":null,"db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.rails50.yml", "production", nil, `{"adapter":"redis","url":"redis://localhost:6379/1","channel_prefix":null,"id":null,"db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.solid-cable.yml", "production", nil, `{"adapter":"solid_cable","url":null,"channel_prefix":null,"id":null,"db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.solid-cable.yml", "development", nil, `{"adapter":"async","url":null,"channel_prefix":null,"id":null,"db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.anchors.yml", "development", nil, `{"adapter":"redis","url":"redis://localhost:6379/1","channel_prefix":"myapp_development","id":"myapp-cable","db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.anchors.yml", "test", nil, `{"adapter":"test","url":null,"channel_prefix":null,"id":"myapp-cable","db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.anchors.yml", "staging", nil, `{"adapter":"redis","url":"redis://staging.internal:6379/2","channel_prefix":"myapp #staging","id":null,"db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.anchors.yml", "staging", envMap{"STAGING_REDIS_URL": "redis://other:1/0"}, `{"adapter":"redis","url":"redis://other:1/0","channel_prefix":"myapp #staging","id":null,"db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.anchors.yml", "production", nil, `{"adapter":"redis","url":"redis://localhost:6379/1","channel_prefix":null,"id":"myapp-cable","db":3,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.anchors.yml", "empty_prefix", nil, `{"adapter":"redis","url":"redis://localhost:6379/1","channel_prefix":"","id":"myapp-cable","db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.anchors.yml", "symbols", nil, `{"adapter":"redis","url":"redis://localhost:6379/4","channel_prefix":"sym_prefix","id":"myapp-cable","db":null,"verify_mode":null,"sentinels":null,"sentinel_password":null}`},
		{"cable.heroku.yml", "production", nil, `{"adapter":"redis","url":"rediss://:secret@redis.example.com:6380","channel_prefix":"heroku_app_production","id":null,"db":null,"verify_mode":0,"sentinels":null,"sentinel_password":null}`},
		{"cable.psych11.yml", "production", nil, `{"adapter":"redis","url":"redis://localhost:6379/1","channel_prefix":"83","id":"true","db":10,"verify_mode":null,"sentinels":null,"sentinel_password":"secret"}`},
		{"cable.sentinel.yml", "production", nil, `{"adapter":"redis","url":"redis://:masterpass@mymaster/2","channel_prefix":"myapp_production","id":null,"db":null,"verify_mode":null,"sentinels":["sentinel-1.internal:26379","sentinel-2.internal:26380","sentinel-3.internal:26381"],"sentinel_password":"sentpass"}`},
	}
	rubyErr := requireRuby()
	for _, tt := range tests {
		name := tt.file + "/" + tt.env
		if len(tt.vars) > 0 {
			name += "/env"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "..", "testdata", "rails", tt.file)
			s, err := LoadCable(path, tt.env, tt.vars.lookup)
			if err != nil {
				t.Fatalf("LoadCable(%s, %s): %v", tt.file, tt.env, err)
			}
			got := s.railsView().String()
			if got != tt.want {
				t.Errorf("LoadCable(%s, %s) =\n %s\nwant\n %s", tt.file, tt.env, got, tt.want)
			}
			if rubyErr != nil {
				t.Fatal(rubyErr)
			}
			cmd := exec.Command("ruby", filepath.Join("..", "..", "testdata", "rails", "cable_yml.rb"), path, tt.env)
			cmd.Env = rubyEnv(tt.vars)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("cable_yml.rb %s %s: %v\n%s", tt.file, tt.env, err, stderrOf(err))
			}
			var rails railsView
			if err := json.Unmarshal(out, &rails); err != nil {
				t.Fatalf("cable_yml.rb output %q: %v", out, err)
			}
			if rails.String() != got {
				t.Errorf("Rails reads %s %s as\n %s\ngocable as\n %s", tt.file, tt.env, rails, got)
			}
		})
	}
}

func TestCableYMLSettingsErrors(t *testing.T) {
	tests := []struct {
		name, yml, env, wantErr string
	}{
		{"missing environment", "development:\n  adapter: async\n", "production", `no "production" environment (found: development)`},
		{"empty environment", "production:\n", "production", `no "production" environment`},
		{"environment not a mapping", "production: redis\n", "production", `environment "production" is not a mapping`},
		{"top level not a mapping", "- a\n", "production", "the top level is not a mapping"},
		{"empty file", "", "production", "the file is empty"},
		{"port not an integer", "production:\n  port: abc\n", "production", `line 2: port "abc" is not an integer`},
		{"url not a string", "production:\n  url: [a]\n", "production", "line 2: url is not a string"},
		{"replica role", "production:\n  role: replica\n", "production", "master only"},
		{"unknown ssl_params", "production:\n  ssl_params:\n    ca_file: /x\n", "production", "ssl_params.ca_file is not supported"},
		{"bad verify_mode", "production:\n  ssl_params:\n    verify_mode: 3\n", "production", "verify_mode 3"},
		{"sentinels not a list", "production:\n  sentinels: a\n", "production", "sentinels is not a list"},
		{"sentinel without host", "production:\n  sentinels:\n    - port: 1\n", "production", "a sentinel has no host"},
		{"integer out of range", "production:\n  port: 99999999999999999999\n", "production", "line 2: 99999999999999999999: integer out of range"},
		{"float where a string is expected", "production:\n  channel_prefix: 1.5\n", "production", `line 2: channel_prefix "1.5" is a Float to Rails, not a string: quote it`},
		{"ssl not a bool", "production:\n  ssl: maybe\n", "production", "ssl is not true or false"},
		{"ERB error has the file name", "production:\n  url: <%= ENV.fetch(\"NOPE\") %>\n", "production", "cable.yml: line 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseCable("cable.yml", []byte(tt.yml), tt.env, envMap{}.lookup)
			if err == nil {
				t.Fatalf("ParseCable(%q) = %+v; want an error containing %q", tt.yml, s, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCable(%q) error = %q; want it to contain %q", tt.yml, err, tt.wantErr)
			}
		})
	}
}

func TestCableYMLIgnoredKeys(t *testing.T) {
	s, err := ParseCable("cable.yml", []byte("production:\n  adapter: redis\n  driver: hiredis\n  reconnect_attempts: [0, 1]\n  timeout: 1\n"), "production", envMap{}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	got := append([]string(nil), s.Ignored...)
	sort.Strings(got)
	if want := "driver,reconnect_attempts,timeout"; strings.Join(got, ",") != want {
		t.Errorf("Ignored = %v; want %s", got, want)
	}
}

// requireRuby reports whether Ruby and ActiveSupport can run the Rails
// reference scripts, with an install hint if not.
func requireRuby() error {
	if _, err := exec.LookPath("ruby"); err != nil {
		return fmt.Errorf("ruby not found in PATH (%v): %s", err, rubyHint)
	}
	if out, err := exec.Command("ruby", "-e", `require "active_support"; require "active_support/configuration_file"`).CombinedOutput(); err != nil {
		return fmt.Errorf("ruby cannot load ActiveSupport (%v): %s\n%s", err, rubyHint, out)
	}
	return nil
}

const rubyHint = "install Ruby and Rails' libraries: apt-get install -y ruby ruby-actioncable ruby-activesupport ruby-redis (Debian/Ubuntu), or gem install activesupport actioncable redis"

// rubyEnv returns the process environment without the variables the
// fixtures read, plus vars.
func rubyEnv(vars envMap) []string {
	fixtureVars := []string{"REDIS_URL", "STAGING_REDIS_URL", "SENTINEL_PASSWORD", "CABLE_PREFIX_UNSET_FOR_TESTS"}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, f := range fixtureVars {
			drop = drop || k == f
		}
		if !drop {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// stderrOf returns the standard error captured in an *exec.ExitError.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
