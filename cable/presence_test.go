package cable_test

import "testing"

// BroadcastExcept skips the sender, on the in-memory pub/sub, and only for
// that one message. (Through a real Redis: TestBroadcastExceptThroughRedis in
// cable/redispubsub.)
func TestBroadcastExcept(t *testing.T) {
	for _, pubsub := range []string{"memory"} {
		t.Run(pubsub, func(t *testing.T) {
			ts := newTestServer(t, nil)
			a, b := ts.dial(t, nil), ts.dial(t, nil)
			for _, c := range []*testClient{a, b} {
				c.expect(`{"type":"welcome"}`)
				c.send(subscribeFrame(echoID))
				c.expect(confirmFrame(echoID))
			}
			// A second subscription of a to the stream is skipped too.
			id2 := `{"channel":"EchoChannel","second":true}`
			a.send(subscribeFrame(id2))
			a.expect(confirmFrame(id2))
			if n := ts.SubscriberCount("echo"); n != 2 {
				t.Errorf("SubscriberCount = %d; want 2 connections", n)
			}

			a.send(messageFrame(echoID, `{"action":"broadcast_others","n":1}`))
			b.expect(dataFrame(echoID, `{"action":"broadcast_others","n":1}`))
			a.expectNothing()

			// The same bytes broadcast normally reach everyone.
			b.send(messageFrame(echoID, `{"action":"broadcast","stream":"echo","message":{"action":"broadcast_others","n":1}}`))
			b.expect(dataFrame(echoID, `{"action":"broadcast_others","n":1}`))
			a.expect(dataFrame(echoID, `{"action":"broadcast_others","n":1}`))
			a.expect(dataFrame(id2, `{"action":"broadcast_others","n":1}`))

			b.send(messageFrame(echoID, `{"action":"broadcast_others","n":2}`))
			a.expect(dataFrame(echoID, `{"action":"broadcast_others","n":2}`))
			a.expect(dataFrame(id2, `{"action":"broadcast_others","n":2}`))
			b.expectNothing()
		})
	}
}
