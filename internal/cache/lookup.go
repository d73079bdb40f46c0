package cache

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/kisfeed/kisfeed"
)

// hitOrigin is the origin of a fresh hit: "cache", or "stale" while the
// upstream is known to be down.
func (c *Cache) hitOrigin(ctx context.Context) kisfeed.Origin { return c.health.origin(ctx) }

// observe counts one served lookup by its origin.
func (c *Cache) observe(kind string, origin kisfeed.Origin) {
	switch origin {
	case kisfeed.OriginCache:
		c.obs.Hit(kind)
	case kisfeed.OriginStale:
		c.obs.Stale(kind)
	default:
		c.obs.Miss(kind)
	}
}

// passThrough reports whether an upstream error goes to the caller as it
// is: a business error (bad input, unknown code) or a configuration error.
func (c *Cache) passThrough(err error) bool {
	return kisfeed.IsBusinessError(err) || c.configErr(err)
}

// decodeRaw decodes a stored JSON envelope.
func decodeRaw[T any](raw []byte) (*envelope[T], bool) {
	if raw == nil {
		return nil, false
	}
	env := new(envelope[T])
	if json.Unmarshal(raw, env) != nil || env.FetchedAt.IsZero() {
		return nil, false
	}
	return env, true
}

// fromEntry turns a Memory entry into an envelope: the decoded value when
// the cache stored it, else its bytes decoded (a value Set from outside).
func fromEntry[T any](obj encoder, raw []byte, ok bool) (*envelope[T], bool) {
	if !ok {
		return nil, false
	}
	if env, ok := obj.(*envelope[T]); ok {
		return env, true
	}
	return decodeRaw[T](raw)
}

// load returns key's stored envelope: the decoded hot copy, else (with a
// shared store) the store's (or fallback's) value, of which a local copy
// is kept while fresh.
func load[T any](ctx context.Context, c *Cache, key string) (*envelope[T], bool) {
	if env, ok := fromEntry[T](c.hot.lookupString(key)); ok || c.tier == nil {
		return env, ok
	}
	env, ok := decodeRaw[T](c.get(ctx, key)[0])
	if ok {
		c.keepLocal(key, env, env.FreshUntil, c.now())
	}
	return env, ok
}

// hit answers from env when it is fresh: no flight, no decode, no
// allocation but the caller's copy.
func hit[T any](ctx context.Context, c *Cache, kind string, env *envelope[T]) (result[T], bool) {
	if env == nil || !c.now().Before(env.FreshUntil) {
		return result[T]{}, false
	}
	origin := c.hitOrigin(ctx)
	c.observe(kind, origin)
	return result[T]{val: env.Value, origin: origin, expires: env.FreshUntil}, true
}

// staleOK reports whether env may stand in for a value the upstream could
// not give.
func (c *Cache) staleOK(env interface{ fetched() time.Time }) bool {
	return c.now().Sub(env.fetched()) <= c.staleMaxAge
}

func (e *envelope[T]) fetched() time.Time { return e.FetchedAt }

// upstreamDown reports whether lookups with a stale copy at hand should
// answer from it at once, starting no flight: the upstream is known to be
// down (circuit open, host refusing connections), so a flight would be
// refused at once or fail through its attempts, and the copy is the
// answer either way — served now rather than after the stale budget (a
// budget of 0 keeps the old behaviour: always ask). The breaker's probe,
// not these requests, finds the recovery.
func (c *Cache) upstreamDown(ctx context.Context) bool {
	return c.staleBudget > 0 && c.health.origin(ctx) == kisfeed.OriginStale
}

