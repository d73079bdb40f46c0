package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Quotes serves the cached codes from the cache and fetches the rest in one
// upstream Quotes call.
func (c *Cache) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	b := newQuoteBatch(c, codes)
	if len(b.uniq) > 0 {
		b.serveHits(ctx)
		if len(b.misses) > 0 {
			if err := b.fetchMisses(ctx); err != nil {
				return nil, err
			}
		}
	}
	if b.be != nil {
		return b.out, b.be
	}
	return b.out, nil
}

// quoteBatch is one Quotes call: its answers by position, its per-code
// errors, and the codes still to fetch with their stale copies.
type quoteBatch struct {
	c    *Cache
	out  []*kisfeed.Quote
	be   *kisfeed.BatchError    // nil until a code fails
	uniq []kisfeed.Code         // unique codes, in order
	pos  map[kisfeed.Code][]int // the positions each code fills

	now       time.Time
	hitOrigin kisfeed.Origin // asked once, on the first hit
	misses    []kisfeed.Code
	stale     map[kisfeed.Code]*envelope[kisfeed.Quote]
}

// newQuoteBatch groups codes by code and counts them for refresh-ahead.
func newQuoteBatch(c *Cache, codes []kisfeed.Code) *quoteBatch {
	b := &quoteBatch{c: c, out: make([]*kisfeed.Quote, len(codes)), pos: map[kisfeed.Code][]int{},
		stale: map[kisfeed.Code]*envelope[kisfeed.Quote]{}}
	for i, code := range codes {
		if _, seen := b.pos[code]; !seen {
			b.uniq = append(b.uniq, code)
			if c.ref != nil {
				c.ref.heat.add(code)
			}
		}
		b.pos[code] = append(b.pos[code], i)
	}
	return b
}

func (b *quoteBatch) fail(code kisfeed.Code, err error) {
	if b.be == nil {
		b.be = &kisfeed.BatchError{Errs: map[string]error{}}
	}
	b.be.Errs[code.String()] = err
}

// put gives every position of code its own stamped copy of q.
func (b *quoteBatch) put(code kisfeed.Code, q kisfeed.Quote, origin kisfeed.Origin, expires time.Time) {
	stamp(&q.Meta, origin, expires)
	for _, i := range b.pos[code] {
		qc := q
		b.out[i] = &qc
	}
}

// classify serves a fresh env as a hit, else notes a miss (with its stale
// copy, if any).
func (b *quoteBatch) classify(ctx context.Context, code kisfeed.Code, env *envelope[kisfeed.Quote], ok bool) {
	if ok && b.now.Before(env.FreshUntil) {
		if b.hitOrigin == "" {
			b.hitOrigin = b.c.hitOrigin(ctx)
		}
		b.c.observe(KindPrice, b.hitOrigin)
		b.put(code, env.Value, b.hitOrigin, env.FreshUntil)
		return
	}
	if ok {
		b.stale[code] = env
	}
	b.misses = append(b.misses, code)
}

// serveHits answers the codes that are fresh: decoded copies first; with
// a shared store, one MGET for the rest.
func (b *quoteBatch) serveHits(ctx context.Context) {
	c := b.c
	b.now = c.now()
	var (
		rest     []kisfeed.Code
		restKeys []string
	)
	for _, code := range b.uniq {
		key := c.stockKey(code, "price")
		env, ok := fromEntry[kisfeed.Quote](c.hot.lookupString(key))
		if ok || c.tier == nil {
			b.classify(ctx, code, env, ok)
			continue
		}
		rest, restKeys = append(rest, code), append(restKeys, key)
	}
	if len(rest) == 0 {
		return
	}
	raws := c.get(ctx, restKeys...)
	for i, code := range rest {
		env, ok := decodeRaw[kisfeed.Quote](raws[i])
		if ok {
			c.keepLocal(restKeys[i], env, env.FreshUntil, b.now)
		}
		b.classify(ctx, code, env, ok)
	}
}

// staleFor returns code's stale copy when it may stand in.
func (b *quoteBatch) staleFor(code kisfeed.Code) (*envelope[kisfeed.Quote], bool) {
	env, ok := b.stale[code]
	return env, ok && b.c.staleOK(env)
}

