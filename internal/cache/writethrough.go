package cache

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Write-through: a real-time feed (internal/live) writes what it receives
// into the same keys the read path serves, so that a streamed code's
// quote and book are fresh to the tick and REST reads of it are hits.
//
// A written value is stored like a fetched one: Origin "source" (it came
// from the upstream just now; a read stamps it "cache" as any hit, so no
// new origin reaches the API's meta.origin or X-Cache), fresh for its
// kind's TTL cut at the next session boundary, in the local tier and the
// shared store alike.
//
// Nothing older replaces something newer: a quote's cumulative volume
// never goes backwards within a day, and a book never goes back in time.
// The check and the write hold the code's write lock (codeLock), which the
// read path's saves of prices and books take too, so a REST answer that
// was already behind the stream when it arrived does not overwrite a
// trade written meanwhile.

// writeLocks serialise writes of one code's price and book: 64 stripes,
// so writes of different codes seldom wait for each other and the lock
// table stays fixed whatever the number of codes.
const writeLocks = 64

// codeLock returns the write lock of code's stripe.
func (c *Cache) codeLock(code kisfeed.Code) *sync.Mutex {
	s := code.String()
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return &c.wlocks[h%writeLocks]
}

// ErrNoBase is wrapped in the error [Cache.PutTrade] returns when a trade
// could not be applied because no quote of its day was cached and the
// upstream could not give one: a trade carries no name, limits or tick
// size, so it cannot stand alone.
var ErrNoBase = fmt.Errorf("no base quote for the trade")

// PutTrade merges one execution into the cached quote of t.Code: price,
// change and change rate, the day's open, high and low, cumulative volume
// and value, and AsOf = the execution time. A trade is not applied when
// the cached quote is as new or newer (a cumulative volume at least as
// large on the same day, or a later day), so the cached volume never goes
// backwards. An auction's expected price (t.Expected) is not an execution
// and is ignored.
//
// When no quote of the trade's day is cached, the base quote is fetched
// once from the upstream (as [Cache.RefreshQuote] does) and the trade
// applied to it; if that fails the error wraps [ErrNoBase]. It reports
// whether the trade was written.
func (c *Cache) PutTrade(ctx context.Context, t kisfeed.Trade) (bool, error) {
	if t.Expected || t.Price <= 0 {
		return false, nil
	}
	code, err := kisfeed.ParseCode(t.Code)
	if err != nil {
		return false, fmt.Errorf("cache: put trade: %w", err)
	}
	key := c.stockKey(code, "price")
	mu := c.codeLock(code)
	mu.Lock()
	cur, ok := load[kisfeed.Quote](ctx, c, key)
	if ok && sameDay(cur.Value.Meta.AsOf, t.Time) {
		written := c.applyTradeLocked(ctx, code, key, cur.Value, t)
		mu.Unlock()
		return written, nil
	}
	if ok && cur.Value.Meta.AsOf.After(t.Time) {
		mu.Unlock()
		return false, nil // a later day's quote is cached
	}
	mu.Unlock()

	// No base of the trade's day: fetch one, outside the lock (a REST
	// call), then apply the trade to the newer of it and what another
	// writer stored meanwhile.
	base, err := c.up.Quote(ctx, code)
	if err != nil {
		return false, fmt.Errorf("cache: put trade %s: %w: %w", code, ErrNoBase, err)
	}
	mu.Lock()
	defer mu.Unlock()
	q := *base
	if cur, ok := load[kisfeed.Quote](ctx, c, key); ok && quoteNewer(cur.Value, q) {
		q = cur.Value
	}
	if !sameDay(q.Meta.AsOf, t.Time) {
		return false, fmt.Errorf("cache: put trade %s: %w: the upstream's quote is of %s, the trade of %s",
			code, ErrNoBase, q.Meta.AsOf.In(kisfeed.KST).Format(time.DateOnly), t.Time.In(kisfeed.KST).Format(time.DateOnly))
	}
	if !c.applyTradeLocked(ctx, code, key, q, t) {
		// The base is newer than the trade: store it, as a fetch would.
		c.storeLocked(ctx, code, key, q, c.ttl.Price, true)
	}
	return true, nil
}

// applyTradeLocked stores q with t applied when t is newer than q; the
// code's write lock is held.
func (c *Cache) applyTradeLocked(ctx context.Context, code kisfeed.Code, key string, q kisfeed.Quote, t kisfeed.Trade) bool {
	if !tradeNewer(t, q) {
		return false
	}
	if c.tickSize != nil && q.TickSize == c.tickSize(q.Price) {
		// The base's tick follows the rule for ordinary shares, so the
		// rule gives the tick at the new price; other products (ETFs)
		// keep the tick KIS reported.
		q.TickSize = c.tickSize(t.Price)
	}
	q.Price, q.Change, q.ChangeRate = t.Price, t.Change, t.ChangeRate
	q.Open, q.High, q.Low = t.Open, t.High, t.Low
	q.Volume, q.TradingValue = t.CumVolume, t.CumValue
	if q.PrevClose == 0 {
		q.PrevClose = t.PrevClose()
	}
	q.Meta.AsOf = t.Time.In(kisfeed.KST)
	q.Meta.Origin, q.Meta.Stale, q.Meta.Expires = kisfeed.OriginSource, false, time.Time{}
	c.storeLocked(ctx, code, key, q, c.ttl.Price, true)
	return true
}

