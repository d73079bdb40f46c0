package cache

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Store keeps opaque values under string keys for a while. Implementations
// must be safe for concurrent use.
type Store interface {
	// Get returns the values under keys, in order, with nil for a key that
	// is absent or expired. An error means the store itself failed.
	Get(ctx context.Context, keys ...string) ([][]byte, error)
	// Set stores every item, each kept for its TTL.
	Set(ctx context.Context, items ...Item) error
}

// Item is one value to store.
type Item struct {
	Key   string
	Value []byte
	TTL   time.Duration
}

// Memory is an in-memory LRU [Store] bounded by entry count: when full, the
// least recently used entry goes. Expired entries are dropped when read.
type Memory struct {
	max int
	now func() time.Time

	mu sync.Mutex // guards ll and m
	ll *list.List // front = most recently used; values are *memEntry
	m  map[string]*list.Element
}

type memEntry struct {
	key     string
	val     []byte
	expires time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an LRU store holding at most maxEntries values (at
// least 1). now is the clock for expiry (time.Now when nil).
func NewMemory(maxEntries int, now func() time.Time) *Memory {
	if maxEntries < 1 {
		maxEntries = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{max: maxEntries, now: now, ll: list.New(), m: map[string]*list.Element{}}
}

// Get returns the live values under keys; it never fails.
func (s *Memory) Get(_ context.Context, keys ...string) ([][]byte, error) {
	now := s.now()
	out := make([][]byte, len(keys))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range keys {
		el, ok := s.m[k]
		if !ok {
			continue
		}
		e := el.Value.(*memEntry)
		if !now.Before(e.expires) {
			s.ll.Remove(el)
			delete(s.m, k)
			continue
		}
		s.ll.MoveToFront(el)
		out[i] = e.val
	}
	return out, nil
}

// Set stores the items, evicting the least recently used entries beyond
// the bound; it never fails. Items with a TTL <= 0 are not stored.
func (s *Memory) Set(_ context.Context, items ...Item) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		if it.TTL <= 0 {
			continue
		}
		e := &memEntry{key: it.Key, val: it.Value, expires: now.Add(it.TTL)}
		if el, ok := s.m[it.Key]; ok {
			el.Value = e
			s.ll.MoveToFront(el)
			continue
		}
		s.m[it.Key] = s.ll.PushFront(e)
		for s.ll.Len() > s.max {
			last := s.ll.Back()
			s.ll.Remove(last)
			delete(s.m, last.Value.(*memEntry).key)
		}
	}
	return nil
}

// Len returns the number of entries held (expired ones included until
// they are read or evicted).
func (s *Memory) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ll.Len()
}
