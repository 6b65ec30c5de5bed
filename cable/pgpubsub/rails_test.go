package pgpubsub_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
	"github.com/gocable/gocable/cable/pgpubsub"
	"github.com/gorilla/websocket"
)

// These tests run Rails' own postgresql subscription adapter
// (actioncable/lib/action_cable/subscription_adapter/postgresql.rb, on
// Active Record and the pg gem) through testdata/rails/pg_interop.rb
// against a cable.Server on a PubSub, with real WebSocket clients, on the
// same database.

const railsInstallHint = "install Ruby, ActionCable, Active Record and pg: apt-get install -y ruby ruby-actioncable ruby-activesupport ruby-activerecord ruby-pg ruby-globalid (Debian/Ubuntu), or gem install actioncable activerecord pg globalid"

var interopScript = filepath.Join("..", "..", "testdata", "rails", "pg_interop.rb")

// railsInfo is what `pg_interop.rb version` reports.
type railsInfo struct {
	version  string // ActionCable's version, e.g. "6.1.7.10"
	globalID bool   // whether the globalid library is available
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
		case "globalid":
			info.globalID = v == "yes"
		}
	}
	if info.version == "" {
		return info, fmt.Errorf("ruby %s version printed no ActionCable version:\n%s", interopScript, out)
	}
	return info, nil
})

// requireRails returns the ActionCable the tests run against, or fails the
// test: a compatibility test that skips proves nothing.
func requireRails(t *testing.T) railsInfo {
	t.Helper()
	requirePostgres(t)
	info, err := railsOnce()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ActionCable %s (globalid: %v)", info.version, info.globalID)
	return info
}

// rubyCommand returns the command running pg_interop.rb with args,
// configured like a Rails app on the test database with channel_prefix
// prefix.
func rubyCommand(ctx context.Context, prefix string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ruby", append([]string{interopScript}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "CHANNEL_PREFIX=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "DATABASE_URL="+testURL, "CHANNEL_PREFIX="+prefix)
	return cmd
}

// streamChannel streams the stream named by its "stream" param.
type streamChannel struct{}

func (streamChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	return s.StreamFrom(ctx, s.Param("stream").String())
}
func (streamChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {}
func (streamChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return cable.ErrUnknownAction
}

// newServer returns the URL of a cable.Server on ps with StreamChannel,
// identifying each connection by its ?user= and ?tenant= as Rails'
// identified_by :current_user, :tenant with current_user a User.
func newServer(t *testing.T, ps cable.PubSub, globalID bool) string {
	t.Helper()
	srv := &cable.Server{PubSub: ps, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		CheckOrigin: func(*http.Request) bool { return true },
		Authenticator: cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			user := r.URL.Query().Get("user")
			id := cable.Identity{"current_user": "user-" + user, "tenant": r.URL.Query().Get("tenant")}
			if globalID {
				id["current_user"] = cable.GlobalIDParam("myapp", "User", user)
			}
			return id, nil
		})}
	srv.Handle("StreamChannel", func() cable.Channel { return streamChannel{} })
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// client is a WebSocket client of newServer.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, url, query string) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	c := &client{t: t, ws: ws}
	if f := c.next(); f != `{"type":"welcome"}` {
		t.Fatalf("first frame %s", f)
	}
	return c
}

// next returns the next frame other than a ping, or "closed".
func (c *client) next() string {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return "closed"
		}
		if !bytes.HasPrefix(b, []byte(`{"type":"ping"`)) {
			return string(b)
		}
	}
}

// stream subscribes to StreamChannel for stream and returns the
// identifier.
func (c *client) stream(stream string) string {
	c.t.Helper()
	id, _ := json.Marshal(map[string]string{"channel": "StreamChannel", "stream": stream})
	frame, _ := json.Marshal(map[string]string{"command": "subscribe", "identifier": string(id)})
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		c.t.Fatal(err)
	}
	idJSON, _ := json.Marshal(string(id))
	if f, want := c.next(), `{"identifier":`+string(idJSON)+`,"type":"confirm_subscription"}`; f != want {
		c.t.Fatalf("got %s; want %s", f, want)
	}
	return string(idJSON)
}

// TestRailsBroadcastReachesClients: ActionCable.server.broadcast in Rails,
// through its postgresql adapter, reaches gocable's WebSocket clients with
// exactly the payload Rails sent, for a short stream name and for one that
// Rails hashes.
func TestRailsBroadcastReachesClients(t *testing.T) {
	info := requireRails(t)
	prefix := uniquePrefix(t) + "_production"
	ps := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix})
	url := newServer(t, ps, info.globalID)
	for _, stream := range []string{"chat_lobby", "room:" + strings.Repeat("r", 70)} {
		a, b := dial(t, url, "user=1&tenant=acme"), dial(t, url, "user=2&tenant=acme")
		ida, idb := a.stream(stream), b.stream(stream)

		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := rubyCommand(ctx, prefix, "broadcast", stream).Output()
		cancel()
		if err != nil {
			t.Fatalf("pg_interop.rb broadcast: %v\n%s", err, stderrOf(err))
		}
		var sent []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var s string
			if err := json.Unmarshal([]byte(l), &s); err != nil {
				t.Fatalf("output line %q: %v", l, err)
			}
			sent = append(sent, s)
		}
		if len(sent) != 6 || sent[0] != `"hi\u003c\u003e"` {
			t.Fatalf("Rails sent %q", sent)
		}
		for _, w := range sent {
			for c, id := range map[*client]string{a: ida, b: idb} {
				if got, want := c.next(), `{"identifier":`+id+`,"message":`+w+`}`; got != want {
					t.Errorf("stream %.20s: got %s\nwant %s", stream, got, want)
				}
			}
		}
	}
}

