package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// The kinds of cached values, as passed to an [Observer].
const (
	KindPrice     = "price"
	KindOrderBook = "orderbook"
	KindCandles   = "candles"
	KindInfo      = "info"
	KindUniverse  = "universe"
	KindCalendar  = "calendar"
)

// Observer is told the outcome of every lookup, per kind (KindPrice, ...):
// a fresh hit, a miss answered by the upstream (or failed), or a stale copy
// served. A metrics adapter implements it; calls must be cheap and safe for
// concurrent use.
type Observer interface {
	Hit(kind string)
	Miss(kind string)
	Stale(kind string)
}

type nopObserver struct{}

func (nopObserver) Hit(string)   {}
func (nopObserver) Miss(string)  {}
func (nopObserver) Stale(string) {}

// TTLs are the freshness periods per kind. Zero fields take the defaults
// of [DefaultTTLs].
type TTLs struct {
	Price     time.Duration // quotes
	OrderBook time.Duration
	Candles   time.Duration
	Info      time.Duration // stock info, the universe and the calendar
}

// DefaultTTLs are the TTLs when none are configured: the CACHE_*_TTL
// defaults.
var DefaultTTLs = TTLs{Price: 30 * time.Minute, OrderBook: 10 * time.Second, Candles: time.Hour, Info: 24 * time.Hour}

// DefaultStaleMaxAge is how long a value is kept for stale serving when
// [WithStaleMaxAge] is not given.
const DefaultStaleMaxAge = 72 * time.Hour

// Cache is the caching [kisfeed.Source] decorator. Build it with [New].
type Cache struct {
	up            kisfeed.Source
	store         Store
	fallback      Store // used while store fails; nil = none
	now           func() time.Time
	log           *slog.Logger
	obs           Observer
	ttl           TTLs
	staleMaxAge   time.Duration
	prefix        string
	flightTimeout time.Duration
	retryEvery    time.Duration
	health        func(context.Context) error // nil = always available

	flight singleflight.Group

	mu        sync.Mutex // guards storeDown and retryAt
	storeDown bool
	retryAt   time.Time
}

var _ kisfeed.Source = (*Cache)(nil)

// Option configures a [Cache].
type Option func(*Cache) error

// WithTTLs sets the freshness periods; zero fields keep their defaults.
func WithTTLs(t TTLs) Option {
	return func(c *Cache) error {
		for name, d := range map[string]time.Duration{"price": t.Price, "orderbook": t.OrderBook, "candles": t.Candles, "info": t.Info} {
			if d < 0 {
				return fmt.Errorf("cache: %s ttl %s: want > 0", name, d)
			}
		}
		if t.Price > 0 {
			c.ttl.Price = t.Price
		}
		if t.OrderBook > 0 {
			c.ttl.OrderBook = t.OrderBook
		}
		if t.Candles > 0 {
			c.ttl.Candles = t.Candles
		}
		if t.Info > 0 {
			c.ttl.Info = t.Info
		}
		return nil
	}
}

// WithStaleMaxAge bounds how old a stale copy may be and so how long the
// store keeps values (default 72h).
func WithStaleMaxAge(d time.Duration) Option {
	return func(c *Cache) error {
		if d <= 0 {
			return fmt.Errorf("cache: stale max age %s: want > 0", d)
		}
		c.staleMaxAge = d
		return nil
	}
}

// WithPrefix puts prefix in front of every key, e.g. "kisfeed:" or a
// unique prefix per test.
func WithPrefix(prefix string) Option {
	return func(c *Cache) error { c.prefix = prefix; return nil }
}

// WithClock sets the clock used for freshness (time.Now by default).
func WithClock(now func() time.Time) Option {
	return func(c *Cache) error {
		if now == nil {
			return errors.New("cache: clock: want a non-nil func")
		}
		c.now = now
		return nil
	}
}

// WithLogger sets the logger for store state changes.
func WithLogger(l *slog.Logger) Option {
	return func(c *Cache) error {
		if l != nil {
			c.log = l
		}
		return nil
	}
}

// WithObserver reports hits, misses and stale serves to o.
func WithObserver(o Observer) Option {
	return func(c *Cache) error {
		if o != nil {
			c.obs = o
		}
		return nil
	}
}

// WithFallback sets a store that mirrors every write and answers reads
// while the primary store fails (typically a [Memory] behind [Redis]).
func WithFallback(s Store) Option {
	return func(c *Cache) error { c.fallback = s; return nil }
}

