package cable

import (
	"fmt"
	"slices"
	"testing"
)

type keyedItem struct{ k string }

func (x *keyedItem) key() string { return x.k }

// A keyedList finds, keeps order and forgets the same way below and above
// the size at which it starts indexing.
func TestKeyedList(t *testing.T) {
	for _, n := range []int{3, keyedIndexAt, keyedIndexAt + 1, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var l keyedList[*keyedItem]
			var want []*keyedItem
			for i := 0; i < n; i++ {
				x := &keyedItem{fmt.Sprint(i)}
				l.add(x)
				want = append(want, x)
			}
			for _, i := range []int{n - 1, 0, n / 2} {
				x, _ := l.get(fmt.Sprint(i))
				l.remove(x)
				want = slices.DeleteFunc(want, func(y *keyedItem) bool { return y == x })
			}
			if !slices.Equal(l.items, want) {
				t.Fatalf("items %v; want %v", l.items, want)
			}
			for i := 0; i < n; i++ {
				x, ok := l.get(fmt.Sprint(i))
				inWant := slices.ContainsFunc(want, func(y *keyedItem) bool { return y.k == fmt.Sprint(i) })
				if ok != inWant || ok && x.k != fmt.Sprint(i) {
					t.Errorf("get(%d) = %v, %v; want found=%v", i, x, ok, inWant)
				}
			}
			if _, ok := l.get("nope"); ok {
				t.Error(`get("nope") found something`)
			}
		})
	}
}
