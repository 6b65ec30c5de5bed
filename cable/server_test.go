package cable_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

const echoID = `{"channel":"EchoChannel"}`

func TestHandshake(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) {
		s.CheckOrigin = cable.RailsOrigins{
			Allowed:  []string{"http://exact.example"},
			Patterns: []*regexp.Regexp{regexp.MustCompile(`^https?://allowed\.example$`)},
		}.Check
	})
	same := ts.HTTP.URL
	port := ts.HTTP.Listener.Addr().String()[strings.LastIndex(ts.HTTP.Listener.Addr().String(), ":")+1:]
	tests := []struct {
		name     string
		origin   string // "-" for none
		protos   string // "-" for none
		wantOK   bool
		wantProt string
	}{
		{"CT-01 same origin", same, "actioncable-v1-json, actioncable-unsupported", true, "actioncable-v1-json"},
		{"CT-02 no protocol header", same, "-", true, ""},
		{"CT-03 unknown protocol only", same, "foo", true, ""},
		{"CT-04 unsupported first", same, "actioncable-unsupported, actioncable-v1-json", true, "actioncable-unsupported"},
		{"CT-05 extra protocols", same, "actioncable-v1-json, actioncable-unsupported, actioncable-token.x", true, "actioncable-v1-json"},
		{"CT-06 no origin", "-", "actioncable-v1-json", false, ""},
		{"CT-07 evil origin", "http://evil.example", "actioncable-v1-json", false, ""},
		{"CT-08 same host other port", "http://127.0.0.1:9999", "actioncable-v1-json", false, ""},
		{"same host other scheme", "https://127.0.0.1:" + port, "actioncable-v1-json", false, ""},
		{"CT-09 exact string", "http://exact.example", "actioncable-v1-json", true, "actioncable-v1-json"},
		{"CT-09 pattern", "https://allowed.example", "actioncable-v1-json", true, "actioncable-v1-json"},
		{"pattern is anchored by the user", "https://allowed.example.evil", "actioncable-v1-json", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "-" {
				h.Set("Origin", tt.origin)
			} else {
				h["Origin"] = nil
			}
			if tt.protos != "-" {
				h.Set("Sec-Websocket-Protocol", tt.protos)
			} else {
				h["Sec-Websocket-Protocol"] = nil
			}
			c, err := ts.tryDial(t, h)
			if !tt.wantOK {
				if err == nil || !strings.Contains(err.Error(), "404") {
					t.Fatalf("dial = %v; want a 404 refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if got := c.resp.Header.Get("Sec-Websocket-Protocol"); got != tt.wantProt {
				t.Errorf("protocol = %q; want %q", got, tt.wantProt)
			}
			c.expect(`{"type":"welcome"}`)
			c.send(subscribeFrame(echoID))
			c.expect(confirmFrame(echoID))
		})
	}
}

func TestForgeryProtectionOff(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) { s.CheckOrigin = func(*http.Request) bool { return true } })
	c := ts.dial(t, http.Header{"Origin": nil}) // CT-10
	c.expect(`{"type":"welcome"}`)
}

func TestSameOriginOff(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) { s.CheckOrigin = cable.RailsOrigins{DisableSameOrigin: true}.Check })
	if _, err := ts.tryDial(t, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("dial with same origin = %v; want 404", err)
	}
}

func TestForwardedProtoOrigin(t *testing.T) {
	ts := newTestServer(t, nil)
	host := strings.TrimPrefix(ts.HTTP.URL, "http://")
	c := ts.dial(t, http.Header{"Origin": {"https://" + host}, "X-Forwarded-Proto": {"https"}})
	c.expect(`{"type":"welcome"}`)
}

// CT-11, CT-12: anything but a WebSocket upgrade gets Rails' 404.
func TestNotWebSocket(t *testing.T) {
	ts := newTestServer(t, nil)
	upgrade := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}
	for _, tc := range []struct {
		method string
		header http.Header
	}{{"GET", nil}, {"POST", nil}, {"HEAD", nil}, {"POST", upgrade}} {
		resp, body := httpGet(t, tc.method, ts.HTTP.URL+"/cable", tc.header)
		if resp.StatusCode != 404 {
			t.Errorf("%s: status %d; want 404", tc.method, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tc.method, ct)
		}
		if tc.method != "HEAD" && body != "Page not found" {
			t.Errorf("%s: body %q; want Page not found", tc.method, body)
		}
	}
}

