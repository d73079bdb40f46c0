package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Refresh configures refresh-ahead of quotes ([WithRefreshAhead]): a
// background loop that keeps the most-requested codes' prices fresh by
// fetching them in batches through the upstream's Quotes (on the real KIS
// server one intstock-multprice call per batch of up to 30 codes) shortly
// before their freshness ends, so that the hot set is answered from the
// cache instead of missing once per TTL.
type Refresh struct {
	// Rate is the most upstream Quotes calls per second the loop makes
	// (one batch per call); 0 turns refresh-ahead off. It is the share of
	// the upstream's rate budget refresh-ahead may use: 2/s is 11 % of the
	// real server's 18 requests per second, and keeps 60 codes per second
	// warm.
	Rate float64
	// Codes bounds how many codes are kept warm: the most-requested first,
	// then (with Universe) the rest of the universe in its order. Default
	// 3,000 (every KRX stock).
	Codes int
	// Batch is the most codes per Quotes call (default and at most 30,
	// KIS's multi-quote limit).
	Batch int
	// Universe also warms codes nobody has asked for yet, after the
	// requested ones, so that a first request for a listed code is a hit
	// too (only while quotes are being asked for: with no request counted
	// in the last minutes the loop makes no call at all). Keeping the whole market fresh costs little: 3,000 codes at the
	// default 30 m price TTL are 100 calls per 30 minutes.
	Universe bool
	// Ahead is how long before its freshness ends a price is refreshed;
	// 0 = a quarter of the price TTL, at most a minute.
	Ahead time.Duration
	// Tick, when set, replaces the loop's ticker (1/Rate seconds): the loop
	// runs one round per value received. For tests.
	Tick <-chan time.Time
}

// Refresh-ahead constants.
const (
	// maxBatch is KIS's multi-quote limit (intstock-multprice).
	maxBatch = 30
	// heatShards spreads the request counters over this many locks, so
	// that counting on the hit path does not serialise the cores.
	heatShards = 32
	// decayEvery halves every request count, so that the hot set follows
	// what is asked now, not what was asked this morning.
	decayEvery = time.Minute
	// refreshCallTimeout bounds one refresh call, rate-limiter wait
	// included: when the limiter is busy with callers' misses, a refresh
	// that cannot finish soon gives its place up (the limiter refuses it
	// at once) rather than queueing behind them.
	refreshCallTimeout = 2 * time.Second
)

// WithRefreshAhead turns refresh-ahead of quotes on (see [Refresh]). The
// loop starts with [New] and stops with [Cache.Close], which waits for it.
// Quote and Quotes count requests per code for it (a sharded counter map,
// at most Codes+Codes/2 entries, halved every minute).
func WithRefreshAhead(r Refresh) Option {
	return func(c *Cache) error {
		if r.Rate < 0 || r.Codes < 0 || r.Batch < 0 || r.Batch > maxBatch || r.Ahead < 0 {
			return fmt.Errorf("cache: refresh ahead rate %v codes %d batch %d ahead %s: want rate, codes, ahead >= 0 and batch 0 to %d",
				r.Rate, r.Codes, r.Batch, r.Ahead, maxBatch)
		}
		if r.Rate == 0 {
			return nil
		}
		if r.Codes == 0 {
			r.Codes = 3000
		}
		if r.Batch == 0 {
			r.Batch = maxBatch
		}
		c.ref = &refresher{cfg: r, heat: newHeat(r.Codes + r.Codes/2), due: map[kisfeed.Code]time.Time{}}
		return nil
	}
}

// refresher is the refresh-ahead state of a Cache.
type refresher struct {
	cfg  Refresh
	heat *heat

	// due is when each code's price stops being fresh, as far as this
	// process knows (its own fetches and refreshes); a code not in it is
	// refreshed. Owned by the loop goroutine, except through mu.
	mu        sync.Mutex // guards due
	due       map[kisfeed.Code]time.Time
	lastDecay time.Time // loop goroutine only
	// universe is the universe's codes, read at universeAt (loop
	// goroutine only).
	universe   []kisfeed.Code
	universeAt time.Time

	cancel context.CancelFunc
	done   chan struct{}
}

