package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/kisfeed/kisfeed"
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
	now           func() time.Time
	obs           Observer
	ttl           TTLs
	staleMaxAge   time.Duration
	prefix        string
	flightTimeout time.Duration
	staleBudget   time.Duration             // 0 = wait for the flight
	health        upstreamMark              // nil = always available
	configErr     func(error) bool          // errors passed through as they are
	market        func() time.Time          // session-boundary clock; nil = now
	boundary      func(time.Time) time.Time // next session boundary; nil = none

	// store is the one Store values are kept in. hot is its in-process
	// tier, which fresh hits are read from before any flight, decoded:
	// the store itself when it is a *Memory, else the local copies of
	// tier, a TieredStore in front of a shared store (Redis).
	store        Store
	hot          *Memory
	tier         *TieredStore // nil: hot is the whole store
	localTTL     time.Duration
	localEntries int

	flight singleflight.Group
	// stale holds, while a flight runs, the expired copy it read from a
	// shared store (key → *envelope[T]), for callers whose stale budget
	// passes: they answer from it without a store round trip of their own.
	stale sync.Map

	ref *refresher // refresh-ahead of quotes; nil = off
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

// WithObserver reports hits, misses and stale serves to o.
func WithObserver(o Observer) Option {
	return func(c *Cache) error {
		if o != nil {
			c.obs = o
		}
		return nil
	}
}

// WithFlightTimeout bounds a shared upstream flight, which runs detached
// from its callers' contexts (default 30s). Make it longer than the
// upstream's own worst case, or the cache cuts off calls the upstream
// would still finish: the kis client may wait up to a minute for the next
// token issuance, then try a request several times (package source sets
// it from KIS_TIMEOUT and KIS_RETRY_ATTEMPTS). A caller with a deadline is
// bounded by that anyway. A flight cut off by it fails with an error that
// names the lookup and the bound ("quote 005930: upstream did not answer
// within 30s: context deadline exceeded") and matches both
// kisfeed.ErrUnavailable and context.DeadlineExceeded.
func WithFlightTimeout(d time.Duration) Option {
	return func(c *Cache) error {
		if d <= 0 {
			return fmt.Errorf("cache: flight timeout %s: want > 0", d)
		}
		c.flightTimeout = d
		return nil
	}
}

// WithStaleBudget sets how long a lookup that has a stale copy (within
// the stale max age) waits for the upstream before answering with that
// copy, marked stale (default [DefaultStaleBudget], 150 ms; 0 = wait for
// the upstream as long as the caller's deadline allows). The upstream call
// goes on in the background and stores its answer when it comes, so the
// next caller gets it fresh. A lookup with no copy at all still waits for
// the upstream (or its error).
//
// Why a budget: during an outage the upstream call fails only after every
// retry (seconds), and before the circuit opens every caller would wait
// that long for a copy the cache had all along. 150 ms is above a healthy
// KIS quote (tens of milliseconds plus one rate-limiter slot, 55 ms at
// 18/s), so a healthy upstream is not cut short, and leaves headroom under
// a 200 ms p95 for the rest of the request.
func WithStaleBudget(d time.Duration) Option {
	return func(c *Cache) error {
		if d < 0 {
			return fmt.Errorf("cache: stale budget %s: want >= 0", d)
		}
		c.staleBudget = d
		return nil
	}
}

// WithConfigError marks upstream errors that say the configuration is
// wrong (credentials the upstream refuses): like business errors, they
// reach the caller as they are — no stale copy stands in for the value
// and they are not turned into a *kisfeed.UnavailableError — because no
// wait fixes them and the caller must be told what to change.
func WithConfigError(is func(error) bool) Option {
	return func(c *Cache) error {
		if is != nil {
			c.configErr = is
		}
		return nil
	}
}