// CT-13, CT-14: an unauthorized connection gets the disconnect frame and
// close 1000, and nothing else, even if it sent a subscribe at once.
func TestUnauthorized(t *testing.T) {
	var hooks atomic.Int32
	ts := newTestServer(t, func(s *cable.Server) {
		s.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			if r.URL.Query().Get("reject") == "1" {
				return nil, cable.ErrUnauthorized
			}
			return cable.Identity{"current_user": r.URL.Query().Get("user")}, nil
		})
		s.Disconnected = func(ctx context.Context, c *cable.Conn) { hooks.Add(1) }
	})
	ts.URL += "?reject=1"
	c := ts.dial(t, nil)
	// CT-14: a subscribe sent at once is never answered. The server may
	// have closed already, so the write may fail.
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(subscribeFrame(echoID)))
	c.expect(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)
	err := c.closed(5 * time.Second)
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("close = %v; want 1000", err)
	}
	if f, err := c.next(100 * time.Millisecond); err == nil {
		t.Fatalf("frame after disconnect: %s", f)
	}
	if !strings.Contains(ts.Logs.String(), "unauthorized connection attempt was rejected") {
		t.Errorf("no log line for the rejected connection:\n%s", ts.Logs)
	}
}

// CT-15: pings from the server-wide heartbeat.
func TestPing(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) { s.PingInterval = 100 * time.Millisecond })
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	re := regexp.MustCompile(`^\{"type":"ping","message":(\d+)\}$`)
	for i := 0; i < 3; i++ {
		f, err := c.next(time.Second)
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindStringSubmatch(f)
		if m == nil {
			t.Fatalf("frame %s; want a ping", f)
		}
		var sec int64
		fmt.Sscan(m[1], &sec)
		if d := time.Since(time.Unix(sec, 0)); d < 0 || d > 2*time.Second {
			t.Errorf("ping time %d is %v from now", sec, d)
		}
	}
}

// CT-16: commands sent before welcome are answered after it, in order.
func TestCommandsBeforeWelcome(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t, nil)
	c.send(subscribeFrame(echoID))
	c.send(messageFrame(echoID, `{"action":"echo","n":1}`))
	c.expect(`{"type":"welcome"}`)
	c.expect(confirmFrame(echoID))
	c.expect(dataFrame(echoID, `{"action":"echo","n":1}`))
}

// CT-17: Shutdown sends server_restart to everyone, closes with 1000, runs
// every hook and leaves no goroutine behind (TestMain checks).
func TestShutdown(t *testing.T) {
	var unsubscribed, disconnected atomic.Int32
	ts := newTestServer(t, func(s *cable.Server) {
		s.Handle("CountingChannel", func() cable.Channel {
			return &countingChannel{unsubscribed: &unsubscribed}
		})
		s.Disconnected = func(ctx context.Context, c *cable.Conn) { disconnected.Add(1) }
	})
	const n = 20
	clients := make([]*testClient, n)
	for i := range clients {
		clients[i] = ts.dial(t, nil)
		clients[i].expect(`{"type":"welcome"}`)
		clients[i].send(subscribeFrame(`{"channel":"CountingChannel"}`))
		clients[i].expect(confirmFrame(`{"channel":"CountingChannel"}`))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range clients {
		c.expect(`{"type":"disconnect","reason":"server_restart","reconnect":true}`)
		if err := c.closed(time.Second); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("close = %v; want 1000", err)
		}
	}
	if got := unsubscribed.Load(); got != n {
		t.Errorf("unsubscribed ran %d times; want %d", got, n)
	}
	if got := disconnected.Load(); got != n {
		t.Errorf("disconnected ran %d times; want %d", got, n)
	}
	if _, err := ts.tryDial(t, nil); err == nil {
		t.Error("a connection was accepted after Shutdown")
	}
}

