package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable/railsconfig"
	"github.com/redis/go-redis/v9"
)

// envMap is a fake environment for lookupEnv.
type envMap map[string]string

func (e envMap) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// newPubsubConfig registers the flags on a fresh FlagSet, parses args and
// uses env as the environment.
func newPubsubConfig(t *testing.T, args []string, env envMap) *pubsubConfig {
	t.Helper()
	c := &pubsubConfig{lookupEnv: env.lookup}
	fs := flag.NewFlagSet("gocable", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return c
}

// writeFile writes content to a file in a temporary directory and returns
// its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPubsubResolve(t *testing.T) {
	railsNew := filepath.Join("..", "..", "testdata", "rails", "cable.rails-new.yml")
	anchors := filepath.Join("..", "..", "testdata", "rails", "cable.anchors.yml")
	sentinel := filepath.Join("..", "..", "testdata", "rails", "cable.sentinel.yml")
	tests := []struct {
		name string
		args []string
		env  envMap
		// want: "memory", or the settings as "url prefix sentinels master"
		// with prefix shown as <nil> or a quoted string.
		want string
	}{
		{"nothing configured", nil, nil, "memory"},
		{"REDIS_URL", nil, envMap{"REDIS_URL": "redis://e:1/2"}, `redis://e:1/2 <nil> [] ""`},
		{"flag beats REDIS_URL", []string{"--redis-url", "redis://f:1"}, envMap{"REDIS_URL": "redis://e:1/2"}, `redis://f:1 <nil> [] ""`},
		{"prefix from env", nil, envMap{"REDIS_URL": "redis://e:1", "CABLE_CHANNEL_PREFIX": "app"}, `redis://e:1 "app" [] ""`},
		{"empty prefix from env is a prefix", nil, envMap{"REDIS_URL": "redis://e:1", "CABLE_CHANNEL_PREFIX": ""}, `redis://e:1 "" [] ""`},
		{"prefix flag", []string{"--redis-url=redis://f:1", "--channel-prefix=p"}, envMap{"CABLE_CHANNEL_PREFIX": "app"}, `redis://f:1 "p" [] ""`},
		{"empty prefix flag", []string{"--redis-url=redis://f:1", "--channel-prefix="}, nil, `redis://f:1 "" [] ""`},
		{"cable.yml development is async", []string{"--cable-config", railsNew}, nil, "memory"},
		{"cable.yml RAILS_ENV", []string{"--cable-config", railsNew}, envMap{"RAILS_ENV": "production"}, `redis://localhost:6379/1 "myapp_production" [] ""`},
		{"cable.yml RACK_ENV", []string{"--cable-config", railsNew}, envMap{"RACK_ENV": "production"}, `redis://localhost:6379/1 "myapp_production" [] ""`},
		{"cable.yml --env beats RAILS_ENV", []string{"--cable-config", railsNew, "--env", "production"}, envMap{"RAILS_ENV": "development"}, `redis://localhost:6379/1 "myapp_production" [] ""`},
		{"cable.yml ERB sees REDIS_URL", []string{"--cable-config", railsNew, "--env=production"}, envMap{"REDIS_URL": "redis://e:9/3"}, `redis://e:9/3 "myapp_production" [] ""`},
		{"cable.yml prefix beats env", []string{"--cable-config", railsNew, "--env=production"}, envMap{"CABLE_CHANNEL_PREFIX": "x"}, `redis://localhost:6379/1 "myapp_production" [] ""`},
		{"flags beat cable.yml", []string{"--cable-config", railsNew, "--env=production", "--redis-url=redis://f:1", "--channel-prefix=p"}, nil, `redis://f:1 "p" [] ""`},
		{"a flag turns async into redis", []string{"--cable-config", railsNew, "--redis-url=redis://f:1"}, nil, `redis://f:1 <nil> [] ""`},
		{"cable.yml without prefix", []string{"--cable-config", anchors, "--env=production"}, nil, `redis://localhost:6379/1 <nil> [] ""`},
		{"cable.yml without url falls back to REDIS_URL", []string{"--cable-config", writeFile(t, "cable.yml", "production:\n  adapter: redis\n")}, envMap{"RAILS_ENV": "production", "REDIS_URL": "redis://e:1"}, `redis://e:1 <nil> [] ""`},
		{"sentinel flags", []string{"--redis-sentinels", "s1:26379, s2:26379", "--redis-master", "mymaster"}, nil, `"" <nil> [s1:26379 s2:26379] "mymaster"`},
		{"sentinel env", nil, envMap{"REDIS_SENTINELS": "s1:1", "REDIS_SENTINEL_MASTER": "m"}, `"" <nil> [s1:1] "m"`},
		{"sentinel cable.yml", []string{"--cable-config", sentinel, "--env=production"}, nil, `redis://:masterpass@mymaster/2 "myapp_production" [sentinel-1.internal:26379 sentinel-2.internal:26380 sentinel-3.internal:26381] ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newPubsubConfig(t, tt.args, tt.env)
			s, source, _, err := c.resolve()
			if err != nil {
				t.Fatalf("resolve(%q): %v", tt.args, err)
			}
			got := "memory"
			if s != nil {
				prefix := "<nil>"
				if s.ChannelPrefix != nil {
					prefix = strconv.Quote(*s.ChannelPrefix)
				}
				u := s.URL
				if u == "" {
					u = `""`
				}
				got = u + " " + prefix + " [" + strings.Join(s.Sentinels, " ") + "] " + strconv.Quote(s.MasterName)
			}
			if got != tt.want {
				t.Errorf("resolve(%q) = %s (source %s); want %s", tt.args, got, source, tt.want)
			}
		})
	}
}

// TestPubsubInProcessWarning checks the WARN logged when an explicit
// --cable-config selects an in-process adapter, most likely a forgotten
// --env production: broadcasts from Rails would silently never arrive.
func TestPubsubInProcessWarning(t *testing.T) {
	railsNew := filepath.Join("..", "..", "testdata", "rails", "cable.rails-new.yml")
	inline := writeFile(t, "cable.yml", "production:\n  adapter: inline\n")
	tests := []struct {
		name string
		args []string
		env  envMap
		// want: the warning's file, env, env_from and adapter, or "" for
		// no warning.
		want string
	}{
		{"forgotten --env", []string{"--cable-config", railsNew}, nil, railsNew + " development default async"},
		{"RAILS_ENV selects async", []string{"--cable-config", railsNew}, envMap{"RAILS_ENV": "development", "RACK_ENV": "production"}, railsNew + " development RAILS_ENV async"},
		{"RACK_ENV selects test", []string{"--cable-config", railsNew}, envMap{"RACK_ENV": "test"}, railsNew + " test RACK_ENV test"},
		{"--env selects inline", []string{"--cable-config", inline, "--env", "production"}, nil, inline + " production --env inline"},
		{"no cable.yml: in-process on purpose", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newPubsubConfig(t, tt.args, tt.env)
			logs := new(bytes.Buffer)
			ps, state, closeFn, err := c.pubsub(slog.New(slog.NewJSONHandler(logs, nil)))
			if err != nil {
				t.Fatalf("pubsub(%q): %v", tt.args, err)
			}
			defer closeFn()
			if ps != nil || state() != "memory" {
				t.Fatalf("pubsub(%q) = %v, state %q; want in-process", tt.args, ps, state())
			}
			var warns []map[string]any
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if rec["level"] == "WARN" {
					warns = append(warns, rec)
				}
			}
			if tt.want == "" {
				if len(warns) > 0 {
					t.Errorf("pubsub(%q) warned %v; want no warning", tt.args, warns)
				}
				return
			}
			if len(warns) != 1 {
				t.Fatalf("pubsub(%q) logged %d warnings; want 1. Log:\n%s", tt.args, len(warns), logs)
			}
			w := warns[0]
			envFrom, _ := w["env_from"].(string)
			envFrom, _, _ = strings.Cut(envFrom, " ")
			if got := fmt.Sprint(w["file"], " ", w["env"], " ", envFrom, " ", w["adapter"]); got != tt.want {
				t.Errorf("warning attributes = %s; want %s", got, tt.want)
			}
			msg, _ := w["msg"].(string)
			for _, part := range []string{tt.args[1], "broadcasts from Rails", "NOT arrive", "--env", "RAILS_ENV", "--redis-url"} {
				if !strings.Contains(msg, part) {
					t.Errorf("warning %q does not mention %q", msg, part)
				}
			}
		})
	}

	// A flag that asks for Redis overrides the in-process adapter: no
	// warning.
	c := newPubsubConfig(t, []string{"--cable-config", railsNew, "--redis-url", "redis://f:1"}, nil)
	if s, _, warning, err := c.resolve(); err != nil || s == nil || warning != nil {
		t.Errorf("resolve() with --redis-url = %v, warning %v, %v; want Redis settings and no warning", s, warning, err)
	}
}

func TestPubsubResolveErrors(t *testing.T) {
	solid := filepath.Join("..", "..", "testdata", "rails", "cable.solid-cable.yml")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"solid_cable without database.yml", []string{"--cable-config", solid, "--env=production"}, `adapter solid_cable (set --app-root to the Rails app's directory): railsconfig: `},
		{"postgresql without a database", []string{"--cable-config", writeFile(t, "cable.yml", "production:\n  adapter: postgresql\n"), "--env=production"}, "the postgresql adapter needs a database"},
		{"missing file", []string{"--cable-config", "/nonexistent/cable.yml"}, "no such file"},
		{"missing environment", []string{"--cable-config", solid, "--env=staging"}, `no "staging" environment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newPubsubConfig(t, tt.args, nil)
			ps, _, _, err := c.pubsub(slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				t.Fatalf("pubsub(%q) = %v; want an error containing %q", tt.args, ps, tt.wantErr)
			}
			// Main prefixes the program's name once; a prefix here would print
			// it twice ("gocable: gocable: cable.yml: ...").
			if !strings.Contains(err.Error(), tt.wantErr) || strings.HasPrefix(err.Error(), "gocable: ") {
				t.Errorf("pubsub(%q) error = %q; want it to contain %q and not start with gocable:", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestClientOptions(t *testing.T) {
	str := func(s string) *string { return &s }
	num := func(n int) *int { return &n }
	tests := []struct {
		name string
		in   railsconfig.Cable
		// want: network addr db user pass tls(servername|insecure|-) clientname
		want string
	}{
		{"default", railsconfig.Cable{}, "tcp localhost:6379 0 - - - gocable-PID-42"},
		{"url", railsconfig.Cable{URL: "redis://u:p%40ss@cache:6380/3"}, "tcp cache:6380 3 u p@ss - gocable-PID-42"},
		{"rediss", railsconfig.Cable{URL: "rediss://:pw@redis.example.com:6380"}, "tcp redis.example.com:6380 0 - pw redis.example.com gocable-PID-42"},
		{"rediss verify none", railsconfig.Cable{URL: "rediss://h:1", SSLVerifyNone: true}, "tcp h:1 0 - - h(insecure) gocable-PID-42"},
		{"ssl: true", railsconfig.Cable{URL: "redis://h:1", SSL: new(true)}, "tcp h:1 0 - - h gocable-PID-42"},
		{"ssl: false", railsconfig.Cable{URL: "rediss://h:1", SSL: new(false)}, "tcp h:1 0 - - - gocable-PID-42"},
		{"unix", railsconfig.Cable{URL: "unix:///run/redis.sock?db=2"}, "unix /run/redis.sock 2 - - - gocable-PID-42"},
		{"keys override the url", railsconfig.Cable{URL: "redis://u:p@h:1/1", Host: str("h2"), Port: num(2), DB: num(5), Username: str("u2"), Password: str("p2")}, "tcp h2:2 5 u2 p2 - gocable-PID-42"},
		{"host only", railsconfig.Cable{Host: str("h3")}, "tcp h3:6379 0 - - - gocable-PID-42"},
		{"path", railsconfig.Cable{Path: str("/tmp/r.sock")}, "unix /tmp/r.sock 0 - - - gocable-PID-42"},
		{"id names the client", railsconfig.Cable{ID: str("myapp-cable")}, "tcp localhost:6379 0 - - - myapp-cable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := clientOptions(&tt.in, 42)
			if err != nil {
				t.Fatalf("clientOptions(%+v): %v", tt.in, err)
			}
			if o.failover != nil {
				t.Fatalf("clientOptions(%+v) chose Sentinel", tt.in)
			}
			opt := o.opt
			tlsDesc := "-"
			if opt.TLSConfig != nil {
				tlsDesc = opt.TLSConfig.ServerName
				if opt.TLSConfig.InsecureSkipVerify {
					tlsDesc += "(insecure)"
				}
			}
			got := strings.Join([]string{opt.Network, opt.Addr, strconv.Itoa(opt.DB), cmpOrDash(opt.Username), cmpOrDash(opt.Password), tlsDesc, opt.ClientName}, " ")
			if got != tt.want {
				t.Errorf("clientOptions(%+v) = %s; want %s", tt.in, got, tt.want)
			}
		})
	}
}

func cmpOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func TestClientOptionsSentinel(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "rails", "cable.sentinel.yml")
	s, err := railsconfig.LoadCable(path, "production", envMap{}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	o, err := clientOptions(s, 7)
	if err != nil {
		t.Fatal(err)
	}
	f := o.failover
	if f == nil {
		t.Fatal("clientOptions did not choose Sentinel for a cable.yml with sentinels")
	}
	got := strings.Join([]string{f.MasterName, strings.Join(f.SentinelAddrs, ","), f.SentinelPassword, f.Password, strconv.Itoa(f.DB), f.ClientName}, " ")
	want := "mymaster sentinel-1.internal:26379,sentinel-2.internal:26380,sentinel-3.internal:26381 sentpass masterpass 2 gocable-PID-7"
	if got != want {
		t.Errorf("failover options = %s; want %s", got, want)
	}
	if d := o.describe(); strings.Contains(d, "masterpass") || !strings.Contains(d, "mymaster") {
		t.Errorf("describe() = %q; want the master name and no password", d)
	}

	// Flags: the master name is given, the URL supplies the credentials.
	c := newPubsubConfig(t, []string{"--redis-sentinels", "10.0.0.1:26379,10.0.0.2:26379", "--redis-master", "cache", "--redis-url", "redis://:pw@ignored/4"}, nil)
	s, _, _, err = c.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if o, err = clientOptions(s, 7); err != nil {
		t.Fatal(err)
	}
	if f := o.failover; f == nil || f.MasterName != "cache" || len(f.SentinelAddrs) != 2 || f.Password != "pw" || f.DB != 4 {
		t.Errorf("failover options from flags = %+v", f)
	}

	for _, bad := range []railsconfig.Cable{
		{Sentinels: []string{"s:1"}, URL: "redis://"},  // no master name anywhere
		{Sentinels: []string{"nope"}, MasterName: "m"}, // not host:port
	} {
		if _, err := clientOptions(&bad, 1); err == nil {
			t.Errorf("clientOptions(%+v) succeeded; want an error", bad)
		}
	}
}

// TestPubsubWithRedis builds the pub/sub from a cable.yml, as main does, and
// uses it against a real redis-server.
func TestPubsubWithRedis(t *testing.T) {
	url := testRedisURL(t)
	yml := writeFile(t, "cable.yml", "production:\n  adapter: redis\n  url: <%= ENV.fetch(\"REDIS_URL\") { \"redis://localhost:6379/1\" } %>\n  channel_prefix: gocable_cmd_test\n  driver: hiredis\n")
	c := newPubsubConfig(t, []string{"--cable-config", yml, "--env", "production"}, envMap{"REDIS_URL": url})
	logs := new(bytes.Buffer)
	ps, state, closeFn, err := c.pubsub(slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if ps == nil {
		t.Fatal("pubsub() = nil, in-process; want Redis")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan string, 1)
	unsub, err := ps.Subscribe(ctx, "chat_1", func(p []byte) { got <- string(p) })
	if err != nil {
		t.Fatal(err)
	}
	// Up once the connection has answered the PING that follows the
	// SUBSCRIBE commands, a moment after Subscribe returned.
	for deadline := time.Now().Add(5 * time.Second); state() != "ok"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("state() = %q 5s after Subscribe; want ok", state())
		}
	}
	// A plain Redis client sees the Rails channel name.
	opt, _ := redis.ParseURL(url)
	raw := redis.NewClient(opt)
	defer raw.Close()
	if n, err := raw.Publish(ctx, "gocable_cmd_test:chat_1", `{"a":1}`).Result(); err != nil || n != 1 {
		t.Fatalf("PUBLISH gocable_cmd_test:chat_1 reached %d subscribers (%v); want 1", n, err)
	}
	select {
	case p := <-got:
		if p != `{"a":1}` {
			t.Errorf("delivered %q", p)
		}
	case <-ctx.Done():
		t.Fatal("no delivery")
	}
	clients, _ := raw.ClientList(ctx).Result()
	if !strings.Contains(clients, "name=gocable-PID-"+strconv.Itoa(os.Getpid())) {
		t.Errorf("no client named gocable-PID-%d in CLIENT LIST:\n%s", os.Getpid(), clients)
	}
	unsub()
	if err := closeFn(); err != nil {
		t.Errorf("closeFn() = %v", err)
	}
	if s := state(); s != "closed" {
		t.Errorf("state() after closeFn = %q; want closed", s)
	}
	for _, want := range []string{"gocable: redis pub/sub", "channel_prefix=gocable_cmd_test", "keys=driver"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestPubsubMemory(t *testing.T) {
	c := newPubsubConfig(t, nil, nil)
	ps, state, closeFn, err := c.pubsub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || ps != nil {
		t.Fatalf("pubsub() = %v, %v; want nil, nil (in-process)", ps, err)
	}
	if s := state(); s != "memory" {
		t.Errorf("state() = %q; want memory", s)
	}
	if err := closeFn(); err != nil {
		t.Errorf("closeFn() = %v", err)
	}
}

// testRedisURL returns REDIS_URL when set, else starts a redis-server on a
// free port for the test. A missing redis-server fails the test. A port
// taken between choosing it and redis-server binding it is retried on
// another one, and the server that answers must report our process id.
func testRedisURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found in PATH (%v): install it (apt-get install -y redis-server), or set REDIS_URL", err)
	}
	for attempt := 1; ; attempt++ {
		url, _, taken := startTestRedis(t)
		if !taken {
			return url
		}
		if attempt == 5 {
			t.Fatal("redis-server: every port tried was taken")
		}
	}
}

// startTestRedis starts one redis-server; taken reports that its port was
// already in use. proc is the server's process, for tests that signal it.
func startTestRedis(t *testing.T) (url string, proc *os.Process, taken bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	out := new(syncBuffer)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	url = "redis://127.0.0.1:" + port
	opt, _ := redis.ParseURL(url)
	c := redis.NewClient(opt)
	defer c.Close()
	want := "process_id:" + strconv.Itoa(cmd.Process.Pid) + "\r\n"
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			if strings.Contains(out.String(), "in use") {
				return "", nil, true
			}
			t.Fatalf("redis-server on port %s exited at start:\n%s", port, out)
		default:
		}
		if info, err := c.Info(context.Background(), "server").Result(); err == nil && strings.Contains(info, want) {
			return url, cmd.Process, false
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %s did not start:\n%s", port, out)
		}
	}
}