// lookup is the read-through path for one key: fresh hit, else upstream,
// else stale copy, else error. A fresh hit on a decoded copy is answered
// before any flight; the flight covers the store read and the upstream.
//
// When a stale copy may exist (a decoded one is at hand, or the store is
// shared and may hold one) and the flight has not ended within the stale
// budget, the caller is answered from the stale copy while the flight goes
// on and stores its answer when it comes; with no copy the caller keeps
// waiting for the flight.
func lookup[T any](ctx context.Context, c *Cache, kind, key string, subj subject, ttl time.Duration, intraday bool,
	fetch func(context.Context) (T, error)) (result[T], error) {
	pre, _ := fromEntry[T](c.hot.lookupString(key))
	if r, ok := hit(ctx, c, kind, pre); ok {
		return r, nil
	}
	if pre != nil && c.staleOK(pre) && c.upstreamDown(ctx) {
		c.obs.Stale(kind)
		return result[T]{val: pre.Value, origin: kisfeed.OriginStale}, nil
	}
	ch := c.startFlight(ctx, key, subj, func(ctx context.Context) (any, error) {
		env, cached := load[T](ctx, c, key)
		now := c.now()
		if cached && now.Before(env.FreshUntil) {
			return result[T]{val: env.Value, origin: c.hitOrigin(ctx), expires: env.FreshUntil}, nil
		}
		if c.tier != nil && c.staleBudget > 0 {
			// Tell callers whose budget passes what the store holds (the
			// copy, or that there is none), so they need no read of
			// their own.
			var held any = noCopy{}
			if cached {
				held = env
			}
			c.stale.Store(key, held)
			defer c.stale.Delete(key)
		}
		val, err := fetch(ctx)
		if err == nil {
			if kind == KindPrice || kind == KindOrderBook {
				// A feed may write these through meanwhile (see
				// writethrough.go): keep what is newer.
				val, until := saveNewest(ctx, c, subj.code, key, val, ttl)
				return result[T]{val: val, origin: kisfeed.OriginSource, expires: until}, nil
			}
			fetched := c.now()
			until := c.freshUntil(fetched, ttl, intraday)
			c.save(ctx, saved{key: key, env: &envelope[T]{FetchedAt: fetched, FreshUntil: until, Value: val}, until: until})
			return result[T]{val: val, origin: kisfeed.OriginSource, expires: until}, nil
		}
		if c.passThrough(err) {
			return nil, err
		}
		if cached && c.staleOK(env) {
			return result[T]{val: env.Value, origin: kisfeed.OriginStale}, nil
		}
		return nil, unavailable(err)
	})
	v, err := c.awaitFlight(ctx, ch, (pre != nil && c.staleOK(pre)) || c.tier != nil)
	if err == errBudget {
		// The upstream is slow (or failing through its retries): answer
		// from the copy at hand, or the one the flight read from the
		// shared store, and let the flight finish in the background.
		env, read := pre, false
		if env == nil {
			var held any
			if held, read = c.stale.Load(key); read {
				env, _ = held.(*envelope[T]) // nil for noCopy
			}
		}
		if env == nil && !read && c.tier != nil {
			// The flight has not read the shared store yet: its goroutine
			// has not run, or the read is still on its way (a loaded
			// machine, a Redis round trip longer than the budget). Read
			// it here: waiting for the flight instead would wait for the
			// upstream, which may hang until this caller's deadline,
			// with a stale copy in the store all along.
			env, _ = decodeRaw[T](c.get(ctx, key)[0])
			if env != nil && c.now().Before(env.FreshUntil) {
				// The flight stored its answer meanwhile and is about to
				// hand it over: take it from the flight, so that no
				// caller returns before the flight has ended (a caller
				// coming next would join it and get its answer as new).
				env = nil
			}
		}
		if env != nil && c.staleOK(env) {
			c.obs.Stale(kind)
			return result[T]{val: env.Value, origin: kisfeed.OriginStale}, nil
		}
		pre = env
		v, err = c.awaitFlight(ctx, ch, false)
	}
	if err != nil {
		// This caller's deadline passed while the flight it joined went
		// on: the copy it saw before the flight still beats a 504.
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && pre != nil && c.staleOK(pre) {
			c.obs.Stale(kind)
			return result[T]{val: pre.Value, origin: kisfeed.OriginStale}, nil
		}
		c.obs.Miss(kind)
		return result[T]{}, err
	}
	r := v.(result[T])
	c.observe(kind, r.origin)
	return r, nil
}

// noCopy is what a flight publishes in Cache.stale when the shared store
// holds no copy of its key.
type noCopy struct{}

// stamp sets a served value's provenance.
func stamp(m *kisfeed.Meta, origin kisfeed.Origin, expires time.Time) {
	m.Origin = origin
	m.Stale = origin == kisfeed.OriginStale
	m.Expires = expires
	if m.Stale {
		m.Expires = time.Time{}
	}
	if !m.AsOf.IsZero() {
		m.AsOf = m.AsOf.In(kisfeed.KST)
	}
}

// stockKind describes a per-code value, kept under stock:{code}:{what}.
type stockKind struct {
	kind     string // for the Observer
	what     string // the key's last part
	name     string // in errors: "quote 005930"
	intraday bool   // freshness ends at the next session boundary
}

var (
	priceKind = stockKind{kind: KindPrice, what: "price", name: "quote", intraday: true}
	bookKind  = stockKind{kind: KindOrderBook, what: "orderbook", name: "order book", intraday: true}
	infoKind  = stockKind{kind: KindInfo, what: "info", name: "stock info"}
)

// stockGet is the read path of a per-code value: a fresh hit on a decoded
// copy, else the shared [lookup] calling fetch on the upstream. The caller
// gets its own copy, its Meta (found by meta) stamped with the origin.
// fetch and meta are method expressions and func literals that capture
// nothing, so that the hit path allocates only the copy.
func stockGet[T any](ctx context.Context, c *Cache, k stockKind, code kisfeed.Code, ttl time.Duration,
	fetch func(kisfeed.Source, context.Context, kisfeed.Code) (*T, error), meta func(*T) *kisfeed.Meta) (*T, error) {
	r, ok := stockHit[T](ctx, c, k.kind, code, k.what)
	if !ok {
		var err error
		r, err = lookup(ctx, c, k.kind, c.stockKey(code, k.what), subject{what: k.name, arg: code.String(), code: code}, ttl, k.intraday,
			func(ctx context.Context) (T, error) { return deref(fetch(c.up, ctx, code)) })
		if err != nil {
			return nil, err
		}
	}
	v := new(T)
	*v = r.val
	stamp(meta(v), r.origin, r.expires)
	return v, nil
}

// deref is an upstream answer as a value to store.
func deref[T any](p *T, err error) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	return *p, nil
}

// stockHit answers a fresh hit on stock:{code}:{what} with the key built
// on the stack: the hit path's only allocation is the caller's copy.
func stockHit[T any](ctx context.Context, c *Cache, kind string, code kisfeed.Code, what string) (result[T], bool) {
	var kb [64]byte
	env, _ := fromEntry[T](c.hot.lookup(c.appendStockKey(kb[:0], code, what)))
	return hit(ctx, c, kind, env)
}