// Shutdown with clients that never answer the close frame still returns,
// with ctx's error if it ran out.
func TestShutdownTimeout(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ts.Shutdown(ctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
}

type countingChannel struct{ unsubscribed *atomic.Int32 }

func (c *countingChannel) Subscribed(ctx context.Context, s *cable.Subscription) error {
	return s.StreamFrom(ctx, "counting")
}
func (c *countingChannel) Unsubscribed(ctx context.Context, s *cable.Subscription) {
	c.unsubscribed.Add(1)
}
func (c *countingChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	return cable.ErrUnknownAction
}

// CT-21: a client close runs unsubscribed and the disconnect hook, and
// the stream has no subscriber left.
func TestClientClose(t *testing.T) {
	var unsubscribed atomic.Int32
	disconnected := make(chan cable.Identity, 1)
	ts := newTestServer(t, func(s *cable.Server) {
		s.Handle("CountingChannel", func() cable.Channel { return &countingChannel{unsubscribed: &unsubscribed} })
		s.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			return cable.Identity{"current_user": "7"}, nil
		})
		s.Disconnected = func(ctx context.Context, c *cable.Conn) { disconnected <- c.Identity() }
	})
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(subscribeFrame(`{"channel":"CountingChannel"}`))
	c.expect(confirmFrame(`{"channel":"CountingChannel"}`))
	if n := ts.SubscriberCount("counting"); n != 1 {
		t.Fatalf("SubscriberCount = %d; want 1", n)
	}
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	if err := c.closed(2 * time.Second); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("server's close reply = %v; want 1000", err)
	}
	select {
	case id := <-disconnected:
		if id["current_user"] != "7" {
			t.Errorf("disconnect hook saw identity %v", id)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("disconnect hook did not run")
	}
	if got := unsubscribed.Load(); got != 1 {
		t.Errorf("unsubscribed ran %d times; want 1", got)
	}
	if n := ts.SubscriberCount("counting"); n != 0 {
		t.Errorf("SubscriberCount after close = %d; want 0", n)
	}
}

// CT-49: periodic timers tick after the confirmation and stop on
// unsubscribe.
func TestPeriodically(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	id := `{"channel":"TimerChannel","every_ms":50}`
	c.send(subscribeFrame(id))
	c.expect(confirmFrame(id))
	for i := 1; i <= 3; i++ {
		c.expect(dataFrame(id, fmt.Sprintf(`{"tick":%d}`, i)))
	}
	c.send(`{"command":"unsubscribe","identifier":` + jsonString(id) + `}`)
	c.sync() // may hold ticks queued before the unsubscribe
	time.Sleep(200 * time.Millisecond)
	c.expectNothing()
}

// Too large a message closes the connection with 1009 and a log line.
func TestMaxMessageSize(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) { s.MaxMessageSize = 1024 })
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(messageFrame(echoID, `{"x":"`+strings.Repeat("a", 2000)+`"}`))
	if err := c.closed(2 * time.Second); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("close = %v; want 1009", err)
	}
	// gorilla sends the close frame before ReadMessage returns to the
	// server, so the log line may follow the client's close a moment later.
	if !waitFor(5*time.Second, func() bool { return strings.Contains(ts.Logs.String(), "over the size limit") }) {
		t.Errorf("no log line:\n%s", ts.Logs)
	}
	if got := ts.Stats().LimitHits.MessageSize; got != 1 {
		t.Errorf("LimitHits.MessageSize = %d; want 1", got)
	}
}

// A text frame that is not UTF-8 fails the connection with 1007 (RFC 6455
// §8.1), as websocket-driver does for Rails; its command does not run.
func TestInvalidUTF8TextFrame(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(subscribeFrame(echoID))
	c.expect(confirmFrame(echoID))
	// Written by hand: json.Marshal would replace the bad bytes.
	frame := `{"command":"message","identifier":` + jsonString(echoID) + `,"data":"{\"action\":\"echo\",\"s\":\"` + "\xff\xfe" + `\"}"}`
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	if err := c.closed(2 * time.Second); !websocket.IsCloseError(err, websocket.CloseInvalidFramePayloadData) {
		t.Fatalf("close = %v; want 1007", err)
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(ts.Logs.String(), "not UTF-8") }) {
		t.Errorf("no log line:\n%s", ts.Logs)
	}
}