// TestPublishReachesRails: what gocable broadcasts, a subscriber on Rails'
// adapter receives unchanged, for a short and a hashed stream name.
func TestPublishReachesRails(t *testing.T) {
	requireRails(t)
	prefix := uniquePrefix(t) + "_production"
	ps := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix})
	payloads := []string{
		`{"body":"hi","n":12345678901234567890}`,
		`"hi\u003c\u003e"`,
		"{\"s\":\"caf\u00e9 \U0001F600 it's a \\\\ back'slash\"}",
		`[1,null,true]`,
		`null`,
	}
	for _, stream := range []string{"room", "notifications:" + strings.Repeat("n", 60)} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := rubyCommand(ctx, prefix, "subscribe", stream, strconv.Itoa(len(payloads)))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting pg_interop.rb: %v", err)
		}
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || lines.Text() != "subscribed" {
			_ = cmd.Wait()
			t.Fatalf("pg_interop.rb subscribe printed %q; want \"subscribed\"\n%s", lines.Text(), stderr.String())
		}
		for _, p := range payloads {
			if err := ps.Publish(ctx, stream, []byte(p)); err != nil {
				t.Fatalf("Publish(%q): %v", p, err)
			}
		}
		var got []string
		for lines.Scan() {
			var s string
			if err := json.Unmarshal(lines.Bytes(), &s); err != nil {
				t.Fatalf("output line %q: %v", lines.Text(), err)
			}
			got = append(got, s)
		}
		err = cmd.Wait()
		cancel()
		if err != nil {
			t.Fatalf("pg_interop.rb subscribe: %v\n%s", err, stderr.String())
		}
		// Rails runs the callbacks on its event loop's thread pool, so it
		// may reorder them: compare as sets.
		want := slices.Clone(payloads)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("stream %.20s: Rails received\n %q\nwant\n %q", stream, got, want)
		}
	}
}

// TestRailsRemoteDisconnect: remote_connections.where(current_user:,
// tenant:).disconnect in Rails closes exactly that user's sockets on
// gocable, including when the internal channel's name is long enough for
// Rails to hash it.
func TestRailsRemoteDisconnect(t *testing.T) {
	info := requireRails(t)
	prefix := uniquePrefix(t) + "_production"
	ps := newPubSub(t, testURL, pgpubsub.Config{ChannelPrefix: &prefix})
	url := newServer(t, ps, info.globalID)
	for _, user := range []string{"7", "alice@example.com"} {
		t.Run(user, func(t *testing.T) {
			target1 := dial(t, url, "user="+user+"&tenant=acme")
			target2 := dial(t, url, "user="+user+"&tenant=acme")
			otherTenant := dial(t, url, "user="+user+"&tenant=other")
			otherUser := dial(t, url, "user=8&tenant=acme")
			for _, c := range []*client{target1, target2, otherTenant, otherUser} {
				c.stream("s")
			}

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := rubyCommand(ctx, prefix, "disconnect", user, "acme").Output()
			if err != nil {
				t.Fatalf("pg_interop.rb disconnect: %v\n%s", err, stderrOf(err))
			}
			t.Logf("Rails: %s (PostgreSQL channel %q)", strings.TrimSpace(string(out)),
				ps.Channel(strings.TrimPrefix(strings.TrimSpace(string(out)), "channel ")))
			for _, c := range []*client{target1, target2} {
				if f := c.next(); !strings.HasPrefix(f, `{"type":"disconnect","reason":"remote"`) {
					t.Errorf("target got %s; want a remote disconnect", f)
				}
				if f := c.next(); f != "closed" {
					t.Errorf("target got %s after the disconnect; want the socket closed", f)
				}
			}
			// The others stay connected: a broadcast still reaches them.
			if err := ps.Publish(ctx, "s", []byte(`"still here"`)); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*client{otherTenant, otherUser} {
				if f := c.next(); !strings.HasSuffix(f, `"message":"still here"}`) {
					t.Errorf("other connection got %s; want the broadcast", f)
				}
			}
		})
	}
}

// TestRailsPayloadLimit: Rails' broadcast of a message too large for
// NOTIFY raises PostgreSQL's error; Publish refuses the same with
// ErrPayloadTooLarge before sending.
func TestRailsPayloadLimit(t *testing.T) {
	requireRails(t)
	prefix := uniquePrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := rubyCommand(ctx, prefix, "too_large", "big").Output()
	if err != nil {
		t.Fatalf("pg_interop.rb too_large: %v\n%s", err, stderrOf(err))
	}
	if got := strings.TrimSpace(string(out)); got != "PG::InvalidParameterValue: ERROR:  payload string too long" {
		t.Errorf("Rails: %s", got)
	}
}

// stderrOf returns the standard error captured in an *exec.ExitError.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
