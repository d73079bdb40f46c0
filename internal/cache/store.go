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
//
// A [Cache] keeps its values in a Memory as decoded Go values, not JSON:
// a hit then costs a map lookup and a struct copy instead of a JSON decode.
// Such entries are encoded only if someone reads them through [Memory.Get].
type Memory struct {
	max int
	now func() time.Time

	mu sync.Mutex // guards ll and m
	ll *list.List // front = most recently used; values are *memEntry
	m  map[string]*list.Element
}

type memEntry struct {
	key     string
	val     []byte // encoded value; for an obj entry, nil until Get asks
	obj     encoder
	expires time.Time
}

// encoder is a decoded value a Cache keeps in a Memory (its *envelope[T]);
// Get encodes it for callers that want bytes.
type encoder interface {
	encode() ([]byte, error)
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
		if e.val == nil && e.obj != nil {
			raw, err := e.obj.encode()
			if err != nil {
				continue // cannot happen for the cache's envelopes; read as absent
			}
			e.val = raw
		}
		out[i] = e.val
	}
	return out, nil
}

// lookup returns the live entry under key (given as bytes so that a
// caller can build it on its stack: the map index does not copy it),
// touching it for the LRU. The entry's obj and raw must not be modified.
func (s *Memory) lookup(key []byte) (obj encoder, raw []byte, ok bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.touch(s.m[string(key)], now)
}

// lookupString is lookup for a key the caller already holds as a string.
func (s *Memory) lookupString(key string) (obj encoder, raw []byte, ok bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.touch(s.m[key], now)
}

// touch returns el's entry if it is live, moving it to the front, and
// drops it if it has expired. s.mu must be held.
func (s *Memory) touch(el *list.Element, now time.Time) (encoder, []byte, bool) {
	if el == nil {
		return nil, nil, false
	}
	e := el.Value.(*memEntry)
	if !now.Before(e.expires) {
		s.ll.Remove(el)
		delete(s.m, e.key)
		return nil, nil, false
	}
	s.ll.MoveToFront(el)
	return e.obj, e.val, true
}

// put stores a decoded value for ttl (not stored when ttl <= 0).
func (s *Memory) put(key string, obj encoder, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	s.insert(&memEntry{key: key, obj: obj, expires: s.now().Add(ttl)})
}

func (s *Memory) insert(e *memEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.insertLocked(e)
}

func (s *Memory) insertLocked(e *memEntry) {
	if el, ok := s.m[e.key]; ok {
		el.Value = e
		s.ll.MoveToFront(el)
		return
	}
	s.m[e.key] = s.ll.PushFront(e)
	for s.ll.Len() > s.max {
		last := s.ll.Back()
		s.ll.Remove(last)
		delete(s.m, last.Value.(*memEntry).key)
	}
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
		s.insertLocked(&memEntry{key: it.Key, val: it.Value, expires: now.Add(it.TTL)})
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

// saved is one decoded value to store.
type saved struct {
	key   string
	env   encoder // an *envelope[T]
	until time.Time
}

// decodedSetter is a Store that can keep decoded values ([Memory] and the
// wrappers around stores), so that a value written by the [Cache] is
// encoded only for the stores that keep bytes.
type decodedSetter interface {
	setDecoded(ctx context.Context, items []saved, ttl time.Duration) error
}

// setEnvelopes stores items in s for ttl: decoded where s can keep them
// so, else JSON-encoded.
func setEnvelopes(ctx context.Context, s Store, items []saved, ttl time.Duration) error {
	if d, ok := s.(decodedSetter); ok {
		return d.setDecoded(ctx, items, ttl)
	}
	raws := make([]Item, 0, len(items))
	for _, it := range items {
		if raw, err := it.env.encode(); err == nil {
			raws = append(raws, Item{Key: it.key, Value: raw, TTL: ttl})
		}
	}
	if len(raws) == 0 {
		return nil
	}
	return s.Set(ctx, raws...)
}

// setDecoded keeps items as decoded values.
func (s *Memory) setDecoded(_ context.Context, items []saved, ttl time.Duration) error {
	for _, it := range items {
		s.put(it.key, it.env, ttl)
	}
	return nil
}

// localTier returns the in-process [Memory] a store answers hits from:
// the store itself when it is a Memory (or a [FailoverStore] whose primary
// is one, which never fails), with tier nil; or a [TieredStore]'s local
// copies, with tier set. hot is nil for any other store.
func localTier(s Store) (hot *Memory, tier *TieredStore) {
	switch s := s.(type) {
	case *Memory:
		return s, nil
	case *TieredStore:
		return s.local, s
	case *FailoverStore:
		if m, ok := s.primary.(*Memory); ok {
			return m, nil
		}
	}
	return nil, nil
}
