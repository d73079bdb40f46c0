// Package cache is the read-through [kisfeed.Source] decorator: it owns the
// copies of upstream answers (their keys, freshness and stale serving), the
// sharing of concurrent identical lookups, and refresh-ahead of hot quotes.
// Where copies live is the one [Store] it is handed ([Memory], [Redis], or
// the wrappers [Tiered] and [Failover]), and when an intraday value stops
// being fresh or the upstream counts as down are functions the wiring
// hands in ([WithSessionBoundaries], [WithUpstreamHealth]).
//
// # Files
//
//	cache.go     the Cache, New, keys, store access, freshness
//	options.go   the Options
//	lookup.go    the one generic lookup (hit, flight, stale copy) and stockGet
//	values.go    the Source methods, thin over lookup
//	quotes.go    Quotes: hits, one MGET, one upstream call for the misses
//	flight.go    singleflight with deadlines, the stale budget, timeout errors
//	mark.go      marking hits stale while the upstream is down
//	refresh.go   refresh-ahead of quotes
//	writethrough.go  PutTrade, PutBook, RefreshQuote, RefreshOrderBook: what a
//	             real-time feed writes (never replacing a newer value)
//	store.go, redis.go, tiered.go, failover.go   the Store and its kinds
//
// # Keys
//
// Every key starts with the configurable prefix ([WithPrefix], "" by
// default, so the keys below are the literal Redis keys):
//
//	stock:{code}:price                               Quote
//	stock:{code}:orderbook                           OrderBook
//	stock:{code}:candles:{interval}:{from}:{to}:{adj} Candles; from/to are
//	                                                 YYYYMMDD ("" when zero),
//	                                                 adj is "adj" or "raw"
//	stock:{code}:info                                StockInfo
//	universe                                         []Stock
//	calendar:{YYYYMMDD}                              IsTradingDay
//
// A value is stored as JSON {"fetched_at", "fresh_until", "value"} in a
// shared store (Redis); a [Memory] store keeps the same envelope as a
// decoded Go value (and encodes it only if read through [Memory.Get]). The
// store keeps it for the stale window ([WithStaleMaxAge],
// CACHE_STALE_MAX_AGE) while it is served as fresh only until fresh_until.
//
// # The hit path
//
// A fresh hit is answered before any singleflight: one LRU lookup of a
// decoded value (the key built on the stack), the freshness check, the
// upstream health check and a copy of the value for the caller — no
// goroutine, no JSON, one allocation (the returned value). With a shared
// store the decoded value comes from a small in-process copy
// ([Tiered], [WithLocalCopies]) kept for at most 1 s and never past fresh_until:
// within that window a hit costs no Redis round trip, and the price is
// that a value another replica writes reaches this one up to 1 s later.
// Replicas therefore agree within the window, while TTL expiry and the
// close invalidation stay exact (a copy never outlives fresh_until).
//
// # Freshness and the market close
//
// fresh_until is the fetch time plus the kind's TTL ([TTLs]). For intraday
// values (price, order book, and candle series that include today) it is
// also capped at the next session boundary after the fetch, as the
// function given with [WithSessionBoundaries] names it (the wiring passes
// krx.NextBoundary: the next 09:00 open or 15:30 close of a KRX trading
// day). So a price fetched at 15:29 is not served as fresh at 15:31 —
// nobody reads a pre-close price as the close — while a price fetched
// after the close stays fresh for its TTL (it is the closing price until
// the next open). The boundaries are read on the market clock
// (the market half of [WithClock]'s Clock; the wall clock by default): the synthetic
// market of mock and embedded modes can run at a simulated time
// (KISFEED_MARKET_TIME), and its sessions open and close in that time.
//
// # Origins
//
// Served values carry [kisfeed.Meta]: Origin "source" for a value fetched
// now, "cache" for a fresh hit while the upstream is available, and
// "stale" (Stale=true) for a cached value served while the upstream is
// unavailable, in either of two cases:
//
//   - the copy is past its TTL and the upstream call for a fresh one
//     failed (error, refused connection, or open circuit); or
//   - the copy is within its TTL but the upstream is known to be
//     unavailable right now: the check given with [WithUpstreamHealth]
//     returns an error (the factory's check reports an open circuit or a
//     host that refuses connections). The upstream is not called.
//
// The value itself is the same either way; only the marking differs, so
// a client can tell "fresh from a healthy feed" from "the last value we
// have, and nothing can refresh it now". The health check never fails a
// hit. Meta.Expires is fresh_until for source and cache values (for
// Cache-Control) and zero for stale ones. The [Observer] counts a
// stale-marked hit as Stale, not Hit.
//
// # Failures
//
// Business errors ([kisfeed.IsBusinessError]) pass through untouched and
// are not cached. Any other upstream error is answered from the stale copy
// when there is one, else returned as a *[kisfeed.UnavailableError]
// wrapping it. A failing Store never fails a request: a store that can
// fail is wrapped in [Failover], which logs the state change once, serves
// from the fallback store and probes the primary again every few seconds.
//
// # De-duplication
//
// Concurrent identical lookups share one flight (golang.org/x/sync
// singleflight) that covers the cache read and the upstream call, so N
// concurrent cold requests for one key make one upstream call. The flight
// runs detached from any single caller's context (bounded by
// [WithFlightTimeout]) so one caller giving up does not fail the others;
// each caller still returns as soon as its own context ends.
//
// A flight started by a caller with a deadline hands the upstream a
// context whose Deadline is that caller's deadline minus a margin (a
// quarter of its time left, at most 250 ms) but which is cancelled only a
// grace after that deadline (a quarter of the time left, at most 1 s). The
// kis client's rate limiter plans with the Deadline, so a wait that cannot
// end in time for the caller is refused at once ("would exceed context
// deadline") and the caller gets its stale copy or a fast
// *[kisfeed.UnavailableError] instead of a timeout; and a call already
// sent is not abandoned when the caller leaves: an answer arriving in the
// grace is still stored for the callers that joined later and the next
// ones. A caller whose deadline passes while it waits is answered from the
// copy it saw before joining, when it has one, else gets its context's
// error.
//
// # The stale budget
//
// A lookup that has a stale copy (within the stale max age) waits for the
// upstream only for the stale budget ([WithStaleBudget],
// CACHE_STALE_BUDGET, 150 ms by default); then it answers with the copy,
// marked stale, while the flight goes on in the background and stores the
// upstream's answer when it comes. During an outage callers so get the
// copy in a fraction of a second instead of after every retry of the
// upstream call. A lookup with no copy keeps waiting for the flight: the
// answer, or the upstream's error (a fast *[kisfeed.UnavailableError]
// while the circuit is open).
//
// # Refresh-ahead
//
// With [WithRefreshAhead] (CACHE_REFRESH_RATE, CACHE_REFRESH_CODES,
// CACHE_REFRESH_UNIVERSE) Quote and Quotes count requests per code (a
// sharded counter map, bounded, halved every minute) and a background
// loop, started by [New] and stopped by [Cache.Close], keeps the hot set
// fresh: once per 1/Rate seconds it makes at most one upstream Quotes call
// (on the real server one intstock-multprice call, up to 30 codes) for the
// most-requested codes whose price is unknown or ends within the lead time
// (a quarter of the price TTL, at most a minute), then, with Universe, for
// the universe's other codes, so that even a first request is a hit. Rate
// is the share of the upstream's rate budget it may take (2/s by default,
// 11 % of the real server's 18/s). A price that would end at the next
// session boundary either way is not fetched again before it, and with no
// quote asked for in the last minutes the loop makes no call.
package cache