// WithFlightTimeout bounds a shared upstream flight, which runs detached
// from its callers' contexts (default 30s).
func WithFlightTimeout(d time.Duration) Option {
	return func(c *Cache) error {
		if d <= 0 {
			return fmt.Errorf("cache: flight timeout %s: want > 0", d)
		}
		c.flightTimeout = d
		return nil
	}
}

// WithStoreRetry sets how long the cache skips a failed primary store
// before trying it again (default 5s).
func WithStoreRetry(d time.Duration) Option {
	return func(c *Cache) error {
		if d < 0 {
			return fmt.Errorf("cache: store retry %s: want >= 0", d)
		}
		c.retryEvery = d
		return nil
	}
}

// WithUpstreamHealth sets a check the cache runs on every fresh hit: a
// non-nil error means the upstream is known to be unavailable right now
// (its circuit is open, or it refuses connections), and the hit is then
// served marked stale (Origin "stale", Stale=true) instead of "cache":
// the value is still within its TTL, but nobody can refresh it, and a
// client deciding whether to trust or retry must be told so. The check
// only changes the marking — a hit never fails because of it — so it must
// be cheap: answer from a recent observation and dial at most rarely (the
// factory in package source reuses its breaker state and a cached TCP
// probe). It is called with the lookup's flight context; nil (the
// default) means always available.
func WithUpstreamHealth(f func(ctx context.Context) error) Option {
	return func(c *Cache) error { c.health = f; return nil }
}

// New returns a Cache in front of upstream, keeping values in store.
func New(upstream kisfeed.Source, store Store, opts ...Option) (*Cache, error) {
	if upstream == nil || store == nil {
		return nil, errors.New("cache: upstream and store are required")
	}
	c := &Cache{
		up: upstream, store: store, now: time.Now, log: slog.New(slog.DiscardHandler),
		obs: nopObserver{}, ttl: DefaultTTLs, staleMaxAge: DefaultStaleMaxAge,
		flightTimeout: 30 * time.Second, retryEvery: 5 * time.Second,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// envelope is the stored form of a value.
type envelope[T any] struct {
	FetchedAt  time.Time `json:"fetched_at"`
	FreshUntil time.Time `json:"fresh_until"`
	Value      T         `json:"value"`
}

// Keys.

func (c *Cache) stockKey(code, what string) string {
	return c.prefix + "stock:" + code + ":" + what
}

func ymd(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kisfeed.KST).Format("20060102")
}

// CandlesKey returns the key of a candle query (without the prefix):
// stock:{code}:candles:{interval}:{from}:{to}:{adj}.
func CandlesKey(q kisfeed.CandleQuery) string {
	adj := "adj"
	if q.Unadjusted {
		adj = "raw"
	}
	return "stock:" + q.Code + ":candles:" + string(q.Interval) + ":" + ymd(q.From) + ":" + ymd(q.To) + ":" + adj
}

// Store access with degradation.

// usePrimary reports whether the primary store should be tried now.
func (c *Cache) usePrimary() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.storeDown || !c.now().Before(c.retryAt)
}

// noteStore records the outcome of a primary-store call and logs state
// changes once.
func (c *Cache) noteStore(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.retryAt = c.now().Add(c.retryEvery)
		if !c.storeDown {
			c.storeDown = true
			c.log.Warn("cache store failing; serving from memory and upstream", "err", err)
		}
		return
	}
	if c.storeDown {
		c.storeDown = false
		c.log.Info("cache store recovered")
	}
}

func (c *Cache) get(ctx context.Context, keys ...string) [][]byte {
	if c.usePrimary() {
		vals, err := c.store.Get(ctx, keys...)
		c.noteStore(err)
		if err == nil && len(vals) == len(keys) {
			return vals
		}
	}
	if c.fallback != nil {
		if vals, err := c.fallback.Get(ctx, keys...); err == nil && len(vals) == len(keys) {
			return vals
		}
	}
	return make([][]byte, len(keys))
}

func (c *Cache) set(ctx context.Context, items ...Item) {
	if c.fallback != nil {
		_ = c.fallback.Set(ctx, items...) // memory: cannot fail
	}
	if c.usePrimary() {
		c.noteStore(c.store.Set(ctx, items...))
	}
}

// Freshness.

// nextBoundary returns the first session boundary (09:00 open or 15:30
// close of a trading day) strictly after t.
func nextBoundary(t time.Time) time.Time {
	t = t.In(kisfeed.KST)
	d := kisfeed.Day(t)
	for range 30 { // no KRX break is longer than a couple of weeks
		if krx.IsTradingDay(d) {
			if o := krx.OpenTime(d); t.Before(o) {
				return o
			}
			if cl := krx.CloseTime(d); t.Before(cl) {
				return cl
			}
		}
		d = d.AddDate(0, 0, 1)
	}
	return t.Add(24 * time.Hour)
}