// fetchMisses asks the upstream for the misses in one call; an error
// fails the whole call.
func (b *quoteBatch) fetchMisses(ctx context.Context) error {
	c := b.c
	// With a stale copy of every miss, wait for the upstream only for the
	// stale budget (see lookup).
	allStale := true
	for _, code := range b.misses {
		if _, ok := b.staleFor(code); !ok {
			allStale = false
			break
		}
	}
	var (
		got map[kisfeed.Code]result[kisfeed.Quote]
		err error
	)
	if allStale && c.upstreamDown(ctx) {
		err = errUpstreamDown // no flight: the stale copies below answer
	} else {
		got, err = c.fetchQuotes(ctx, b.misses, allStale)
	}
	var ube *kisfeed.BatchError
	switch {
	case err == nil || errors.As(err, &ube):
		errs := batchErrs(ube)
		for _, code := range b.misses {
			c.obs.Miss(KindPrice)
			if r, ok := got[code]; ok {
				b.put(code, r.val, kisfeed.OriginSource, r.expires)
			} else if e, ok := errs[code.String()]; ok {
				b.fail(code, e)
			} else {
				b.fail(code, fmt.Errorf("%w: no quote for %s", kisfeed.ErrNotFound, code))
			}
		}
		return nil
	case c.passThrough(err) || errors.Is(err, context.Canceled):
		return err
	}
	// Upstream failure, the stale budget passed, or this caller's deadline
	// passed: every miss needs a stale copy, else the whole call fails.
	for _, code := range b.misses {
		if _, ok := b.staleFor(code); !ok {
			c.obs.Miss(KindPrice)
			if ctx.Err() != nil {
				return err
			}
			return unavailable(err)
		}
	}
	for _, code := range b.misses {
		c.obs.Stale(KindPrice)
		b.put(code, b.stale[code].Value, kisfeed.OriginStale, time.Time{})
	}
	return nil
}

// errUpstreamDown stands for the flight a batch did not start because the
// upstream is known to be down ([Cache.upstreamDown]).
var errUpstreamDown = errors.New("upstream known to be down")

// fetchQuotes asks the upstream for codes in one shared flight and stores
// the answers; it returns the fetched quotes by code and the upstream's
// error (a *BatchError for per-code failures). With withBudget it gives up
// waiting after the stale budget (errBudget) while the flight goes on.
func (c *Cache) fetchQuotes(ctx context.Context, codes []kisfeed.Code, withBudget bool) (map[kisfeed.Code]result[kisfeed.Quote], error) {
	type batch struct {
		got map[kisfeed.Code]result[kisfeed.Quote]
		err error
	}
	joined := strings.Join(kisfeed.CodeStrings(codes), ",")
	ch := c.startFlight(ctx, "quotes\x00"+joined, subject{what: "quotes", arg: joined}, func(ctx context.Context) (any, error) {
		qs, err := c.up.Quotes(ctx, codes)
		var be *kisfeed.BatchError
		if err != nil && !errors.As(err, &be) {
			return nil, err
		}
		fetched := c.now()
		until := c.freshUntil(fetched, c.ttl.Price, true)
		got := map[kisfeed.Code]result[kisfeed.Quote]{}
		var items []saved
		for i, q := range qs {
			if q == nil || i >= len(codes) {
				continue
			}
			code := codes[i]
			got[code] = result[kisfeed.Quote]{val: *q, origin: kisfeed.OriginSource, expires: until}
			items = append(items, saved{key: c.stockKey(code, "price"),
				env: &envelope[kisfeed.Quote]{FetchedAt: fetched, FreshUntil: until, Value: *q}, until: until})
			if c.ref != nil {
				c.ref.fetched(code, until)
			}
		}
		c.save(ctx, items...)
		return batch{got: got, err: err}, nil
	})
	v, err := c.awaitFlight(ctx, ch, withBudget)
	if err != nil {
		return nil, err
	}
	b := v.(batch)
	return b.got, b.err
}

// batchErrs returns be's per-code errors; nil-safe.
func batchErrs(be *kisfeed.BatchError) map[string]error {
	if be == nil {
		return nil
	}
	return be.Errs
}
