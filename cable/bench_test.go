package cable

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func BenchmarkDecodeCommand(b *testing.B) {
	frame := []byte(`{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"lobby\"}","data":"{\"message\":\"hello there\",\"action\":\"speak\"}"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeCommand(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeBroadcastFrame(b *testing.B) {
	id := `{"channel":"ChatChannel","room":"lobby"}`
	payload := []byte(`{"user":"alice","message":"hello there","sent_at":1795302972}`)
	b.ReportAllocs()
	for b.Loop() {
		msg, err := normalizeJSON(payload)
		if err != nil {
			b.Fatal(err)
		}
		_ = dataFrame(id, msg)
	}
}

// BenchmarkFanout measures one broadcast delivered to N subscribers of one
// stream, each on its own connection, from Publish until every frame has
// been handed to the (sink) socket: the hub, the frame building and the
// per-connection writers, without the kernel.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, distinct := range []bool{false, true} {
			name := fmt.Sprintf("subs=%d/identifiers=%s", n, map[bool]string{false: "shared", true: "distinct"}[distinct])
			b.Run(name, func(b *testing.B) { benchFanout(b, n, distinct) })
		}
	}
}

func benchFanout(b *testing.B, n int, distinct bool) {
	srv := quietServer()
	srv.Handle("StreamChannel", func() Channel { return streamChannel{} })
	ctx := context.Background()
	conns := make([]*Conn, n)
	sinks := make([]*sinkConn, n)
	for i := range conns {
		conns[i], sinks[i] = newSinkConn(srv, Identity{})
		id := `{"channel":"StreamChannel"}`
		if distinct {
			id = fmt.Sprintf(`{"channel":"StreamChannel","n":%d}`, i)
		}
		conns[i].subscribe(ctx, id)
	}
	b.Cleanup(func() {
		for _, c := range conns {
			c.finish()
		}
	})
	wait := func(want int64) {
		for _, s := range sinks {
			for s.frames.Load() < want {
				runtime.Gosched()
			}
		}
	}
	wait(1) // the confirmations
	payload := []byte(`{"user":"alice","message":"hello there","sent_at":1795302972}`)
	var want int64 = 1
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := srv.ps.Publish(ctx, "all", payload); err != nil {
			b.Fatal(err)
		}
		want++
		wait(want)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
	_ = time.Now
}

// BenchmarkSubscribe measures subscribe + unsubscribe of one channel on one
// connection, with one stream.
func BenchmarkSubscribe(b *testing.B) {
	srv := quietServer()
	srv.Handle("StreamChannel", func() Channel { return streamChannel{} })
	c, _ := newSinkConn(srv, Identity{})
	defer c.finish()
	ctx := context.Background()
	id := `{"channel":"StreamChannel"}`
	b.ReportAllocs()
	for b.Loop() {
		c.subscribe(ctx, id)
		c.unsubscribe(ctx, c.sub(id))
	}
}

// BenchmarkManySubscriptions measures, on one connection with n
// subscriptions whose identifiers share a 1 KiB prefix (all streaming the
// same stream, so the stream has n identifier groups):
//   - message: a perform sent to the last subscription;
//   - subscribe: subscribing and unsubscribing one more identifier.
//
// Both must not grow with n: the connection and the stream index their
// subscriptions by identifier once they have more than a few.
func BenchmarkManySubscriptions(b *testing.B) {
	pad := strings.Repeat("x", 1024)
	ident := func(i int) string { return fmt.Sprintf(`{"channel":"StreamChannel","pad":"%s","n":%d}`, pad, i) }
	for _, n := range []int{1, 100, 3000} {
		srv := quietServer()
		srv.Handle("StreamChannel", func() Channel { return streamChannel{} })
		ctx := context.Background()
		c, _ := newSinkConn(srv, Identity{})
		for i := 0; i < n; i++ {
			c.subscribe(ctx, ident(i))
		}
		if len(c.subs.items) != n {
			b.Fatalf("%d subscriptions; want %d", len(c.subs.items), n)
		}
		b.Run(fmt.Sprintf("op=message/subs=%d", n), func(b *testing.B) {
			frame := []byte(`{"command":"message","identifier":` + strconv.Quote(ident(n-1)) + `,"data":"{\"action\":\"echo\"}"}`)
			b.ReportAllocs()
			for b.Loop() {
				c.handleFrame(ctx, frame)
			}
		})
		b.Run(fmt.Sprintf("op=subscribe/subs=%d", n), func(b *testing.B) {
			id := ident(n)
			b.ReportAllocs()
			for b.Loop() {
				c.subscribe(ctx, id)
				c.unsubscribe(ctx, c.sub(id))
			}
		})
		c.finish()
	}
}