func freshUntil(fetched time.Time, ttl time.Duration, intraday bool) time.Time {
	until := fetched.Add(ttl)
	if intraday {
		if b := nextBoundary(fetched); b.Before(until) {
			until = b
		}
	}
	return until
}

// The shared lookup path.

// result is what a flight hands to each of its callers.
type result[T any] struct {
	val     T
	origin  kisfeed.Origin
	expires time.Time
}

// flightDo runs fn once for concurrent callers of key, detached from any
// one caller's context; each caller waits for it or its own ctx.
func (c *Cache) flightDo(ctx context.Context, key string, fn func(ctx context.Context) (any, error)) (any, error) {
	ch := c.flight.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.flightTimeout)
		defer cancel()
		return fn(fctx)
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// hitOrigin is the origin of a fresh hit: "cache", or "stale" while the
// upstream health check says the upstream is unavailable.
func (c *Cache) hitOrigin(ctx context.Context) kisfeed.Origin {
	if c.health != nil && c.health(ctx) != nil {
		return kisfeed.OriginStale
	}
	return kisfeed.OriginCache
}

// unavailable turns an upstream failure into the error callers get when no
// stale copy can stand in.
func unavailable(err error) error {
	if errors.Is(err, kisfeed.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return &kisfeed.UnavailableError{Err: err}
}

func decode[T any](raw []byte) (envelope[T], bool) {
	var env envelope[T]
	if raw == nil || json.Unmarshal(raw, &env) != nil || env.FetchedAt.IsZero() {
		return env, false
	}
	return env, true
}

// lookup is the read-through path for one key: fresh hit, else upstream,
// else stale copy, else error.
func lookup[T any](ctx context.Context, c *Cache, kind, key string, ttl time.Duration, intraday bool,
	fetch func(context.Context) (T, error)) (result[T], error) {
	v, err := c.flightDo(ctx, key, func(ctx context.Context) (any, error) {
		env, cached := decode[T](c.get(ctx, key)[0])
		now := c.now()
		if cached && now.Before(env.FreshUntil) {
			return result[T]{val: env.Value, origin: c.hitOrigin(ctx), expires: env.FreshUntil}, nil
		}
		val, err := fetch(ctx)
		if err == nil {
			fetched := c.now()
			until := freshUntil(fetched, ttl, intraday)
			if raw, merr := json.Marshal(envelope[T]{FetchedAt: fetched, FreshUntil: until, Value: val}); merr == nil {
				c.set(ctx, Item{Key: key, Value: raw, TTL: c.staleMaxAge})
			}
			return result[T]{val: val, origin: kisfeed.OriginSource, expires: until}, nil
		}
		if kisfeed.IsBusinessError(err) {
			return nil, err
		}
		if cached && c.now().Sub(env.FetchedAt) <= c.staleMaxAge {
			return result[T]{val: env.Value, origin: kisfeed.OriginStale}, nil
		}
		return nil, unavailable(err)
	})
	if err != nil {
		c.obs.Miss(kind)
		return result[T]{}, err
	}
	r := v.(result[T])
	switch r.origin {
	case kisfeed.OriginCache:
		c.obs.Hit(kind)
	case kisfeed.OriginStale:
		c.obs.Stale(kind)
	default:
		c.obs.Miss(kind)
	}
	return r, nil
}

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

// Quote returns the cached quote of code, or fetches it.
func (c *Cache) Quote(ctx context.Context, code string) (*kisfeed.Quote, error) {
	if err := kisfeed.ValidateCode(code); err != nil {
		return nil, err
	}
	r, err := lookup(ctx, c, KindPrice, c.stockKey(code, "price"), c.ttl.Price, true,
		func(ctx context.Context) (kisfeed.Quote, error) {
			q, err := c.up.Quote(ctx, code)
			if err != nil {
				return kisfeed.Quote{}, err
			}
			return *q, nil
		})
	if err != nil {
		return nil, err
	}
	q := r.val
	stamp(&q.Meta, r.origin, r.expires)
	return &q, nil
}

// Quotes serves the cached codes from the cache and fetches the rest in one
// upstream Quotes call. Malformed codes are reported in the
// *[kisfeed.BatchError] without asking the upstream.
func (c *Cache) Quotes(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
	out := make([]*kisfeed.Quote, len(codes))
	var be *kisfeed.BatchError
	fail := func(code string, err error) {
		if be == nil {
			be = &kisfeed.BatchError{Errs: map[string]error{}}
		}
		be.Errs[code] = err
	}
	// Unique valid codes, and the positions each fills.
	var uniq []string
	pos := map[string][]int{}
	for i, code := range codes {
		if err := kisfeed.ValidateCode(code); err != nil {
			fail(code, err)
			continue
		}
		if _, seen := pos[code]; !seen {
			uniq = append(uniq, code)
		}
		pos[code] = append(pos[code], i)
	}
	put := func(code string, q kisfeed.Quote, origin kisfeed.Origin, expires time.Time) {
		stamp(&q.Meta, origin, expires)
		for _, i := range pos[code] {
			qc := q
			out[i] = &qc
		}
	}
	if len(uniq) > 0 {
		keys := make([]string, len(uniq))
		for i, code := range uniq {
			keys[i] = c.stockKey(code, "price")
		}
		raws := c.get(ctx, keys...)
		now := c.now()
		var misses []string
		stale := map[string]envelope[kisfeed.Quote]{}
		var hitOrigin kisfeed.Origin // asked once, on the first hit
		for i, code := range uniq {
			env, ok := decode[kisfeed.Quote](raws[i])
			if ok && now.Before(env.FreshUntil) {
				if hitOrigin == "" {
					hitOrigin = c.hitOrigin(ctx)
				}
				if hitOrigin == kisfeed.OriginStale {
					c.obs.Stale(KindPrice)
				} else {
					c.obs.Hit(KindPrice)
				}
				put(code, env.Value, hitOrigin, env.FreshUntil)
				continue
			}
			if ok {
				stale[code] = env
			}
			misses = append(misses, code)
		}
		if len(misses) > 0 {
			got, err := c.fetchQuotes(ctx, misses)
			var ube *kisfeed.BatchError
			switch {
			case err == nil || errors.As(err, &ube):
				errs := batchErrs(ube)
				for _, code := range misses {
					c.obs.Miss(KindPrice)
					if r, ok := got[code]; ok {
						put(code, r.val, kisfeed.OriginSource, r.expires)
					} else if e, ok := errs[code]; ok {
						fail(code, e)
					} else {
						fail(code, fmt.Errorf("%w: no quote for %s", kisfeed.ErrNotFound, code))
					}
				}
			case kisfeed.IsBusinessError(err) || errors.Is(err, context.Canceled) || ctx.Err() != nil:
				return nil, err
			default:
				// Upstream failure: every miss needs a stale copy, else the
				// whole call fails.
				for _, code := range misses {
					env, ok := stale[code]
					if !ok || c.now().Sub(env.FetchedAt) > c.staleMaxAge {
						c.obs.Miss(KindPrice)
						return nil, unavailable(err)
					}
				}
				for _, code := range misses {
					c.obs.Stale(KindPrice)
					put(code, stale[code].Value, kisfeed.OriginStale, time.Time{})
				}
			}
		}
	}
	if be != nil {
		return out, be
	}
	return out, nil
}

// batchErrs returns be's per-code errors; nil-safe.
func batchErrs(be *kisfeed.BatchError) map[string]error {
	if be == nil {
		return nil
	}
	return be.Errs
}

// fetchQuotes asks the upstream for codes in one shared flight and stores
// the answers; it returns the fetched quotes by code and the upstream's
// error (a *BatchError for per-code failures).
func (c *Cache) fetchQuotes(ctx context.Context, codes []string) (map[string]result[kisfeed.Quote], error) {
	type batch struct {
		got map[string]result[kisfeed.Quote]
		err error
	}
	v, err := c.flightDo(ctx, "quotes\x00"+strings.Join(codes, ","), func(ctx context.Context) (any, error) {
		qs, err := c.up.Quotes(ctx, codes)
		var be *kisfeed.BatchError
		if err != nil && !errors.As(err, &be) {
			return nil, err
		}
		fetched := c.now()
		until := freshUntil(fetched, c.ttl.Price, true)
		got := map[string]result[kisfeed.Quote]{}
		var items []Item
		for i, q := range qs {
			if q == nil || i >= len(codes) {
				continue
			}
			code := codes[i]
			got[code] = result[kisfeed.Quote]{val: *q, origin: kisfeed.OriginSource, expires: until}
			if raw, merr := json.Marshal(envelope[kisfeed.Quote]{FetchedAt: fetched, FreshUntil: until, Value: *q}); merr == nil {
				items = append(items, Item{Key: c.stockKey(code, "price"), Value: raw, TTL: c.staleMaxAge})
			}
		}
		c.set(ctx, items...)
		return batch{got: got, err: err}, nil
	})
	if err != nil {
		return nil, err
	}
	b := v.(batch)
	return b.got, b.err
}

// OrderBook returns the cached book of code, or fetches it.
func (c *Cache) OrderBook(ctx context.Context, code string) (*kisfeed.OrderBook, error) {
	if err := kisfeed.ValidateCode(code); err != nil {
		return nil, err
	}
	r, err := lookup(ctx, c, KindOrderBook, c.stockKey(code, "orderbook"), c.ttl.OrderBook, true,
		func(ctx context.Context) (kisfeed.OrderBook, error) {
			b, err := c.up.OrderBook(ctx, code)
			if err != nil {
				return kisfeed.OrderBook{}, err
			}
			return *b, nil
		})
	if err != nil {
		return nil, err
	}
	b := r.val
	stamp(&b.Meta, r.origin, r.expires)
	return &b, nil
}

// coversToday reports whether a candle query's answer can still change
// today: minute bars of today, or a day/week/month range reaching today.
func coversToday(q kisfeed.CandleQuery, now time.Time) bool {
	today := kisfeed.Day(now)
	if q.Interval == kisfeed.IntervalMinute {
		return q.From.IsZero() || !kisfeed.Day(q.From).Before(today)
	}
	return q.To.IsZero() || !kisfeed.Day(q.To).Before(today)
}

// Candles returns the cached series of q, or fetches it. Series that reach
// today follow the intraday freshness rule; older ones the candles TTL.
func (c *Cache) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	if err := kisfeed.ValidateCode(q.Code); err != nil {
		return nil, err
	}
	iv, err := kisfeed.ParseInterval(string(q.Interval))
	if err != nil {
		return nil, err
	}
	q.Interval = iv // one key per series: "d" and "day" share it
	r, err := lookup(ctx, c, KindCandles, c.prefix+CandlesKey(q), c.ttl.Candles, coversToday(q, c.now()),
		func(ctx context.Context) (kisfeed.Candles, error) {
			cs, err := c.up.Candles(ctx, q)
			if err != nil {
				return kisfeed.Candles{}, err
			}
			return *cs, nil
		})
	if err != nil {
		return nil, err
	}
	cs := r.val
	cs.Bars = slices.Clone(cs.Bars) // the flight's callers share r.val
	for i := range cs.Bars {
		cs.Bars[i].Time = cs.Bars[i].Time.In(kisfeed.KST)
	}
	stamp(&cs.Meta, r.origin, r.expires)
	return &cs, nil
}