// blockChannel's "block" action waits until release is closed (or the
// connection ends), as a slow database call would.
type blockChannel struct{ release chan struct{} }

func (b blockChannel) Subscribed(context.Context, *cable.Subscription) error { return nil }
func (b blockChannel) Unsubscribed(context.Context, *cable.Subscription)     {}
func (b blockChannel) Perform(ctx context.Context, s *cable.Subscription, action string, data json.RawMessage) error {
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

// While one command is slow, a client that keeps sending large frames is
// disconnected once the frames waiting pass the connection's byte bound
// (16 MiB with the default 1 MiB message size), not after 4096 frames,
// which could be 4 GiB. A client under the bound keeps its connection and
// every command runs once the slow one is done.
func TestPendingCommandBytes(t *testing.T) {
	release := make(chan struct{})
	ts := newTestServer(t, func(s *cable.Server) {
		s.Handle("BlockChannel", func() cable.Channel { return blockChannel{release: release} })
	})
	const blockID = `{"channel":"BlockChannel"}`
	pad := strings.Repeat("x", 512<<10)

	// Under the bound: 8 frames of 512 KiB wait, then all run.
	ok := ts.dial(t, nil)
	ok.expect(`{"type":"welcome"}`)
	ok.send(subscribeFrame(blockID))
	ok.expect(confirmFrame(blockID))
	ok.send(subscribeFrame(echoID))
	ok.expect(confirmFrame(echoID))
	ok.send(messageFrame(blockID, `{"action":"block"}`))
	for i := 0; i < 8; i++ {
		ok.send(messageFrame(echoID, fmt.Sprintf(`{"action":"echo","n":%d,"pad":%q}`, i, pad)))
	}

	// Over it: the server closes the connection after about 32 frames,
	// where counting frames alone would have let 4096 wait.
	bad := ts.dial(t, nil)
	bad.expect(`{"type":"welcome"}`)
	bad.send(subscribeFrame(blockID))
	bad.expect(confirmFrame(blockID))
	bad.send(messageFrame(blockID, `{"action":"block"}`))
	sent := 0
	for ; sent < 200; sent++ {
		if err := bad.ws.WriteMessage(websocket.TextMessage, []byte(messageFrame(blockID, fmt.Sprintf(`{"action":"block","pad":%q}`, pad)))); err != nil {
			break
		}
		if strings.Contains(ts.Logs.String(), "too many bytes of commands waiting") {
			break
		}
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(ts.Logs.String(), "too many bytes of commands waiting") }) {
		t.Fatalf("sent %d frames of 512 KiB behind a blocked command and the connection was not closed", sent)
	}
	// How many frames the client wrote before noticing depends on the
	// socket buffers, so only the server's decision is checked.
	if !strings.Contains(ts.Logs.String(), fmt.Sprintf("limit_bytes=%d", 16<<20)) {
		t.Errorf("the log does not give the 16 MiB bound:\n%.2000s", ts.Logs)
	}
	if got := ts.Stats().LimitHits.PendingCommands; got != 1 {
		t.Errorf("LimitHits.PendingCommands = %d; want 1", got)
	}
	bad.closed(5 * time.Second)

	close(release)
	for i := 0; i < 8; i++ {
		ok.expect(dataFrame(echoID, fmt.Sprintf(`{"action":"echo","n":%d,"pad":%q}`, i, pad)))
	}
}

