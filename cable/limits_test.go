package cable_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
	"github.com/gorilla/websocket"
)

// drainClient is a raw client that reads and drops every frame, counting
// them by kind, so that the test process does not hold what the server
// sends (the heap is measured in-process).
type drainClient struct {
	ws                        *websocket.Conn
	confirms, rejects, others atomic.Int64
	done                      chan struct{}
}

func dialDrain(t *testing.T, ts *testServer) *drainClient {
	t.Helper()
	h := http.Header{"Origin": {ts.HTTP.URL}, "Sec-Websocket-Protocol": {"actioncable-v1-json"}}
	ws, _, err := websocket.DefaultDialer.Dial(ts.URL, h)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(-1)
	c := &drainClient{ws: ws, done: make(chan struct{})}
	go func() { // owner: the test; ends when the socket closes (Cleanup)
		defer close(c.done)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			switch {
			case strings.HasSuffix(string(b[max(0, len(b)-40):]), `"type":"confirm_subscription"}`):
				c.confirms.Add(1)
			case strings.HasSuffix(string(b[max(0, len(b)-40):]), `"type":"reject_subscription"}`):
				c.rejects.Add(1)
			default:
				c.others.Add(1)
			}
		}
	}()
	t.Cleanup(func() {
		ws.Close()
		<-c.done
	})
	return c
}

// answered is how many subscribes have been answered.
func (c *drainClient) answered() int64 { return c.confirms.Load() + c.rejects.Load() }

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The attack of issue 11: one connection makes 200 subscriptions with
// 1 MB identifiers, then one broadcast reaches them; then it attempts
// 100,000 subscriptions. Before the limits this held about 650 MiB and
// 100,000 subscriptions; now every big identifier is rejected, the
// connection keeps at most MaxSubscriptions (512), and the server's heap
// grows by less than 50 MiB while the connection is still open.
func TestIdentifierMemoryAttack(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) {
		s.CommandRate = -1 // the subscription cap, not the command budget, is under test
	})
	c := dialDrain(t, ts)
	// Under the race detector a smaller attack, still far past the
	// limits: the figures for the report come from the full one.
	big, attempts := 200, 100_000
	if raceEnabled {
		big, attempts = 50, 20_000
	}
	before := heapInUse()

	pad := strings.Repeat("x", 1_000_000)
	for i := range big {
		// subscribeFrame(id) without encoding 1 MB each time: pad needs no escaping.
		frame := fmt.Sprintf(`{"command":"subscribe","identifier":"{\"channel\":\"EchoChannel\",\"n\":%d,\"pad\":\"`, i) + pad + `\"}"}`
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		// A few at a time: the point is what the server keeps, not how
		// much it lets wait.
		if !waitFor(10*time.Second, func() bool { return c.answered() >= int64(i-4) }) {
			t.Fatalf("subscribe %d not answered", i-4)
		}
	}
	if !waitFor(10*time.Second, func() bool { return c.answered() == int64(big) }) {
		t.Fatalf("%d of %d subscribes answered", c.answered(), big)
	}
	if err := ts.Broadcast(context.Background(), "echo", "x"); err != nil {
		t.Fatal(err)
	}
	waitFor(2*time.Second, func() bool { return c.others.Load() >= 1+c.confirms.Load() }) // welcome + one frame per subscription
	bigGrowth := int64(heapInUse()) - int64(before)
	t.Logf("%d subscribes with 1 MB identifiers and a broadcast: heap %+.1f MiB; %d confirmed, %d rejected", big, float64(bigGrowth)/(1<<20), c.confirms.Load(), c.rejects.Load())

	start := time.Now()
	for sent := 0; sent < attempts; {
		for n := 0; n < 500 && sent < attempts; n++ {
			id := fmt.Sprintf(`{"channel":"EchoChannel","n":%d}`, sent)
			if err := c.ws.WriteMessage(websocket.TextMessage, []byte(subscribeFrame(id))); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		if !waitFor(10*time.Second, func() bool { return c.answered() >= int64(big+sent) }) {
			t.Fatalf("after %d subscribes, %d answered", sent, c.answered()-int64(big))
		}
	}
	elapsed := time.Since(start)
	if err := ts.Broadcast(context.Background(), "echo", "y"); err != nil {
		t.Fatal(err)
	}
	waitFor(2*time.Second, func() bool { return c.others.Load() >= 1+c.confirms.Load() })
	growth := int64(heapInUse()) - int64(before)
	t.Logf("then %d subscribes in %v: heap %+.1f MiB in all; %d confirmed", attempts, elapsed.Round(time.Millisecond), float64(growth)/(1<<20), c.confirms.Load())

	if bigGrowth > 50<<20 || growth > 50<<20 {
		t.Errorf("the server's heap grew by %.1f MiB after the 1 MB identifiers, %.1f MiB in all; want < 50 MiB", float64(bigGrowth)/(1<<20), float64(growth)/(1<<20))
	}
	if got := c.confirms.Load(); got != 512 {
		t.Errorf("%d subscriptions confirmed; want 512 (MaxSubscriptions' default)", got)
	}
	hits := ts.Stats().LimitHits
	if hits.IdentifierBytes != uint64(big) || hits.Subscriptions != uint64(attempts-512) {
		t.Errorf("LimitHits = %+v; want %d identifier_bytes and %d subscriptions", hits, big, attempts-512)
	}
	logs := ts.Logs.String()
	if !strings.Contains(logs, "limit=identifier_bytes") || !strings.Contains(logs, "limit=subscriptions") {
		t.Errorf("no warn line names the limits:\n%.3000s", logs)
	}
	if n := strings.Count(logs, "subscription rejected: the connection has as many"); n > 10 {
		t.Errorf("%d warn lines for the subscription limit; want them rate-limited", n)
	}
}

