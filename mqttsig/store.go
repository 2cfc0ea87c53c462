package mqttsig

import (
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// resumeStore wraps paho's memory store so that, after a reconnect, paho
// resends only the messages the lost connection left unacknowledged.
//
// paho starts the new connection's workers and OnConnect handler before it
// resends the stored messages, so without this the subscriptions and the
// presence published by OnConnect are found in the store and written a second
// time, concurrently with their first write (a data race inside paho, and a
// duplicate delivery). seal, called from paho's OnReconnecting handler before
// each attempt, marks what is in the store as "left by the lost connection";
// All reports only those keys.
type resumeStore struct {
	paho.Store
	mu  sync.Mutex
	old map[string]bool
}

func newResumeStore() *resumeStore { return &resumeStore{Store: paho.NewMemoryStore()} }

func (s *resumeStore) seal() {
	keys := s.Store.All()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.old = make(map[string]bool, len(keys))
	for _, k := range keys {
		s.old[k] = true
	}
}

func (s *resumeStore) Put(key string, m packets.ControlPacket) {
	s.mu.Lock()
	delete(s.old, key) // a new message reusing a freed ID
	s.mu.Unlock()
	s.Store.Put(key, m)
}

func (s *resumeStore) Del(key string) {
	s.mu.Lock()
	delete(s.old, key)
	s.mu.Unlock()
	s.Store.Del(key)
}

func (s *resumeStore) All() []string {
	keys := s.Store.All()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := keys[:0]
	for _, k := range keys {
		if s.old[k] {
			out = append(out, k)
		}
	}
	return out
}

func (s *resumeStore) Reset() {
	s.mu.Lock()
	s.old = nil
	s.mu.Unlock()
	s.Store.Reset()
}