// fetched records that code's price was stored fresh until until.
func (r *refresher) fetched(code kisfeed.Code, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.due[code]; ok || len(r.due) < 2*r.cfg.Codes {
		r.due[code] = until
	}
}

// start runs the loop until Close.
func (c *Cache) startRefresh() {
	r := c.ref
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	tick := r.cfg.Tick
	var t *time.Ticker
	if tick == nil {
		t = time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Rate))
		tick = t.C
	}
	r.lastDecay = c.now()
	go func() { // owned by Close, which cancels ctx and waits for done
		defer close(r.done)
		if t != nil {
			defer t.Stop()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick:
				c.refreshRound(ctx)
			}
		}
	}()
}

// Close stops the refresh-ahead loop, if any, and waits for it. The Cache
// still answers lookups afterwards, without refresh-ahead.
func (c *Cache) Close() error {
	if c.ref != nil && c.ref.cancel != nil {
		c.ref.cancel()
		<-c.ref.done
	}
	return nil
}

// ahead is how long before its end a price's freshness is renewed.
func (c *Cache) ahead() time.Duration {
	if a := c.ref.cfg.Ahead; a > 0 {
		return a
	}
	return min(c.ttl.Price/4, time.Minute)
}

// refreshRound makes at most one upstream Quotes call: for the first
// codes, in order of requests (then of the universe), whose price is
// unknown or ends within the lead time — and would be fresh for longer if
// fetched now (a price fetched just before the 09:00 open or the 15:30
// close is not: it ends at that boundary either way).
func (c *Cache) refreshRound(ctx context.Context) {
	r := c.ref
	now := c.now()
	if now.Sub(r.lastDecay) >= decayEvery {
		r.heat.decay()
		r.lastDecay = now
	}
	cands := r.heat.top(r.cfg.Codes)
	if len(cands) == 0 {
		// Nobody has asked for a quote lately (a batch job, a one-shot
		// command, an idle server): spend no rate budget on warming.
		return
	}
	if r.cfg.Universe && len(cands) < r.cfg.Codes {
		cands = c.withUniverse(ctx, cands)
	}
	fresh := c.freshUntil(now, c.ttl.Price, true)
	lead := c.ahead()
	var batch []kisfeed.Code
	r.mu.Lock()
	for _, code := range cands {
		if due, ok := r.due[code]; ok && (due.Sub(now) > lead || !fresh.After(due)) {
			continue
		}
		batch = append(batch, code)
		if len(batch) == r.cfg.Batch {
			break
		}
	}
	if len(r.due) > r.cfg.Codes { // forget codes no longer kept warm
		keep := make(map[kisfeed.Code]bool, len(cands))
		for _, code := range cands {
			keep[code] = true
		}
		for code := range r.due {
			if !keep[code] {
				delete(r.due, code)
			}
		}
	}
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, min(refreshCallTimeout, c.flightTimeout))
	defer cancel()
	qs, err := c.up.Quotes(cctx, batch)
	var be *kisfeed.BatchError
	if err != nil && !errors.As(err, &be) {
		// Upstream down or busy: try again next round (the breaker
		// refuses at once while open).
		return
	}
	fetched := c.now()
	until := c.freshUntil(fetched, c.ttl.Price, true)
	items := make([]saved, 0, len(qs))
	r.mu.Lock()
	for i, code := range batch {
		if i < len(qs) && qs[i] != nil {
			items = append(items, saved{key: c.stockKey(code, "price"),
				env: &envelope[kisfeed.Quote]{FetchedAt: fetched, FreshUntil: until, Value: *qs[i]}, until: until})
		}
		// A code without a quote (unknown, suspended) is not asked again
		// before a fetched one would be.
		r.due[code] = until
	}
	r.mu.Unlock()
	c.save(ctx, items...)
}

// universeEvery is how often the loop reads the universe again.
const universeEvery = 10 * time.Minute

