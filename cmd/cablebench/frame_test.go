package main

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    frame
		wantErr error
	}{
		{"welcome", `{"type":"welcome"}`, frame{Type: typeWelcome}, nil},
		{"welcome with sid", `{"type":"welcome","sid":"abc"}`, frame{Type: typeWelcome}, nil},
		{"ping", `{"type":"ping","message":1717000000}`, frame{Type: typePing, Message: []byte("1717000000")}, nil},
		{"confirm", `{"identifier":"{\"channel\":\"BenchmarkChannel\"}","type":"confirm_subscription"}`,
			frame{Type: typeConfirm, Identifier: []byte(`"{\"channel\":\"BenchmarkChannel\"}"`)}, nil},
		{"reject", `{"identifier":"{}","type":"reject_subscription"}`, frame{Type: typeReject, Identifier: []byte(`"{}"`)}, nil},
		{"disconnect", `{"type":"disconnect","reason":"server_restart","reconnect":true}`, frame{Type: typeDisconnect, Reason: "server_restart"}, nil},
		{"disconnect null reason", `{"type":"disconnect","reason":null,"reconnect":true}`, frame{Type: typeDisconnect}, nil},
		{"data", `{"identifier":"{\"channel\":\"X\"}","message":{"seq":1,"nested":{"type":"no"},"list":[1,"]}",{}]}}`,
			frame{Identifier: []byte(`"{\"channel\":\"X\"}"`), Message: []byte(`{"seq":1,"nested":{"type":"no"},"list":[1,"]}",{}]}`)}, nil},
		{"data string message", `{"identifier":"i","message":"he said \"}\""}`,
			frame{Identifier: []byte(`"i"`), Message: []byte(`"he said \"}\""`)}, nil},
		{"whitespace and order", " {\n \"message\" : [ 1 , 2 ] ,\t\"type\" :\"x\" } ", frame{Type: "x", Message: []byte("[ 1 , 2 ]")}, nil},
		{"escaped type", `{"type":"w\u0065lcome"}`, frame{Type: typeWelcome}, nil},
		{"type not a string", `{"type":3}`, frame{}, nil},
		{"empty object", `{}`, frame{}, nil},
		{"array", `[1,2]`, frame{}, errNotObject},
		{"empty", ``, frame{}, errNotObject},
		{"not json", `welcome`, frame{}, errNotObject},
		{"truncated string", `{"type":"welc`, frame{}, errTruncated},
		{"truncated object", `{"message":{"a":1}`, frame{Message: []byte(`{"a":1}`)}, errTruncated},
		{"truncated nested", `{"message":{"a":[1`, frame{}, errTruncated},
		{"missing colon", `{"type" "welcome"}`, frame{}, errSyntax},
		{"missing comma", `{"type":"welcome" "a":1}`, frame{Type: typeWelcome}, errSyntax},
		{"bare key", `{type:"welcome"}`, frame{}, errSyntax},
		{"missing value", `{"type":}`, frame{}, errSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFrame([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("parseFrame(%q) error = %v; want %v", tt.in, err, tt.wantErr)
			}
			if got.Type != tt.want.Type || string(got.Identifier) != string(tt.want.Identifier) ||
				string(got.Message) != string(tt.want.Message) || got.Reason != tt.want.Reason {
				t.Errorf("parseFrame(%q) = {%q %s %s %q}; want {%q %s %s %q}", tt.in,
					got.Type, got.Identifier, got.Message, got.Reason,
					tt.want.Type, tt.want.Identifier, tt.want.Message, tt.want.Reason)
			}
		})
	}
}

func TestParseFrameAllocs(t *testing.T) {
	b := []byte(`{"identifier":"{\"channel\":\"BenchmarkChannel\"}","message":{"action":"broadcast","run":"0a1b2c3d","seq":7,"sent":123456789}}`)
	allocs := testing.AllocsPerRun(100, func() {
		f, err := parseFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := parsePayload(f.Message); !ok {
			t.Fatal("no payload")
		}
	})
	if allocs != 0 {
		t.Errorf("parseFrame+parsePayload allocate %v times per frame; want 0", allocs)
	}
}

