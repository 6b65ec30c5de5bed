package cable

import "slices"

// keyer is an item of a keyedList: it names its own key.
type keyer interface {
	comparable
	key() string
}

// keyedIndexAt is how many items a keyedList holds before it indexes them
// by key. Most lists stay below it: a connection has a few subscriptions,
// and a stream usually one identifier group (every subscriber of a Turbo
// stream sends the same identifier). Some grow to thousands (a client
// subscribing many identifiers, a channel whose identifiers differ per
// subscriber), and a scan per lookup would then make each command O(n).
const keyedIndexAt = 8

// keyedList keeps items in the order they were added and finds one by key:
// by a scan while the list is short, which costs no memory, and by a map
// once it has grown past keyedIndexAt. It is not safe for concurrent use;
// its owner guards it.
type keyedList[T keyer] struct {
	items []T
	index map[string]T
}

// get returns the item with key k, and whether there is one.
func (l *keyedList[T]) get(k string) (T, bool) {
	if l.index != nil {
		x, ok := l.index[k]
		return x, ok
	}
	for _, x := range l.items {
		if x.key() == k {
			return x, true
		}
	}
	var zero T
	return zero, false
}

// add appends x, whose key must not be in the list yet.
func (l *keyedList[T]) add(x T) {
	l.items = append(l.items, x)
	switch {
	case l.index != nil:
		l.index[x.key()] = x
	case len(l.items) > keyedIndexAt:
		l.index = make(map[string]T, 2*len(l.items))
		for _, y := range l.items {
			l.index[y.key()] = y
		}
	}
}

// remove removes x, keeping the others in order.
func (l *keyedList[T]) remove(x T) {
	if i := slices.Index(l.items, x); i >= 0 {
		l.items = slices.Delete(l.items, i, i+1)
	}
	if l.index != nil {
		delete(l.index, x.key())
	}
}