// A connection with more subscriptions than are searched one by one (its
// own, and the stream's identifier groups, are then indexed): commands
// find the right subscription, unsubscribed ones are gone, a broadcast
// reaches each remaining identifier once, in the order they subscribed.
func TestManySubscriptionsIndexed(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	room := func(i int) string { return fmt.Sprintf(`{"channel":"EchoChannel","room":%d}`, i) }
	var live []int
	for i := 0; i < 40; i++ {
		c.send(subscribeFrame(room(i)))
		c.expect(confirmFrame(room(i)))
		live = append(live, i)
	}
	for _, i := range []int{0, 7, 8, 9, 25, 39} {
		c.send(unsubscribeFrame(room(i)))
		live = slices.DeleteFunc(live, func(x int) bool { return x == i })
	}
	c.send(messageFrame(room(25), `{"action":"echo","gone":true}`))
	c.send(messageFrame(room(26), `{"action":"echo","n":26}`))
	c.expect(dataFrame(room(26), `{"action":"echo","n":26}`))
	c.expectNothing()

	broadcast := func(n int) {
		t.Helper()
		if err := ts.Broadcast(context.Background(), "echo", json.RawMessage(fmt.Sprintf(`{"b":%d}`, n))); err != nil {
			t.Fatal(err)
		}
		for _, i := range live {
			c.expect(dataFrame(room(i), fmt.Sprintf(`{"b":%d}`, n)))
		}
		c.expectNothing()
	}
	broadcast(1)

	// Resubscribed, room 8 streams again, after the others.
	c.send(subscribeFrame(room(8)))
	c.expect(confirmFrame(room(8)))
	live = append(live, 8)
	broadcast(2)
	if got := ts.SubscriberCount("echo"); got != 1 {
		t.Errorf("SubscriberCount = %d; want 1 connection", got)
	}
}

// A binary frame is ignored (CT-41) and a panicking action keeps the
// connection (CT-38), with the stack in the log.
func TestBinaryFrameAndPanic(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.ws.WriteMessage(websocket.BinaryMessage, []byte(subscribeFrame(echoID)))
	c.expectNothing()
	c.send(subscribeFrame(echoID))
	c.expect(confirmFrame(echoID))
	c.send(messageFrame(echoID, `{"action":"panic"}`))
	c.send(messageFrame(echoID, `{"action":"echo"}`))
	c.expect(dataFrame(echoID, `{"action":"echo"}`))
	logs := ts.Logs.String()
	if !strings.Contains(logs, "panic in channel code") || !strings.Contains(logs, "goroutine") {
		t.Errorf("panic not logged with a stack:\n%s", logs)
	}
}

// A client that does not read is disconnected when its queue fills;
// broadcasts to others go on and Broadcast never blocks.
func TestSlowClient(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) {
		// No short WriteTimeout: the slow client is dropped because its
		// queue fills, while a 200ms one also dropped the fast client
		// whenever its writer was descheduled for 200ms under load.
		s.SendQueueLen = 16
	})
	slow := ts.dial(t, nil)
	slow.expect(`{"type":"welcome"}`)
	slow.send(subscribeFrame(echoID))
	slow.expect(confirmFrame(echoID))
	fast := ts.dial(t, nil)
	fast.expect(`{"type":"welcome"}`)
	fast.send(subscribeFrame(echoID))
	fast.expect(confirmFrame(echoID))

	// The slow client stops reading, so its socket backs up: the server
	// must drop it while the fast client keeps receiving everything.
	slow.stopReading()
	big := strings.Repeat("x", 64<<10)
	msg, _ := json.Marshal(map[string]string{"big": big})
	dropped := false
	for i := 0; i < 3000 && !dropped; i++ {
		if err := ts.Broadcast(context.Background(), "echo", json.RawMessage(msg)); err != nil {
			t.Fatalf("Broadcast: %v", err)
		}
		if _, err := fast.next(5 * time.Second); err != nil {
			t.Fatalf("fast client after %d broadcasts: %v", i, err)
		}
		dropped = ts.SubscriberCount("echo") == 1
	}
	if !dropped {
		t.Fatalf("the slow client was not disconnected; logs:\n%s", ts.Logs)
	}
	if ts.Stats().Connections != 1 {
		t.Errorf("Stats().Connections = %d; want 1", ts.Stats().Connections)
	}
}

