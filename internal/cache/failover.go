package cache

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultStoreRetry is how long a [FailoverStore] skips a failed primary
// store before trying it again, in the production wiring.
const DefaultStoreRetry = 5 * time.Second

// FailoverConfig tunes a [FailoverStore]; the zero value is usable.
type FailoverConfig struct {
	// Retry is how long a failed primary is skipped before it is tried
	// again (0: tried on every call).
	Retry time.Duration
	// Logger gets one line when the primary starts failing and one when
	// it recovers (discarded when nil).
	Logger *slog.Logger
	// Clock times the retry (time.Now when nil).
	Clock func() time.Time
}

// FailoverStore is a [Store] that mirrors every write to a fallback store
// and reads from it while the primary fails, so that a failing primary
// (Redis down) never fails a request. Build it with [Failover].
type FailoverStore struct {
	primary, fallback Store
	retry             time.Duration
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex // guards down and retryAt
	down    bool
	retryAt time.Time
}

var _ Store = (*FailoverStore)(nil)

// Failover returns a store on primary that falls back to fallback
// (typically a [Memory] behind [Redis]) while primary fails, and probes
// primary again every cfg.Retry.
func Failover(primary, fallback Store, cfg FailoverConfig) *FailoverStore {
	f := &FailoverStore{primary: primary, fallback: fallback, retry: max(cfg.Retry, 0), log: cfg.Logger, now: cfg.Clock}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	return f
}

// usePrimary reports whether the primary store should be tried now.
func (f *FailoverStore) usePrimary() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.down || !f.now().Before(f.retryAt)
}

// note records the outcome of a primary-store call and logs state changes
// once.
func (f *FailoverStore) note(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.retryAt = f.now().Add(f.retry)
		if !f.down {
			f.down = true
			f.log.Warn("cache store failing; serving from memory and upstream", "err", err)
		}
		return
	}
	if f.down {
		f.down = false
		f.log.Info("cache store recovered")
	}
}

// Get reads the primary, or the fallback while the primary fails.
func (f *FailoverStore) Get(ctx context.Context, keys ...string) ([][]byte, error) {
	if f.usePrimary() {
		vals, err := f.primary.Get(ctx, keys...)
		f.note(err)
		if err == nil && len(vals) == len(keys) {
			return vals, nil
		}
	}
	return f.fallback.Get(ctx, keys...)
}

// Set writes both stores; it never fails. The primary is skipped while it
// is failing.
func (f *FailoverStore) Set(ctx context.Context, items ...Item) error {
	f.write(func(s Store) error { return s.Set(ctx, items...) })
	return nil
}

// setDecoded is Set for decoded values: each store gets them decoded or
// encoded, as it keeps them.
func (f *FailoverStore) setDecoded(ctx context.Context, items []saved, ttl time.Duration) error {
	f.write(func(s Store) error { return setEnvelopes(ctx, s, items, ttl) })
	return nil
}

// write applies set to both stores, the in-process one first: a [Memory]
// cannot block, and once it has a value a reader may be answered from it,
// so it must not wait for a remote store's round trip. With a remote
// primary that is the fallback; with a Memory primary (which never fails),
// the primary.
func (f *FailoverStore) write(set func(Store) error) {
	primary := func() {
		if f.usePrimary() {
			f.note(set(f.primary))
		}
	}
	if _, local := f.primary.(*Memory); local {
		primary()
		_ = set(f.fallback)
		return
	}
	_ = set(f.fallback)
	primary()
}
