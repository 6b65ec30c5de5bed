package cable

import (
	"context"
	"sync"
)

// MemoryPubSub is a PubSub that delivers within one process, like Rails'
// async adapter. The zero value is ready to use; it is the Server's default.
type MemoryPubSub struct {
	mu      sync.RWMutex
	streams map[string]map[*memorySub]struct{}
}

// memorySub is one Subscribe call; its mutex makes delivery and
// unsubscription exclusive, so deliver is never called after unsubscribe
// has returned, and calls to one deliver never overlap.
type memorySub struct {
	mu      sync.Mutex
	deliver func([]byte)
	done    bool
}

var _ PubSub = (*MemoryPubSub)(nil)

// Publish calls every subscriber of stream before it returns.
func (m *MemoryPubSub) Publish(ctx context.Context, stream string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.RLock()
	subs := make([]*memorySub, 0, len(m.streams[stream]))
	for s := range m.streams[stream] {
		subs = append(subs, s)
	}
	m.mu.RUnlock()
	for _, s := range subs {
		s.mu.Lock()
		if !s.done {
			s.deliver(payload)
		}
		s.mu.Unlock()
	}
	return nil
}

// Subscribe registers deliver for stream; it is active when Subscribe returns.
func (m *MemoryPubSub) Subscribe(ctx context.Context, stream string, deliver func([]byte)) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &memorySub{deliver: deliver}
	m.mu.Lock()
	if m.streams == nil {
		m.streams = make(map[string]map[*memorySub]struct{})
	}
	set := m.streams[stream]
	if set == nil {
		set = make(map[*memorySub]struct{})
		m.streams[stream] = set
	}
	set[s] = struct{}{}
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			if set := m.streams[stream]; set != nil {
				delete(set, s)
				if len(set) == 0 {
					delete(m.streams, stream)
				}
			}
			m.mu.Unlock()
			s.mu.Lock()
			s.done = true
			s.mu.Unlock()
		})
	}, nil
}