// passThrough reports whether an upstream error goes to the caller as it
// is: a business error (bad input, unknown code) or a configuration error.
func (c *Cache) passThrough(err error) bool {
	return kisfeed.IsBusinessError(err) || c.configErr(err)
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

// WithMarketClock sets the clock on which session boundaries (the 09:00
// open and 15:30 close that end intraday freshness) and "today" (for
// candle series) are read; by default the freshness clock ([WithClock]).
// TTLs, stale ages and store expiry stay on the freshness clock. The
// factory passes the synthetic market's clock in mock and embedded modes
// (KISFEED_MARKET_TIME), whose sessions open and close in market time,
// not wall-clock time: a quote fetched at 15:29 market time must not
// outlive 15:30 market time.
func WithMarketClock(now func() time.Time) Option {
	return func(c *Cache) error {
		if now == nil {
			return errors.New("cache: market clock: want a non-nil func")
		}
		c.market = now
		return nil
	}
}

// WithSessionBoundaries sets next, which returns the first session
// boundary strictly after a market-clock instant (the wiring passes
// krx.NextBoundary: the 09:00 open or 15:30 close of a KRX trading day).
// Intraday values (prices, order books, candle series reaching today) stay
// fresh at most until that boundary, so a price fetched at 15:29 is not
// served as fresh at 15:31. Without it intraday values live their TTL.
func WithSessionBoundaries(next func(t time.Time) time.Time) Option {
	return func(c *Cache) error {
		if next == nil {
			return errors.New("cache: session boundaries: want a non-nil func")
		}
		c.boundary = next
		return nil
	}
}

// DefaultLocalTTL is how long a decoded local copy of a value read from
// a shared store (Redis) is used without asking the store again, when
// [WithLocalCopies] is not given.
const DefaultLocalTTL = time.Second

// DefaultLocalEntries bounds the local copies in front of a shared store
// when [WithLocalCopies] is not given.
const DefaultLocalEntries = 10_000

// WithLocalCopies sizes the in-process copies kept in front of a shared
// store such as [Redis]: at most entries decoded values (default 10,000),
// each used for at most ttl (default [DefaultLocalTTL], 1 s) and never
// past its own freshness end. A hit on a local copy costs no Redis round
// trip and no JSON decode; the price is that a value another replica
// wrote to Redis is seen here up to ttl later — replicas agree within
// that window, and TTL expiry and the close invalidation are still exact
// because a copy never outlives its fresh_until. ttl 0 turns local copies
// off (every read goes to the store). [New] puts these copies, as a
// [TieredStore], in front of a store that has no in-process tier of its
// own; it has no effect with a [Memory] store, which keeps decoded values
// itself, or a [TieredStore], which has its local copies already.
func WithLocalCopies(entries int, ttl time.Duration) Option {
	return func(c *Cache) error {
		if entries < 1 || ttl < 0 {
			return fmt.Errorf("cache: local copies %d for %s: want entries >= 1 and ttl >= 0", entries, ttl)
		}
		c.localEntries, c.localTTL = entries, ttl
		return nil
	}
}

// New returns a Cache in front of upstream, keeping values in store.
func New(upstream kisfeed.Source, store Store, opts ...Option) (*Cache, error) {
	if upstream == nil || store == nil {
		return nil, errors.New("cache: upstream and store are required")
	}
	c := &Cache{
		up: upstream, store: store, now: time.Now,
		obs: nopObserver{}, ttl: DefaultTTLs, staleMaxAge: DefaultStaleMaxAge,
		flightTimeout: 30 * time.Second, staleBudget: DefaultStaleBudget, configErr: func(error) bool { return false },
		localTTL: DefaultLocalTTL, localEntries: DefaultLocalEntries,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	c.hot, c.tier = localTier(store)
	if c.hot == nil {
		// A shared store: decoded local copies go in front of it.
		c.tier = Tiered(NewMemory(c.localEntries, c.now), store, c.localTTL)
		c.store, c.hot = c.tier, c.tier.local
	}
	if c.ref != nil {
		c.startRefresh()
	}
	return c, nil
}

// envelope is the stored form of a value: JSON in a shared store, the
// decoded *envelope itself in a [Memory]. A stored envelope is never
// modified: readers copy its Value.
type envelope[T any] struct {
	FetchedAt  time.Time `json:"fetched_at"`
	FreshUntil time.Time `json:"fresh_until"`
	Value      T         `json:"value"`
}

func (e *envelope[T]) encode() ([]byte, error) { return json.Marshal(e) }

// Keys.

func (c *Cache) stockKey(code, what string) string {
	return c.prefix + "stock:" + code + ":" + what
}

// appendStockKey appends stockKey(code, what) to b, so the hit path can
// build the key on its stack.
func (c *Cache) appendStockKey(b []byte, code, what string) []byte {
	b = append(b, c.prefix...)
	b = append(b, "stock:"...)
	b = append(b, code...)
	b = append(b, ':')
	return append(b, what...)
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

// Store access.

// get reads keys from the store; a failing store reads as absent.
func (c *Cache) get(ctx context.Context, keys ...string) [][]byte {
	vals, err := c.store.Get(ctx, keys...)
	if err != nil || len(vals) != len(keys) {
		return make([][]byte, len(keys))
	}
	return vals
}

// save stores values for the stale max age: decoded in every Memory
// involved, JSON-encoded in the other stores.
func (c *Cache) save(ctx context.Context, items ...saved) {
	if len(items) > 0 {
		_ = setEnvelopes(ctx, c.store, items, c.staleMaxAge)
	}
}

// keepLocal keeps a decoded local copy of a shared store's value (see
// [TieredStore]); nothing when the store is a Memory.
func (c *Cache) keepLocal(key string, env encoder, until, now time.Time) {
	if c.tier != nil {
		c.tier.keep(key, env, until, now)
	}
}

// Freshness.

// freshUntil is the end of freshness of a value fetched at fetched: its
// TTL, capped for intraday values at the next session boundary, which is
// found on the market clock and applied as a duration from fetched.
func (c *Cache) freshUntil(fetched time.Time, ttl time.Duration, intraday bool) time.Time {
	until := fetched.Add(ttl)
	if intraday && c.boundary != nil {
		mnow := fetched
		if c.market != nil {
			mnow = c.market()
		}
		if left := c.boundary(mnow).Sub(mnow); left < ttl {
			until = fetched.Add(left)
		}
	}
	return until
}

// marketNow is the market clock's now (the freshness clock by default).
func (c *Cache) marketNow() time.Time {
	if c.market != nil {
		return c.market()
	}
	return c.now()
}

// The shared lookup path.

// result is what a flight hands to each of its callers.
type result[T any] struct {
	val     T
	origin  kisfeed.Origin
	expires time.Time
}

// A flight started by a caller with a deadline hands the upstream a
// context with two instants (see answerBy):
//
//   - its Deadline, "answer by", is that caller's deadline minus a margin
//     (a quarter of its time left, at most maxDeadlineMargin);
//   - it is cancelled only at that caller's deadline plus a grace (a
//     quarter of its time left, at most maxLateGrace), or at the flight
//     timeout, whichever is sooner.
const (
	maxDeadlineMargin = 250 * time.Millisecond
	maxLateGrace      = time.Second
)

// DefaultStaleBudget is how long a lookup with a stale copy waits for the
// upstream before answering with that copy, when [WithStaleBudget] is not
// given.
const DefaultStaleBudget = 150 * time.Millisecond

// flightBounds returns, for a flight started by a caller with ctx, how long
// from now the flight may run (cancel) and, when that caller has a
// deadline, how long from now the upstream should have answered (by; ok
// false without a caller deadline: the flight timeout is both).
func (c *Cache) flightBounds(ctx context.Context) (cancel, by time.Duration, ok bool) {
	cancel = c.flightTimeout
	dl, ok := ctx.Deadline()
	if !ok {
		return cancel, cancel, false
	}
	left := max(time.Until(dl), 0)
	by = min(cancel, left-min(maxDeadlineMargin, left/4))
	cancel = min(cancel, left+min(maxLateGrace, left/4))
	return cancel, by, true
}

// answerBy is a flight's context when its starting caller has a deadline:
// cancelled at that deadline plus a grace, but reporting as its Deadline
// the earlier instant by which the upstream should answer.
//
// Why two instants: the flight's context is all the upstream sees, and
// the kis client's rate limiter decides from its Deadline whether a call
// can still be made — it takes a rate slot only when the call can finish
// by then, and refuses at once otherwise (x/time/rate: "would exceed
// context deadline"). That instant must leave the caller time to be
// answered: a slot granted later produces an answer nobody waits for, and
// under overload the caller would wait for its own deadline (a 504)
// instead of getting a fast refusal (a 503, or its stale copy). So the
// Deadline is the caller's minus a margin, as it always was. But a call
// that did get its slot and was sent should not be abandoned the moment
// the caller leaves: KIS answers it anyway (the rate slot is spent), and
// its answer serves the callers that joined the flight later and the next
// ones. So cancellation waits for a grace past the caller's deadline, and
// an answer arriving in it is stored. Handing down the flight timeout
// (minutes) instead would let an overloaded limiter queue calls minutes
// long. Consumers that read the Deadline (the limiter, a dialer, a derived
// per-attempt timeout) only ever plan to finish earlier than the real
// cancellation, never later.
type answerBy struct {
	context.Context
	by time.Time
}

// Deadline reports the answer-by instant.
func (a answerBy) Deadline() (time.Time, bool) { return a.by, true }

// startFlight starts fn once for concurrent callers of key, detached from
// any one caller's context and bounded as [Cache.flightBounds] says for
// the caller that starts it; callers receive its result on the channel. A
// flight cut off by its bound fails with a *timeoutError naming subj and
// the bound ("quote 005930: upstream did not answer within 30s: ..."),
// not a bare "context deadline exceeded" that says neither what nor how
// long.
func (c *Cache) startFlight(ctx context.Context, key string, subj subject, fn func(ctx context.Context) (any, error)) <-chan singleflight.Result {
	return c.flight.DoChan(key, func() (any, error) {
		d, by, ok := c.flightBounds(ctx)
		start := time.Now()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
		defer cancel()
		var uctx context.Context = fctx
		if ok && by < d {
			uctx = answerBy{fctx, start.Add(by)}
		}
		v, err := fn(uctx)
		if err != nil && errors.Is(fctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
			err = newTimeoutError(subj, d, err)
		}
		return v, err
	})
}

// errBudget is what awaitFlight returns when the stale budget passed
// before the flight ended; the flight goes on.
var errBudget = errors.New("cache: stale budget passed")

// awaitFlight waits for a flight's result, or ctx's end, or — when
// withBudget is set and the cache has a stale budget — for the budget,
// reporting errBudget then.
func (c *Cache) awaitFlight(ctx context.Context, ch <-chan singleflight.Result, withBudget bool) (any, error) {
	var budget <-chan time.Time
	if withBudget && c.staleBudget > 0 {
		t := time.NewTimer(c.staleBudget)
		defer t.Stop()
		budget = t.C
	}
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-budget:
		return nil, errBudget
	}
}

// subject names what a lookup fetches, for its errors: "quote" and
// "005930". Kept in two parts so that naming costs nothing until an error
// is reported.
type subject struct{ what, arg string }

func (s subject) String() string {
	if s.arg == "" {
		return s.what
	}
	return s.what + " " + s.arg
}

// timeoutError is a flight cut off by its bound (the flight timeout, or
// the starting caller's deadline plus its grace). It is an upstream failure: it matches
// kisfeed.ErrUnavailable, and context.DeadlineExceeded through Err.
type timeoutError struct {
	subj  subject
	after time.Duration
	err   error // the upstream's error, a context.DeadlineExceeded
}

// newTimeoutError wraps err, dropping the *kisfeed.UnavailableError a
// lookup may have put around it: the timeoutError says as much itself.
func newTimeoutError(subj subject, after time.Duration, err error) *timeoutError {
	var ue *kisfeed.UnavailableError
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return &timeoutError{subj: subj, after: after.Round(time.Millisecond), err: err}
}

func (e *timeoutError) Error() string {
	return e.subj.String() + ": upstream did not answer within " + e.after.String() + ": " + e.err.Error()
}

// Is makes errors.Is(err, kisfeed.ErrUnavailable) true.
func (e *timeoutError) Is(target error) bool { return target == kisfeed.ErrUnavailable }

func (e *timeoutError) Unwrap() error { return e.err }

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

// unavailable turns an upstream failure into the error callers get when no
// stale copy can stand in.
func unavailable(err error) error {
	if errors.Is(err, kisfeed.ErrUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return &kisfeed.UnavailableError{Err: err}
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
	ch := c.startFlight(ctx, key, subj, func(ctx context.Context) (any, error) {
		env, cached := load[T](ctx, c, key)
		now := c.now()
		if cached && now.Before(env.FreshUntil) {
			return result[T]{val: env.Value, origin: c.hitOrigin(ctx), expires: env.FreshUntil}, nil
		}
		if cached && c.tier != nil && c.staleBudget > 0 {
			c.stale.Store(key, env)
			defer c.stale.Delete(key)
		}
		val, err := fetch(ctx)
		if err == nil {
			fetched := c.now()
			until := c.freshUntil(fetched, ttl, intraday)
			c.save(ctx, saved{key: key, env: &envelope[T]{FetchedAt: fetched, FreshUntil: until, Value: val}, until: until})
			if c.ref != nil && kind == KindPrice {
				c.ref.fetched(subj.arg, until)
			}
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
		env := pre
		if env == nil {
			if v, ok := c.stale.Load(key); ok {
				env, _ = v.(*envelope[T])
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

// validCode is a cheap positive check of kisfeed.ValidateCode's rule
// (six characters: a digit, then digits or upper-case letters), so the hit
// path skips the regular expression; anything it rejects goes through
// ValidateCode for the error.
func validCode(code string) bool {
	if len(code) != 6 || code[0] < '0' || code[0] > '9' {
		return false
	}
	for i := 1; i < 6; i++ {
		if ch := code[i]; (ch < '0' || ch > '9') && (ch < 'A' || ch > 'Z') {
			return false
		}
	}
	return true
}

func checkCode(code string) error {
	if validCode(code) {
		return nil
	}
	return kisfeed.ValidateCode(code)
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
func stockGet[T any](ctx context.Context, c *Cache, k stockKind, code string, ttl time.Duration,
	fetch func(kisfeed.Source, context.Context, string) (*T, error), meta func(*T) *kisfeed.Meta) (*T, error) {
	r, ok := stockHit[T](ctx, c, k.kind, code, k.what)
	if !ok {
		var err error
		r, err = lookup(ctx, c, k.kind, c.stockKey(code, k.what), subject{k.name, code}, ttl, k.intraday,
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
func stockHit[T any](ctx context.Context, c *Cache, kind, code, what string) (result[T], bool) {
	var kb [64]byte
	env, _ := fromEntry[T](c.hot.lookup(c.appendStockKey(kb[:0], code, what)))
	return hit(ctx, c, kind, env)
}

// Quote returns the cached quote of code, or fetches it.
func (c *Cache) Quote(ctx context.Context, code string) (*kisfeed.Quote, error) {
	if err := checkCode(code); err != nil {
		return nil, err
	}
	if c.ref != nil {
		c.ref.heat.add(code)
	}
	return stockGet(ctx, c, priceKind, code, c.ttl.Price, kisfeed.Source.Quote,
		func(q *kisfeed.Quote) *kisfeed.Meta { return &q.Meta })
}

// OrderBook returns the cached book of code, or fetches it.
func (c *Cache) OrderBook(ctx context.Context, code string) (*kisfeed.OrderBook, error) {
	if err := checkCode(code); err != nil {
		return nil, err
	}
	return stockGet(ctx, c, bookKind, code, c.ttl.OrderBook, kisfeed.Source.OrderBook,
		func(b *kisfeed.OrderBook) *kisfeed.Meta { return &b.Meta })
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
	if err := checkCode(q.Code); err != nil {
		return nil, err
	}
	iv, err := kisfeed.ParseInterval(string(q.Interval))
	if err != nil {
		return nil, err
	}
	q.Interval = iv // one key per series: "d" and "day" share it
	r, err := lookup(ctx, c, KindCandles, c.prefix+CandlesKey(q), candlesSubject(q), c.ttl.Candles, coversToday(q, c.marketNow()),
		func(ctx context.Context) (kisfeed.Candles, error) { return deref(c.up.Candles(ctx, q)) })
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

// candlesSubject names a candle series in errors:
// "candles 005930 day 2026-03-03..2026-03-10".
func candlesSubject(q kisfeed.CandleQuery) subject {
	arg := q.Code + " " + string(q.Interval)
	if !q.From.IsZero() || !q.To.IsZero() {
		arg += " " + dateOrOpen(q.From) + ".." + dateOrOpen(q.To)
	}
	return subject{"candles", arg}
}

// dateOrOpen is t's day, or "" for an open end.
func dateOrOpen(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kisfeed.KST).Format(time.DateOnly)
}

// StockInfo returns the cached info of code, or fetches it.
func (c *Cache) StockInfo(ctx context.Context, code string) (*kisfeed.StockInfo, error) {
	if err := checkCode(code); err != nil {
		return nil, err
	}
	s, err := stockGet(ctx, c, infoKind, code, c.ttl.Info, kisfeed.Source.StockInfo,
		func(s *kisfeed.StockInfo) *kisfeed.Meta { return &s.Meta })
	if err == nil && !s.ListingDate.IsZero() {
		s.ListingDate = s.ListingDate.In(kisfeed.KST)
	}
	return s, err
}

// Universe returns the cached universe, or fetches it (info TTL). The
// returned slice is the caller's.
func (c *Cache) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	r, err := lookup(ctx, c, KindUniverse, c.prefix+"universe", subject{what: "universe"}, c.ttl.Info, false,
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
	r, err := lookup(ctx, c, KindCalendar, c.prefix+"calendar:"+ymd(day), subject{"calendar", day.Format(time.DateOnly)}, c.ttl.Info, false,
		func(ctx context.Context) (bool, error) { return c.up.IsTradingDay(ctx, day) })
	if err != nil {
		return false, err
	}
	return r.val, nil
}
