package runner

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func chatSub(room string) string {
	return `{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"` + room + `\"}"}`
}

// The limit flags and their environment variables reach the Server: a
// connection past --max-subscriptions (set here by its env variable) or
// --max-identifier-bytes gets reject_subscription, one flooding past
// --command-rate gets the invalid_request disconnect, and /metrics counts
// both.
func TestLimitFlags(t *testing.T) {
	t.Setenv("GOCABLE_MAX_SUBSCRIPTIONS", "2")
	addr := startGocable(t, "--max-identifier-bytes", "100", "--command-rate", "1", "--command-burst", "6")
	long := strings.Repeat("x", 100)
	got := frames(t, addr, "", 5, chatSub("a"), chatSub(long), chatSub("b"), chatSub("c"))
	want := []string{
		`{"type":"welcome"}`,
		`{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"a\"}","type":"confirm_subscription"}`,
		`{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"` + long + `\"}","type":"reject_subscription"}`,
		`{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"b\"}","type":"confirm_subscription"}`,
		`{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"c\"}","type":"reject_subscription"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("frames:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	cmds := make([]string, 10)
	for i := range cmds {
		cmds[i] = chatSub("flood")
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, c := range cmds {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	// Whether the first commands ran before the close depends on timing;
	// the last frame before the close does not.
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var last string
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			break
		}
		last = string(msg)
	}
	if last != `{"type":"disconnect","reason":"invalid_request","reconnect":false}` {
		t.Errorf("last frame after a command flood: %s; want the invalid_request disconnect", last)
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range []string{
		`gocable_limit_hits_total{limit="subscriptions"} 1`,
		`gocable_limit_hits_total{limit="identifier_bytes"} 1`,
		`gocable_limit_hits_total{limit="commands"} 1`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("/metrics lacks %s:\n%s", line, body)
		}
	}
}