// Many clients chatting: each sees every message of every other, in the
// order each sender sent them.
func TestManyClientsChat(t *testing.T) {
	ts := newTestServer(t, nil)
	const clients, msgs = 16, 64
	cs := make([]*testClient, clients)
	for i := range cs {
		cs[i] = ts.dial(t, nil)
		cs[i].expect(`{"type":"welcome"}`)
		cs[i].send(subscribeFrame(echoID))
		cs[i].expect(confirmFrame(echoID))
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := 0; m < msgs; m++ {
				c.send(messageFrame(echoID, fmt.Sprintf(`{"action":"broadcast","stream":"echo","message":{"from":%d,"n":%d}}`, i, m)))
			}
		}()
	}
	wg.Wait()
	for ci, c := range cs {
		next := make([]int, clients)
		for k := 0; k < clients*msgs; k++ {
			f, err := c.next(10 * time.Second)
			if err != nil {
				t.Fatalf("client %d after %d messages: %v", ci, k, err)
			}
			var fr struct {
				Message struct{ From, N int }
			}
			if err := json.Unmarshal([]byte(f), &fr); err != nil {
				t.Fatal(err)
			}
			if fr.Message.N != next[fr.Message.From] {
				t.Fatalf("client %d: from %d got n=%d; want %d", ci, fr.Message.From, fr.Message.N, next[fr.Message.From])
			}
			next[fr.Message.From]++
		}
	}
}

// Disconnect reaches every connection with the identifiers, and only them.
func TestServerDisconnect(t *testing.T) {
	ps := &watchedPubSub{}
	ts := newTestServer(t, func(s *cable.Server) {
		s.PubSub = ps
		s.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			return cable.Identity{"current_user": r.URL.Query().Get("user"), "tenant": "acme"}, nil
		})
	})
	base := ts.URL
	dialAs := func(user string) *testClient {
		ts.URL = base + "?user=" + user
		c := ts.dial(t, nil)
		c.expect(`{"type":"welcome"}`)
		return c
	}
	a1, a2, b := dialAs("a"), dialAs("a"), dialAs("b")
	ps.waitSubscribed(t, "action_cable/a:acme", 2)
	ps.waitSubscribed(t, "action_cable/acme:b", 1)
	if err := ts.Disconnect(context.Background(), cable.Identity{"current_user": "a", "tenant": "acme"}, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*testClient{a1, a2} {
		c.expect(`{"type":"disconnect","reason":"remote","reconnect":true}`)
		if err := c.closed(2 * time.Second); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("close = %v", err)
		}
	}
	b.expectNothing()
	if err := ts.Disconnect(context.Background(), cable.Identity{}, true); err == nil {
		t.Error("Disconnect with no identifiers did not fail")
	}
}

func TestConnectionIdentifier(t *testing.T) {
	tests := []struct {
		id   cable.Identity
		want string
	}{
		{cable.Identity{}, ""},
		{cable.Identity{"current_user": cable.GlobalIDParam("myapp", "User", "7"), "tenant": "acme"}, "Z2lkOi8vbXlhcHAvVXNlci83:acme"},
		// Rails drops nil and false only: "" sorts first.
		{cable.Identity{"b": "x", "a": "y", "c": ""}, ":x:y"},
		{cable.Identity{"current_user": ""}, ""},
	}
	for _, tt := range tests {
		if got := tt.id.ConnectionIdentifier(); got != tt.want {
			t.Errorf("%v.ConnectionIdentifier() = %q; want %q", tt.id, got, tt.want)
		}
	}
	if got := cable.GlobalIDParam("myapp", "User", "1"); got != "Z2lkOi8vbXlhcHAvVXNlci8x" {
		t.Errorf("GlobalIDParam = %q", got)
	}
}

