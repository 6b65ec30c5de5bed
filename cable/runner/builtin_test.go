package runner

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestBuiltinChannelNames(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    string // GOCABLE_CHANNELS, "-" for unset
		shared bool
		want   []string
		err    string
	}{
		{"memory default", nil, "-", false, []string{"chat", "benchmark"}, ""},
		{"redis default", nil, "-", true, nil, ""},
		{"redis flag", []string{"--channels", "chat"}, "-", true, []string{"chat"}, ""},
		{"redis env", nil, "benchmark, chat", true, []string{"benchmark", "chat"}, ""},
		{"flag beats env", []string{"--channels=benchmark"}, "chat", true, []string{"benchmark"}, ""},
		{"none in memory", []string{"--channels", "none"}, "-", false, nil, ""},
		{"empty in memory", []string{"--channels="}, "-", false, nil, ""},
		{"empty env", nil, "", false, nil, ""},
		{"duplicates", []string{"--channels", "chat,chat"}, "-", false, []string{"chat"}, ""},
		{"unknown", []string{"--channels", "chat,ChatChannel"}, "-", false, nil, `unknown channel "ChatChannel"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "-" {
				t.Setenv("GOCABLE_CHANNELS", tt.env)
			}
			var c builtinConfig
			fs := flag.NewFlagSet("gocable", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := c.names(tt.shared)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("names() = %q, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("names(%v) = %q, %v; want %q", tt.shared, got, err, tt.want)
			}
		})
	}
}

// With a Redis shared with a Rails app, gocable's unauthorized ChatChannel
// must not answer for the app's own: subscribes to it are rejected unless
// --channels asks for it.
func TestBuiltinChannelsOffWithRedis(t *testing.T) {
	url := testRedisURL(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"memory", nil, "confirm_subscription"},
		{"redis", []string{"--redis-url", url}, "reject_subscription"},
		{"redis with --channels", []string{"--redis-url", url, "--channels", "chat"}, "confirm_subscription"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startGocable(t, tt.args...)
			ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := ws.ReadMessage(); err != nil { // welcome
				t.Fatal(err)
			}
			ws.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"secret\"}"}`))
			for {
				_, msg, err := ws.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(msg), `"type":"ping"`) {
					continue
				}
				if !strings.Contains(string(msg), `"type":"`+tt.want+`"`) {
					t.Errorf("answer to a ChatChannel subscribe: %s; want %s", msg, tt.want)
				}
				return
			}
		})
	}
}