// withUniverse appends to cands the universe's codes not in it, up to
// the Codes bound. The universe is read from the store (fetched and stored
// if absent) without going through the observer, so that refresh-ahead
// does not count as cache traffic, and kept for universeEvery.
func (c *Cache) withUniverse(ctx context.Context, cands []kisfeed.Code) []kisfeed.Code {
	r := c.ref
	if now := c.now(); r.universe == nil || now.Sub(r.universeAt) >= universeEvery {
		if codes, err := c.universeCodes(ctx); err == nil {
			r.universe, r.universeAt = codes, now
		}
	}
	seen := make(map[kisfeed.Code]bool, len(cands))
	for _, code := range cands {
		seen[code] = true
	}
	for _, code := range r.universe {
		if len(cands) >= r.cfg.Codes {
			break
		}
		if !seen[code] {
			seen[code] = true
			cands = append(cands, code)
		}
	}
	return cands
}

// universeCodes returns the universe's valid codes, parsed once per
// universe read: the stored universe (fresh or not), else the upstream's,
// which is then stored. A malformed code in it is skipped (there is no
// caller to tell; ingest reports them).
func (c *Cache) universeCodes(ctx context.Context) ([]kisfeed.Code, error) {
	key := c.prefix + "universe"
	var stocks []kisfeed.Stock
	if env, ok := load[[]kisfeed.Stock](ctx, c, key); ok {
		stocks = env.Value
	} else {
		uctx, cancel := context.WithTimeout(ctx, c.flightTimeout)
		defer cancel()
		got, err := c.up.Universe(uctx)
		if err != nil {
			return nil, err
		}
		fetched := c.now()
		until := c.freshUntil(fetched, c.ttl.Info, false)
		c.save(ctx, saved{key: key, env: &envelope[[]kisfeed.Stock]{FetchedAt: fetched, FreshUntil: until, Value: got}, until: until})
		stocks = got
	}
	codes := make([]kisfeed.Code, 0, len(stocks))
	for _, s := range stocks {
		if code, err := kisfeed.ParseCode(s.Code); err == nil {
			codes = append(codes, code)
		}
	}
	return codes, nil
}

// heat counts requests per code: sharded maps under their own locks, each
// bounded (new codes are not counted while a shard is full, until the
// next decay frees room).
type heat struct {
	maxPerShard int
	shards      [heatShards]heatShard
}

type heatShard struct {
	mu sync.Mutex              // guards m
	m  map[kisfeed.Code]uint32 // code → requests, halved every decayEvery
	_  [48]byte                // keeps shards on separate cache lines
}

func newHeat(maxCodes int) *heat {
	h := &heat{maxPerShard: max(1, (maxCodes+heatShards-1)/heatShards)}
	for i := range h.shards {
		h.shards[i].m = map[kisfeed.Code]uint32{}
	}
	return h
}

// add counts one request for code: no allocation once code is known.
func (h *heat) add(code kisfeed.Code) {
	var sum uint32
	for i, s := 0, code.String(); i < len(s); i++ {
		sum = sum*31 + uint32(s[i])
	}
	s := &h.shards[sum%heatShards]
	s.mu.Lock()
	if n, ok := s.m[code]; ok {
		s.m[code] = n + 1
	} else if len(s.m) < h.maxPerShard {
		s.m[code.Clone()] = 1 // not a view into a request's buffer
	}
	s.mu.Unlock()
}

// decay halves every count, dropping codes that reach zero.
func (h *heat) decay() {
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for code, n := range s.m {
			if n /= 2; n == 0 {
				delete(s.m, code)
			} else {
				s.m[code] = n
			}
		}
		s.mu.Unlock()
	}
}

// top returns up to k codes, most requested first (ties by code, so the
// order is stable).
func (h *heat) top(k int) []kisfeed.Code {
	type kv struct {
		code kisfeed.Code
		n    uint32
	}
	var all []kv
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for code, n := range s.m {
			all = append(all, kv{code, n})
		}
		s.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b kv) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return strings.Compare(a.code.String(), b.code.String())
	})
	out := make([]kisfeed.Code, 0, min(k, len(all)))
	for _, e := range all[:min(k, len(all))] {
		out = append(out, e.code)
	}
	return out
}