// TestGlobalIDParam: ids are escaped as GlobalID escapes them. The URIs
// and params were printed by globalid 0.6.0 (Debian's ruby-globalid):
// User.new(id).to_global_id.to_s and .to_gid_param with GlobalID.app =
// "myapp". The composite key follows URI::GID.build of globalid 1.2+
// (lib/global_id/uri/gid.rb: each part CGI.escape'd, joined with "/").
func TestGlobalIDParam(t *testing.T) {
	tests := []struct {
		id    []string
		uri   string
		param string
	}{
		{[]string{"1"}, "gid://myapp/User/1", "Z2lkOi8vbXlhcHAvVXNlci8x"},
		{[]string{"alice@example.com"}, "gid://myapp/User/alice%40example.com", "Z2lkOi8vbXlhcHAvVXNlci9hbGljZSU0MGV4YW1wbGUuY29t"},
		{[]string{"john doe"}, "gid://myapp/User/john+doe", "Z2lkOi8vbXlhcHAvVXNlci9qb2huK2RvZQ"},
		{[]string{"a/b"}, "gid://myapp/User/a%2Fb", "Z2lkOi8vbXlhcHAvVXNlci9hJTJGYg"},
		{[]string{"x+y"}, "gid://myapp/User/x%2By", "Z2lkOi8vbXlhcHAvVXNlci94JTJCeQ"},
		{[]string{"50%"}, "gid://myapp/User/50%25", "Z2lkOi8vbXlhcHAvVXNlci81MCUyNQ"},
		{[]string{"café"}, "gid://myapp/User/caf%C3%A9", "Z2lkOi8vbXlhcHAvVXNlci9jYWYlQzMlQTk"},
		{[]string{"~._-"}, "gid://myapp/User/~._-", "Z2lkOi8vbXlhcHAvVXNlci9-Ll8t"},
		{[]string{"<script>"}, "gid://myapp/User/%3Cscript%3E", "Z2lkOi8vbXlhcHAvVXNlci8lM0NzY3JpcHQlM0U"},
		{[]string{"7", "a b"}, "gid://myapp/User/7/a+b", base64.RawURLEncoding.EncodeToString([]byte("gid://myapp/User/7/a+b"))},
	}
	for _, tt := range tests {
		if got := cable.GlobalIDParam("myapp", "User", tt.id...); got != tt.param {
			t.Errorf("GlobalIDParam(%q) = %q; want %q", tt.id, got, tt.param)
		}
		if len(tt.id) != 1 {
			continue
		}
		g := cable.GlobalID{App: "myapp", Model: "User", ID: tt.id[0]}
		if got := g.String(); got != tt.uri {
			t.Errorf("GlobalID{ID: %q}.String() = %q; want %q", tt.id[0], got, tt.uri)
		}
		if got := g.GlobalIDParam(); got != tt.param {
			t.Errorf("GlobalID{ID: %q}.GlobalIDParam() = %q; want %q", tt.id[0], got, tt.param)
		}
	}
}

func TestBroadcastingFor(t *testing.T) {
	user := cable.GlobalID{App: "myapp", Model: "User", ID: "1"}
	tests := []struct {
		class string
		parts []any
		want  string
	}{
		{"ModelChannel", []any{user}, "model:Z2lkOi8vbXlhcHAvVXNlci8x"},
		{"ModelChannel", []any{user, "room", 5}, "model:Z2lkOi8vbXlhcHAvVXNlci8x:room:5"},
		{"ModelChannel", []any{[]any{user, "room", int64(5)}}, "model:Z2lkOi8vbXlhcHAvVXNlci8x:room:5"},
		{"ModelChannel", []any{"x"}, "model:x"},
		{"ModelChannel", []any{nil}, "model"},
		{"ModelChannel", []any{[]any{}}, "model"},
		{"ModelChannel", []any{"a", nil}, "model:a:"},
		{"ModelChannel", nil, "model"},
		{"ModelChannel", []any{true}, "model:true"},
		{"Admin::ChatChannel", []any{"1"}, "admin:chat:1"},
		{"HTTPStatusChannel", []any{"1"}, "http_status:1"},
		{"ChatChannel", []any{"1"}, "chat:1"},
		{"UserPresence2Channel", []any{"1"}, "user_presence2:1"},
	}
	for _, tt := range tests {
		got, err := cable.BroadcastingFor(tt.class, tt.parts...)
		if err != nil || got != tt.want {
			t.Errorf("BroadcastingFor(%q, %v) = %q, %v; want %q", tt.class, tt.parts, got, err, tt.want)
		}
	}
	if _, err := cable.BroadcastingFor("X", 1.5); err == nil {
		t.Error("BroadcastingFor with a float did not fail")
	}
}

