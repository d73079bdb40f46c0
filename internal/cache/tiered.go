package cache

import (
	"context"
	"time"
)

// TieredStore is a [Store] that keeps short-lived decoded copies of a
// shared store's values (Redis, read by every replica) in an in-process
// [Memory] in front of it. Build it with [Tiered].
//
// A [Cache] answers a fresh hit from the local copies without a round trip
// to the shared store and without a JSON decode; the price is that a value
// another replica writes is seen here up to the copies' TTL later. A copy
// never outlives its value's freshness end, so TTL expiry and the close
// invalidation stay exact.
type TieredStore struct {
	local  *Memory
	shared Store
	ttl    time.Duration // how long a local copy is used; 0 = no copies
}

var _ Store = (*TieredStore)(nil)

// Tiered returns a store that reads local before shared and keeps local
// copies for at most ttl (0 turns local copies off: every read goes to
// shared). Writes go to shared; the [Cache] keeps the local copies itself,
// as decoded values.
func Tiered(local *Memory, shared Store, ttl time.Duration) *TieredStore {
	return &TieredStore{local: local, shared: shared, ttl: max(ttl, 0)}
}

// Get returns each key's local copy when there is one, else the shared
// store's value.
func (t *TieredStore) Get(ctx context.Context, keys ...string) ([][]byte, error) {
	out, _ := t.local.Get(ctx, keys...)
	var rest []string
	var at []int
	for i, v := range out {
		if v == nil {
			rest, at = append(rest, keys[i]), append(at, i)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	vals, err := t.shared.Get(ctx, rest...)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		if j < len(vals) {
			out[i] = vals[j]
		}
	}
	return out, nil
}

// Set writes the shared store. Local copies are kept only for decoded
// values, whose freshness end is known (see keep).
func (t *TieredStore) Set(ctx context.Context, items ...Item) error {
	return t.shared.Set(ctx, items...)
}

// keep keeps a decoded local copy of a value for the local TTL, never past
// its freshness end until (expired values are not kept: stale serving
// reads the shared store).
func (t *TieredStore) keep(key string, env encoder, until, now time.Time) {
	if t.ttl > 0 {
		t.local.put(key, env, min(t.ttl, until.Sub(now)))
	}
}

// setDecoded keeps local copies of items and writes them to the shared
// store.
func (t *TieredStore) setDecoded(ctx context.Context, items []saved, ttl time.Duration) error {
	now := t.local.now()
	for _, it := range items {
		t.keep(it.key, it.env, it.until, now)
	}
	return setEnvelopes(ctx, t.shared, items, ttl)
}
