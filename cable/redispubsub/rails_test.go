package redispubsub_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gocable/gocable/cable/redispubsub"
)

// These tests run Rails' own redis subscription adapter
// (actioncable/lib/action_cable/subscription_adapter/redis.rb) through
// testdata/rails/interop.rb against a PubSub on the same Redis.

const railsInstallHint = "install Ruby and ActionCable: apt-get install -y ruby ruby-actioncable ruby-activesupport ruby-redis (Debian/Ubuntu; optionally ruby-globalid), or gem install actioncable redis globalid"

var interopScript = filepath.Join("..", "..", "testdata", "rails", "interop.rb")

// railsInfo is what `interop.rb version` reports.
type railsInfo struct {
	version      string // ActionCable's version, e.g. "6.1.7.10"
	major, minor int
	globalID     bool // whether the globalid library is available
}

var railsOnce = sync.OnceValues(func() (railsInfo, error) {
	var info railsInfo
	if _, err := exec.LookPath("ruby"); err != nil {
		return info, fmt.Errorf("ruby not found in PATH: %v; %s", err, railsInstallHint)
	}
	out, err := exec.Command("ruby", interopScript, "version").CombinedOutput()
	if err != nil {
		return info, fmt.Errorf("ruby %s version: %v\n%s\n%s", interopScript, err, out, railsInstallHint)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "actioncable":
			info.version = v
			parts := strings.SplitN(v, ".", 3)
			if len(parts) >= 2 {
				info.major, _ = strconv.Atoi(parts[0])
				info.minor, _ = strconv.Atoi(parts[1])
			}
		case "globalid":
			info.globalID = v == "yes"
		}
	}
	if info.major == 0 {
		return info, fmt.Errorf("ruby %s version printed no ActionCable version:\n%s", interopScript, out)
	}
	return info, nil
})

// requireRails returns the ActionCable version the tests run against, or
// fails the test: a compatibility test that skips proves nothing.
func requireRails(t *testing.T) railsInfo {
	t.Helper()
	info, err := railsOnce()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ActionCable %s (globalid: %v)", info.version, info.globalID)
	return info
}

// rubyCommand returns the command running interop.rb with args, configured
// like a Rails app whose cable.yml has url and channel_prefix (nil: none).
func rubyCommand(ctx context.Context, url string, prefix *string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ruby", append([]string{interopScript}, args...)...)
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REDIS_URL=") && !strings.HasPrefix(kv, "CHANNEL_PREFIX=") {
			env = append(env, kv)
		}
	}
	env = append(env, "REDIS_URL="+url)
	if prefix != nil {
		env = append(env, "CHANNEL_PREFIX="+*prefix)
	}
	cmd.Env = env
	return cmd
}

// jsonStrings decodes lines that are each a JSON string.
func jsonStrings(t *testing.T, lines []string) []string {
	t.Helper()
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		var s string
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("decoding interop.rb output line %q: %v", l, err)
		}
		out = append(out, s)
	}
	return out
}

// TestRailsBroadcastReachesPubSub: ActionCable.server.broadcast in Ruby
// delivers to a PubSub subscriber exactly the bytes Rails published.
func TestRailsBroadcastReachesPubSub(t *testing.T) {
	requireRails(t)
	url := redisURL(t)
	base := uniquePrefix(t)
	tests := []struct {
		name   string
		prefix *string
	}{
		{"prefix", new(base + "_production")},
		{"empty prefix", new("")},
		{"no prefix", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newPubSub(t, url, redispubsub.Config{ChannelPrefix: tt.prefix})
			stream := base + "_echo"
			s := newSink()
			subscribe(t, r, stream, s.deliver)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := rubyCommand(ctx, url, tt.prefix, "broadcast", stream).Output()
			if err != nil {
				t.Fatalf("interop.rb broadcast: %v\n%s", err, stderrOf(err))
			}
			want := jsonStrings(t, strings.Split(strings.TrimSpace(string(out)), "\n"))
			// The first two are the forms observed with redis-cli MONITOR
			// (docs/protocol.md §6.3).
			if want[0] != `"hi\u003c\u003e"` || want[1] != `{"a":1,"b":[true,null]}` {
				t.Errorf("Rails published %q, %q; want the documented forms", want[0], want[1])
			}
			for i, w := range want {
				got := s.next(t, 5*time.Second)
				if string(got) != w {
					t.Errorf("message %d: delivered %q; Rails published %q", i, got, w)
				}
			}
			s.none(t, 50*time.Millisecond)
		})
	}
}