// A client that stops reading is dropped as slow once its queued frames
// pass SendQueueBytes, even while their number is far under SendQueueLen.
func TestSendQueueBytes(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) {
		s.SendQueueLen = 1 << 20
		s.SendQueueBytes = 1 << 20
	})
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(subscribeFrame(echoID))
	c.expect(confirmFrame(echoID))
	c.stopReading()
	msg := `"` + strings.Repeat("y", 32<<10) + `"`
	for i := 0; i < 2000 && ts.Stats().SlowClientsTotal == 0; i++ {
		if err := ts.Broadcast(context.Background(), "echo", []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(10 * time.Millisecond) // let the writer fill the socket
		}
	}
	if !waitFor(5*time.Second, func() bool { return ts.Stats().SlowClientsTotal == 1 }) {
		t.Fatalf("64 MB broadcast to a client that does not read, and it was not dropped: %+v", ts.Stats())
	}
	if hits := ts.Stats().LimitHits; hits.SendQueueBytes != 1 {
		t.Errorf("LimitHits.SendQueueBytes = %d; want 1", hits.SendQueueBytes)
	}
	if !waitFor(5*time.Second, func() bool { return ts.Stats().Connections == 0 }) {
		t.Errorf("the slow client is still registered")
	}
}

// A client dropped by the write timeout counts as slow and is logged at
// warn (it used to be counted nowhere and logged at debug).
func TestWriteTimeoutCountsSlowClient(t *testing.T) {
	ts := newTestServer(t, func(s *cable.Server) {
		s.WriteTimeout = 200 * time.Millisecond
		s.SendQueueLen = 1 << 20
		s.SendQueueBytes = -1
	})
	c := ts.dial(t, nil)
	c.expect(`{"type":"welcome"}`)
	c.send(subscribeFrame(echoID))
	c.expect(confirmFrame(echoID))
	c.stopReading()
	msg := `"` + strings.Repeat("z", 64<<10) + `"`
	for i := 0; i < 400 && ts.Stats().SlowClientsTotal == 0; i++ {
		if err := ts.Broadcast(context.Background(), "echo", []byte(msg)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if !waitFor(5*time.Second, func() bool { return ts.Stats().SlowClientsTotal == 1 }) {
		t.Fatalf("a client that stopped reading was not counted as slow: %+v", ts.Stats())
	}
	if !strings.Contains(ts.Logs.String(), "level=WARN msg=\"cable: closing a connection that did not take a frame within the write timeout\"") {
		t.Errorf("no warn line for the write timeout:\n%.3000s", ts.Logs)
	}
}

// Two Origin headers are refused, as Rails refuses the value Rack joins
// them into (connection/base.rb, allow_request_origin?), even when each
// alone would be allowed.
func TestTwoOriginHeaders(t *testing.T) {
	ts := newTestServer(t, nil)
	h := http.Header{"Origin": {ts.HTTP.URL, ts.HTTP.URL}}
	if c, err := ts.tryDial(t, h); err == nil {
		c.ws.Close()
		t.Fatal("a request with two Origin headers was upgraded")
	} else if !strings.Contains(err.Error(), "404") {
		t.Errorf("dial error %v; want Rails' 404", err)
	}
	if got := ts.Stats().LimitHits.OriginHeaders; got != 1 {
		t.Errorf("LimitHits.OriginHeaders = %d; want 1", got)
	}
	c := ts.dial(t, http.Header{"Origin": {ts.HTTP.URL}})
	c.expect(`{"type":"welcome"}`)
}
