package cable_test

import (
	"testing"
)

// A lone UTF-16 surrogate escape (\ud800) in the JSON a client sends is
// accepted, as cable/doc.go documents: the identifier and the data reach
// the channel, and the escape is echoed as the client wrote it. Ruby's
// JSON parser (json 2.6, Debian's ruby-json) raises "incomplete surrogate
// pair" instead, so Rails logs "Could not execute command" and drops the
// message (connection/subscriptions.rb, execute_command). The official
// client's JSON.stringify writes a lone surrogate as exactly this escape.
func TestLoneSurrogateAccepted(t *testing.T) {
	tests := []struct {
		name string
		id   string
		data string
		want string // the frame the channel answers with
	}{
		{"in the identifier", `{"channel":"EchoChannel","room":"\ud800"}`, `{"action":"noargs"}`, `{"noargs":true}`},
		{"in the data", echoID, `{"action":"echo","text":"a\ud800b"}`, `{"action":"echo","text":"a\ud800b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			c := ts.dial(t, nil)
			c.expect(`{"type":"welcome"}`)
			c.send(subscribeFrame(tt.id))
			c.expect(confirmFrame(tt.id))
			c.send(messageFrame(tt.id, tt.data))
			c.expect(dataFrame(tt.id, tt.want))
		})
	}
}