func TestParseOrigins(t *testing.T) {
	origins, err := cable.ParseOrigins([]string{"http://a.example", " /\\Ahttps?:\\/\\/b\\.example\\z/ ", ""})
	exact, patterns := origins.Allowed, origins.Patterns
	if err != nil {
		t.Fatal(err)
	}
	if len(exact) != 1 || exact[0] != "http://a.example" {
		t.Errorf("exact = %q", exact)
	}
	if len(patterns) != 1 || !patterns[0].MatchString("https://b.example") || patterns[0].MatchString("https://b.example.com") {
		t.Errorf("patterns = %v", patterns)
	}
	if _, err := cable.ParseOrigins([]string{"/(/"}); err == nil {
		t.Error("a bad pattern did not fail")
	}
}

// CT-27: a deferred confirmation arrives once, later; the client's repeated
// subscribes meanwhile are ignored, and the subscription works before it.
func TestDeferredConfirmation(t *testing.T) {
	ts := newTestServer(t, nil)
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	// Long enough for the sync below to finish first on a loaded machine.
	id := `{"channel":"DeferChannel","ms":2000}`
	start := time.Now()
	c.send(subscribeFrame(id))
	c.send(subscribeFrame(id))
	if frames := c.sync(); len(frames) != 0 {
		t.Fatalf("frames before the deferred confirmation: %q", frames)
	}
	c.send(subscribeFrame(id))
	c.expect(confirmFrame(id))
	if d := time.Since(start); d < 1900*time.Millisecond {
		t.Errorf("confirmed after %v; want about 2s", d)
	}
	c.send(subscribeFrame(id))
	c.expectNothing()
}

func TestStats(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) {
		s.Authenticator = cable.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (cable.Identity, error) {
			if r.URL.Query().Get("reject") == "1" {
				return nil, cable.ErrUnauthorized
			}
			return nil, nil
		})
	})
	a, b := ts.dial(t, nil), ts.dial(t, nil)
	for _, c := range []*testClient{a, b} {
		c.expect(`{"type":"welcome"}`)
		c.send(subscribeFrame(echoID))
		c.expect(confirmFrame(echoID))
	}
	a.send(`not json`)
	a.send(messageFrame(echoID, `{"action":"secret"}`))
	a.expectNothing() // one more command (the sync subscribe) and its confirmation
	if last := ts.Stats().LastBroadcast; !last.IsZero() {
		t.Errorf("Stats().LastBroadcast = %v before any broadcast; want the zero time", last)
	}
	sent := time.Now()
	if err := ts.Broadcast(context.Background(), "echo", "x"); err != nil {
		t.Fatal(err)
	}
	a.expect(dataFrame(echoID, `"x"`))
	b.expect(dataFrame(echoID, `"x"`))
	received := time.Now()
	base := ts.URL
	ts.URL = base + "?reject=1"
	r := ts.dial(t, nil)
	r.expect(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)
	ts.URL = base

	got := ts.Stats()
	want := cable.Stats{
		Connections: 2, Streams: 1, ConnectionsTotal: 2, UnauthorizedTotal: 1,
		CommandsTotal: 5, ProtocolErrorsTotal: 2, BroadcastsTotal: 1,
		// welcome, confirm and the broadcast to each; the sync confirmation to a
		FramesTotal: 7,
	}
	if got.LastBroadcast.Before(sent) || got.LastBroadcast.After(received) {
		t.Errorf("Stats().LastBroadcast = %v; want between %v and %v", got.LastBroadcast, sent, received)
	}
	want.LastBroadcast = got.LastBroadcast
	if got != want {
		t.Errorf("Stats() = %+v\nwant      %+v", got, want)
	}
}