// PutBook replaces the cached order book of b.Code with b, AsOf = the
// book's time and Meta.Source = source (the feed's provenance, "kis"),
// unless the cached book is of a later time. It reports whether the book
// was written.
func (c *Cache) PutBook(ctx context.Context, b kisfeed.Book, source string) (bool, error) {
	code, err := kisfeed.ParseCode(b.Code)
	if err != nil {
		return false, fmt.Errorf("cache: put book: %w", err)
	}
	ob := b.OrderBook(kisfeed.Meta{AsOf: b.Time.In(kisfeed.KST), Source: source, Origin: kisfeed.OriginSource})
	key := c.stockKey(code, "orderbook")
	mu := c.codeLock(code)
	mu.Lock()
	defer mu.Unlock()
	if cur, ok := load[kisfeed.OrderBook](ctx, c, key); ok && bookNewer(cur.Value, ob) {
		return false, nil
	}
	c.storeLocked(ctx, code, key, ob, c.ttl.OrderBook, true)
	return true, nil
}

// RefreshQuote fetches code's quote from the upstream, bypassing any fresh
// copy, and stores it unless the cached quote is newer (the stream wrote
// a later trade meanwhile). A feed calls it after a gap, so that what the
// stream missed is whole again.
func (c *Cache) RefreshQuote(ctx context.Context, code kisfeed.Code) error {
	q, err := c.up.Quote(ctx, code)
	if err != nil {
		return fmt.Errorf("cache: refresh quote %s: %w", code, err)
	}
	saveNewest(ctx, c, code, c.stockKey(code, "price"), *q, c.ttl.Price)
	return nil
}

// RefreshOrderBook fetches code's order book from the upstream, bypassing
// any fresh copy, and stores it unless the cached book is newer.
func (c *Cache) RefreshOrderBook(ctx context.Context, code kisfeed.Code) error {
	b, err := c.up.OrderBook(ctx, code)
	if err != nil {
		return fmt.Errorf("cache: refresh order book %s: %w", code, err)
	}
	saveNewest(ctx, c, code, c.stockKey(code, "orderbook"), *b, c.ttl.OrderBook)
	return nil
}

// saveNewest stores val under key unless the cached value supersedes it,
// holding code's write lock; it returns what is cached afterwards.
func saveNewest[T any](ctx context.Context, c *Cache, code kisfeed.Code, key string, val T, ttl time.Duration) (T, time.Time) {
	mu := c.codeLock(code)
	mu.Lock()
	defer mu.Unlock()
	if cur, ok := load[T](ctx, c, key); ok && supersedes(cur.Value, val) {
		if c.now().Before(cur.FreshUntil) {
			return cur.Value, cur.FreshUntil
		}
		// The copy has expired but is still the newest: keep its value,
		// fresh again, since the upstream has just confirmed nothing newer.
		val = cur.Value
	}
	return val, c.storeLocked(ctx, code, key, val, ttl, true)
}

// storeLocked stores val as fetched now, fresh for ttl (cut at the next
// session boundary when intraday), and returns its freshness end.
func (c *Cache) storeLocked(ctx context.Context, code kisfeed.Code, key string, val any, ttl time.Duration, intraday bool) time.Time {
	fetched := c.now()
	until := c.freshUntil(fetched, ttl, intraday)
	var env encoder
	switch v := val.(type) {
	case kisfeed.Quote:
		env = &envelope[kisfeed.Quote]{FetchedAt: fetched, FreshUntil: until, Value: v}
		if c.ref != nil {
			c.ref.fetched(code, until)
		}
	case kisfeed.OrderBook:
		env = &envelope[kisfeed.OrderBook]{FetchedAt: fetched, FreshUntil: until, Value: v}
	default:
		panic(fmt.Sprintf("cache: storeLocked: %T", val)) // only prices and books are written through
	}
	c.save(ctx, saved{key: key, env: env, until: until})
	return until
}

// supersedes reports whether cur, a cached value, is newer than val, a
// value about to be stored in its place: only prices and books are
// compared, every other kind is replaced as before.
func supersedes(cur, val any) bool {
	switch v := val.(type) {
	case kisfeed.Quote:
		c, ok := cur.(kisfeed.Quote)
		return ok && quoteNewer(c, v)
	case kisfeed.OrderBook:
		c, ok := cur.(kisfeed.OrderBook)
		return ok && bookNewer(c, v)
	}
	return false
}

// quoteNewer reports whether cur is strictly newer than q: a later day,
// or on the same day a larger cumulative volume. Volume, not AsOf, orders
// a day's quotes: KIS's inquire-price has no time (AsOf is when it was
// fetched, and it lags the feed), while the day's volume only grows.
func quoteNewer(cur, q kisfeed.Quote) bool {
	cd, qd := kisfeed.Day(cur.Meta.AsOf), kisfeed.Day(q.Meta.AsOf)
	if !cd.Equal(qd) {
		return cd.After(qd)
	}
	return cur.Volume > q.Volume
}

// tradeNewer reports whether t moves q on: a later day, or on the same
// day a larger cumulative volume (equal volumes are the same state).
func tradeNewer(t kisfeed.Trade, q kisfeed.Quote) bool {
	td, qd := kisfeed.Day(t.Time), kisfeed.Day(q.Meta.AsOf)
	if !td.Equal(qd) {
		return td.After(qd)
	}
	return t.CumVolume > q.Volume
}

// bookNewer reports whether cur is of a later time than b.
func bookNewer(cur, b kisfeed.OrderBook) bool { return cur.Meta.AsOf.After(b.Meta.AsOf) }

// sameDay reports whether a and b fall on one KST day (false when either
// is zero).
func sameDay(a, b time.Time) bool {
	return !a.IsZero() && !b.IsZero() && kisfeed.Day(a).Equal(kisfeed.Day(b))
}