// TestPublishReachesRails: what PubSub.Publish sends, a
// subscriber using Rails' adapter receives unchanged.
func TestPublishReachesRails(t *testing.T) {
	requireRails(t)
	url := redisURL(t)
	prefix := uniquePrefix(t) + "_production"
	r, _ := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix})
	payloads := []string{
		`{"body":"hi","n":12345678901234567890}`,
		`"hi\u003c\u003e"`,
		"{\"s\":\"caf\u00e9 \U0001F600\"}",
		`[1,null,true]`,
		`null`,
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := rubyCommand(ctx, url, &prefix, "subscribe", "room", strconv.Itoa(len(payloads)))
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting interop.rb: %v", err)
	}
	defer func() { _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "subscribed" {
		t.Fatalf("interop.rb subscribe printed %q; want \"subscribed\"\n%s", lines.Text(), stderr)
	}
	for _, p := range payloads {
		if err := r.Publish(ctx, "room", []byte(p)); err != nil {
			t.Fatalf("Publish(%q): %v", p, err)
		}
	}
	var got []string
	for lines.Scan() {
		got = append(got, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("interop.rb subscribe: %v\n%s", err, stderr)
	}
	// Rails 6.1 runs the callbacks on a thread pool (the server's
	// event_loop.post, actioncable/lib/action_cable/connection/
	// stream_event_loop.rb), so it may reorder them: compare as sets.
	gotPayloads := jsonStrings(t, got)
	want := slices.Clone(payloads)
	slices.Sort(gotPayloads)
	slices.Sort(want)
	if !slices.Equal(gotPayloads, want) {
		t.Errorf("Rails received\n %q\nwant\n %q\n%s", gotPayloads, want, stderr)
	}
}

// TestRailsRemoteDisconnect: remote_connections.where(...).disconnect in
// Ruby reaches a PubSub subscribed to the internal channel of the same
// identifiers, "action_cable/<connection identifier>". String ids that
// GlobalID escapes ("alice@example.com", "john doe") must give Rails' own
// identifier, or the disconnect of a banned user would miss its sockets.
func TestRailsRemoteDisconnect(t *testing.T) {
	info := requireRails(t)
	url := redisURL(t)
	prefix := uniquePrefix(t) + "_production"
	r, _ := newPubSub(t, url, redispubsub.Config{ChannelPrefix: &prefix})

	for _, userID := range []string{"7", "alice@example.com", "john doe", "a/b+c%é"} {
		t.Run(userID, func(t *testing.T) {
			id := cable.Identity{"current_user": "user-" + userID, "tenant": "acme"}
			if info.globalID {
				id["current_user"] = cable.GlobalIDParam("myapp", "User", userID)
			}
			stream := "action_cable/" + id.ConnectionIdentifier()
			s := newSink()
			subscribe(t, r, stream, s.deliver)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := rubyCommand(ctx, url, &prefix, "disconnect", userID, "acme").Output()
			if err != nil {
				t.Fatalf("interop.rb disconnect: %v\n%s", err, stderrOf(err))
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if want := "channel " + stream; lines[0] != want {
				t.Fatalf("Rails used %q; want %q", lines[0], want)
			}

			// actioncable/lib/action_cable/remote_connections.rb: 7.1 added the
			// reconnect flag to the payload.
			want := []string{`{"type":"disconnect"}`}
			if info.major > 7 || info.major == 7 && info.minor >= 1 {
				want = []string{`{"type":"disconnect","reconnect":true}`, `{"type":"disconnect","reconnect":false}`}
			}
			for _, w := range want {
				if got := s.next(t, 5*time.Second); string(got) != w {
					t.Errorf("internal channel got %q; want %q", got, w)
				}
			}
			s.none(t, 50*time.Millisecond)
		})
	}
}

// stderrOf returns the standard error captured in an *exec.ExitError.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