func TestParsePayload(t *testing.T) {
	tests := []struct {
		in     string
		want   payload
		wantOK bool
	}{
		{`{"action":"broadcast","run":"ab","seq":3,"sent":1500}`, payload{Action: actionBroadcast, Run: []byte(`"ab"`), Seq: 3, Sent: 1500}, true},
		{`{"sent":1500,"seq":3,"action":"broadcastResult"}`, payload{Action: actionBroadcastResult, Seq: 3, Sent: 1500}, true},
		{`{"seq":0,"sent":0,"pad":"xxxx","extra":{"seq":99}}`, payload{Seq: 0, Sent: 0}, true},
		{`{"seq":-1,"sent":2}`, payload{Seq: -1, Sent: 2}, true},
		{`{"seq":3.0,"sent":1.5e9}`, payload{Seq: 3, Sent: 1500000000}, true},
		{`{"seq":3,"sent":9999999999999999999}`, payload{Seq: 3}, false}, // overflows int64
		{`{"seq":3.5,"sent":1}`, payload{Sent: 1}, false},
		{`{"seq":"3","sent":1}`, payload{Sent: 1}, false},
		{`{"seq":3}`, payload{Seq: 3}, false},
		{`{"sent":3}`, payload{Sent: 3}, false},
		{`[1]`, payload{}, false},
		{`{"seq":1,"sent":2`, payload{Seq: 1, Sent: 2}, false},
		{`1717000000`, payload{}, false},
	}
	for _, tt := range tests {
		got, ok := parsePayload([]byte(tt.in))
		if ok != tt.wantOK || got.Action != tt.want.Action || got.Seq != tt.want.Seq || got.Sent != tt.want.Sent ||
			(tt.want.Run != nil && string(got.Run) != string(tt.want.Run)) {
			t.Errorf("parsePayload(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"0", 0, true},
		{"7", 7, true},
		{"-42", -42, true},
		{"123456789012345678", 123456789012345678, true},
		{"9007199254740993", 9007199254740993, true},
		{"1e3", 1000, true},
		{"2.0", 2, true},
		{"", 0, false},
		{"-", 0, false},
		{"1.5", 0, false},
		{"null", 0, false},
		{"true", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseInt([]byte(tt.in))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	run := []byte(`"c0ffee00"`)
	for _, pad := range []int{0, 1, 100} {
		b := appendPayload(nil, actionEcho, run, 12, 3456, pad)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("appendPayload(pad %d) = %s: %v", pad, b, err)
		}
		if pad > 0 && len(v["pad"].(string)) != pad {
			t.Errorf("appendPayload(pad %d): pad has %d bytes", pad, len(v["pad"].(string)))
		}
		p, ok := parsePayload(b)
		if !ok || p.Action != actionEcho || string(p.Run) != string(run) || p.Seq != 12 || p.Sent != 3456 {
			t.Errorf("parsePayload(appendPayload(pad %d)) = %+v, %v", pad, p, ok)
		}
	}
}

func TestCommands(t *testing.T) {
	id := `{"channel":"BenchmarkChannel","room":"<1>"}`
	var sub struct{ Command, Identifier string }
	if err := json.Unmarshal(subscribeCommand(id), &sub); err != nil || sub.Command != "subscribe" || sub.Identifier != id {
		t.Errorf("subscribeCommand(%q) decodes to %+v, %v", id, sub, err)
	}
	data := []byte(`{"action":"echo","seq":1,"sent":2}`)
	var msg struct{ Command, Identifier, Data string }
	b := messageCommand(nil, appendJSONString(nil, id), data)
	if err := json.Unmarshal(b, &msg); err != nil || msg.Command != "message" || msg.Identifier != id || msg.Data != string(data) {
		t.Errorf("messageCommand = %s, decodes to %+v, %v", b, msg, err)
	}
}

func TestIsJSONObject(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{"channel":"BenchmarkChannel"}`, true},
		{` { "channel" : "X", "room": 1 } `, true},
		{`{}`, true},
		{`{"a":1} x`, false},
		{`{"a":1`, false},
		{`[]`, false},
		{`"s"`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := isJSONObject(tt.in); got != tt.want {
			t.Errorf("isJSONObject(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzParseFrame checks parseFrame against encoding/json on valid objects.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"welcome"}`,
		`{"identifier":"{\"channel\":\"X\"}","message":{"a":[1,{"b":"}"}]}}`,
		`{"type":"disconnect","reason":"remote","reconnect":false}`,
		`{"type":"t\"y"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseFrame(b)           // must not panic on anything
		var want map[string]json.RawMessage // exact keys, last one wins, as parseFrame
		if json.Unmarshal(b, &want) != nil || !isJSONObject(string(b)) {
			return
		}
		if err != nil {
			t.Fatalf("parseFrame(%q): %v; encoding/json accepts it", b, err)
		}
		var typ string
		// encoding/json replaces invalid UTF-8; parseFrame keeps the bytes.
		if json.Unmarshal(want["type"], &typ) == nil && utf8.Valid(want["type"]) && got.Type != typ {
			t.Errorf("parseFrame(%q).Type = %q; want %q", b, got.Type, typ)
		}
		if m, ok := want["message"]; ok && string(got.Message) != string(m) {
			t.Errorf("parseFrame(%q).Message = %s; want %s", b, got.Message, m)
		}
		if id, ok := want["identifier"]; ok && string(got.Identifier) != string(id) {
			t.Errorf("parseFrame(%q).Identifier = %s; want %s", b, got.Identifier, id)
		}
	})
}
