package cable_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/protocol")

// TestGoldenTranscripts replays each testdata/protocol/*.in.jsonl against a
// server with the §9 test channels and compares every frame the server
// sends, byte for byte, with *.golden.jsonl.
//
// An input line is a text frame sent as is. Lines starting with "#" are
// comments; "!broadcast STREAM JSON" calls Server.Broadcast;
// "!publish STREAM BYTES" publishes raw bytes on the PubSub, as a foreign
// publisher (redis-cli, Rails) would; "!disconnect CURRENT_USER RECONNECT"
// calls Server.Disconnect; "!wait" reads until the server closes. The
// connection's identity comes from the "identity" query of the first
// line "!identity k=v&k2=v2". Before each directive and at the end, a sync
// round trip makes the output deterministic; the sync frames are not
// written to the golden file.
func TestGoldenTranscripts(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("..", "testdata", "protocol", "*.in.jsonl"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no transcripts found: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.jsonl")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := runTranscript(t, in)
			golden := strings.TrimSuffix(in, ".in.jsonl") + ".golden.jsonl"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cable -run Golden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: frames differ\n--- got\n%s\n--- want\n%s", name, got, want)
			}
		})
	}
}

func runTranscript(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
	}
	identity := cable.Identity{}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "!identity ") {
		for _, kv := range strings.Split(strings.TrimPrefix(lines[0], "!identity "), "&") {
			k, v, _ := strings.Cut(kv, "=")
			identity[k] = v
		}
		lines = lines[1:]
	}
	ps := &watchedPubSub{}
	ts := newTestServer(t, func(s *cable.Server) {
		s.PubSub = ps
		s.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			return identity, nil
		})
	})
	c := ts.dial(t, nil)
	var out bytes.Buffer
	flush := func() {
		for _, fr := range c.sync() {
			out.WriteString(fr)
			out.WriteByte('\n')
		}
	}
	ctx := context.Background()
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "!broadcast "):
			flush()
			rest := strings.TrimPrefix(line, "!broadcast ")
			stream, msg, _ := strings.Cut(rest, " ")
			if err := ts.Broadcast(ctx, stream, json.RawMessage(msg)); err != nil {
				out.WriteString("# broadcast error: " + err.Error() + "\n")
			}
		case strings.HasPrefix(line, "!publish "):
			flush()
			stream, msg, _ := strings.Cut(strings.TrimPrefix(line, "!publish "), " ")
			if err := ps.Publish(ctx, stream, []byte(msg)); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(line, "!disconnect "):
			flush()
			fields := strings.Fields(strings.TrimPrefix(line, "!disconnect "))
			ps.waitSubscribed(t, "action_cable/"+identity.ConnectionIdentifier(), 1)
			if err := ts.Disconnect(ctx, cable.Identity{"current_user": fields[0]}, fields[1] == "true"); err != nil {
				t.Fatal(err)
			}
			// The connection closes: read what remains.
			for {
				fr, err := c.next(3 * time.Second)
				if err != nil {
					break
				}
				out.WriteString(fr + "\n")
			}
			return out.Bytes()
		case line == "!wait":
			// The connection is closing: read what remains.
			for {
				fr, err := c.next(3 * time.Second)
				if err != nil {
					break
				}
				out.WriteString(fr + "\n")
			}
			return out.Bytes()
		default:
			c.send(line)
		}
	}
	flush()
	return out.Bytes()
}
