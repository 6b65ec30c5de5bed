package cable_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/gocable/gocable/cable"
)

type decodeInner struct {
	X int `json:"x"`
}

type decodeBase struct {
	Tenant string `json:"tenant"`
}

type decodeTarget struct {
	decodeBase
	Action string                 `json:"action"`
	Body   string                 `json:"body"`
	Count  int                    // no tag: the key is "Count"
	Skip   string                 `json:"-"`
	Inner  *decodeInner           `json:"inner"`
	List   []decodeInner          `json:"list"`
	ByName map[string]decodeInner `json:"by_name"`
	At     time.Time              `json:"at"`
	Any    map[string]any         `json:"any"`
}

func TestValueDecodeExactKeys(t *testing.T) {
	at := time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC)
	for _, tc := range []struct {
		name string
		data string
		want decodeTarget
	}{
		{"exact", `{"action":"speak","body":"hi","Count":2,"tenant":"acme"}`,
			decodeTarget{decodeBase: decodeBase{Tenant: "acme"}, Action: "speak", Body: "hi", Count: 2}},
		{"folded keys are not the field's", `{"Body":"hi","count":2,"TENANT":"x","Action":"a"}`, decodeTarget{}},
		{"exact wins over folded", `{"BODY":"no","body":"yes"}`, decodeTarget{Body: "yes"}},
		{"last duplicate wins", `{"body":"a","body":"b"}`, decodeTarget{Body: "b"}},
		{"nested", `{"inner":{"X":1},"list":[{"x":1},{"X":2}],"by_name":{"a":{"X":3},"b":{"x":4}}}`,
			decodeTarget{Inner: &decodeInner{}, List: []decodeInner{{X: 1}, {}},
				ByName: map[string]decodeInner{"a": {}, "b": {X: 4}}}},
		{"self-decoding and untyped values unchanged", `{"at":"2026-12-08T01:02:03Z","any":{"Body":1}}`,
			decodeTarget{At: at, Any: map[string]any{"Body": 1.0}}},
		{"tag -", `{"Skip":"x","-":"y"}`, decodeTarget{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got decodeTarget
			if err := cable.Data(json.RawMessage(tc.data)).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode(%s) = %+v; want %+v", tc.data, got, tc.want)
			}
		})
	}
	// What Decode adds: encoding/json alone takes the folded key.
	var folded decodeTarget
	if err := json.Unmarshal([]byte(`{"Body":"hi"}`), &folded); err != nil || folded.Body != "hi" {
		t.Fatalf("json.Unmarshal no longer folds keys (%+v, %v): Decode may be redundant", folded, err)
	}
}

func TestValueDecodeEdges(t *testing.T) {
	d := decodeTarget{Body: "kept"}
	if err := (cable.Value{}).Decode(&d); err != nil || d.Body != "kept" {
		t.Errorf("missing Value: Decode = %v, %+v; want no change", err, d)
	}
	if err := cable.Data(json.RawMessage(`{}`)).Decode(d); err == nil {
		t.Error("Decode(non-pointer) = nil; want an error")
	}
	if err := cable.Data(json.RawMessage(`{"body":1}`)).Decode(&d); err == nil {
		t.Error(`Decode({"body":1}) into a string field = nil; want json's type error`)
	}
	var s []decodeInner
	if err := cable.Data(json.RawMessage(`{"a":[{"X":1},{"x":2}]}`)).Get("a").Decode(&s); err != nil || !reflect.DeepEqual(s, []decodeInner{{}, {X: 2}}) {
		t.Errorf("Get(a).Decode = %v, %+v", err, s)
	}
}