// StockInfo returns the cached info of code, or fetches it.
func (c *Cache) StockInfo(ctx context.Context, code string) (*kisfeed.StockInfo, error) {
	if err := kisfeed.ValidateCode(code); err != nil {
		return nil, err
	}
	r, err := lookup(ctx, c, KindInfo, c.stockKey(code, "info"), c.ttl.Info, false,
		func(ctx context.Context) (kisfeed.StockInfo, error) {
			s, err := c.up.StockInfo(ctx, code)
			if err != nil {
				return kisfeed.StockInfo{}, err
			}
			return *s, nil
		})
	if err != nil {
		return nil, err
	}
	s := r.val
	if !s.ListingDate.IsZero() {
		s.ListingDate = s.ListingDate.In(kisfeed.KST)
	}
	stamp(&s.Meta, r.origin, r.expires)
	return &s, nil
}

// Universe returns the cached universe, or fetches it (info TTL). The
// returned slice is the caller's.
func (c *Cache) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	r, err := lookup(ctx, c, KindUniverse, c.prefix+"universe", c.ttl.Info, false,
		func(ctx context.Context) ([]kisfeed.Stock, error) { return c.up.Universe(ctx) })
	if err != nil {
		return nil, err
	}
	out := make([]kisfeed.Stock, len(r.val))
	copy(out, r.val)
	for i := range out {
		if !out[i].ListingDate.IsZero() {
			out[i].ListingDate = out[i].ListingDate.In(kisfeed.KST)
		}
	}
	return out, nil
}

// IsTradingDay returns the cached answer for date's KST day, or asks the
// upstream (info TTL).
func (c *Cache) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	day := kisfeed.Day(date)
	r, err := lookup(ctx, c, KindCalendar, c.prefix+"calendar:"+ymd(day), c.ttl.Info, false,
		func(ctx context.Context) (bool, error) { return c.up.IsTradingDay(ctx, day) })
	if err != nil {
		return false, err
	}
	return r.val, nil
}
