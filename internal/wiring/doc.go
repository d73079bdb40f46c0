// Package wiring connects the parts every kisfeed command reads through:
// from a [config.Config] it picks the upstream (the mock market, or KIS
// through one client per app key, or the built-in emulator cmd/kisfeed
// hands in) and stacks the circuit breaker, the quote batcher and the
// cache on top. It owns the connections and nothing else — each part lives
// in its own package — and returns a [Stack]: the Source, the KIS clients,
// the readiness and health checks, and Close.
//
// It is named wiring, not source, because it is not a kisfeed.Source:
// "source" names what answers quotes (kis.Source, the mock, the cache);
// this package only builds and connects them. The stack it builds is
//
//	cache(breaker(upstream))
//
// with, where the upstream batches natively (the real server and the
// embedded emulator, QUOTE_BATCH_WINDOW > 0), package batch between the
// cache and the breaker, coalescing concurrent quote misses into
// intstock-multprice calls: cache(batch(breaker(upstream))). So while the
// breaker is open the cache serves its stale copies, and with nothing
// cached callers get a fast *kisfeed.UnavailableError.
//
// Modes ([config.Config.Mode]):
//
//   - mock (ENABLE_KIS_API=false): the synthetic market in-process
//     (package synthetic), no HTTP at all.
//   - kis: one kis.Client per app key (KIS_APP_KEY, then KIS_APP_KEYS),
//     real or mock server by KIS_USE_REAL_SERVER, KIS_BASE_URL overriding
//     the URL (and, unless it is a koreainvestment.com host, serving the
//     master files too, as the emulator does), spread by [Multi]. Tokens are shared in Redis when
//     REDIS_URL is set (one issuance per app key across replicas), else
//     kept in KIS_TOKEN_FILE or <user cache dir>/kisfeed/tokens.json. With
//     REDIS_URL and KISFEED_SHARED_RATE_LIMIT the per-key rate budget is
//     shared in Redis too.
//   - embedded (no credentials): the built-in emulator, started through
//     [Deps.StartEmulator] (cmd/kisfeed sets it only in this mode; without
//     it New fails, so the production path never starts an emulator on
//     its own), runs in this process on 127.0.0.1 (real-server behaviour, 18 req/s, seed
//     KISFEED_SEED) and the real kis client talks to it with a demo key.
//     The factory prints nothing; the caller tells the user (e.g. "using
//     the built-in KIS emulator (no KIS_APP_KEY set)" on stderr). Tokens
//     and rate budget stay in-process: each process has its own emulator.
//
// Failing fast: a refused connection is not retried by the KIS client (see
// [RefusedError]), and with the shared limiter a TCP probe runs before a
// rate slot is taken, so a stopped upstream costs a lookup milliseconds:
// the cache answers with its stale copy or a *kisfeed.UnavailableError.
//
// Recovering fast: while the circuit is open, the breaker's recovery
// probe sends one price request every BREAKER_PROBE_INTERVAL
// (config.Config.ProbeInterval: 1 s at 18 req/s, 18 s on the mock server)
// and closes the circuit as soon as one is answered, so fresh data
// returns within about an interval of an outage's end rather than after
// BREAKER_DELAY (see recoveryProbe).
//
// Marking hits stale: the cache asks [Stack.Health] on every fresh hit
// and serves the hit with Origin "stale" (Stale=true) while the breaker is
// open or the upstream host refuses connections, so an outage shows at
// once, not only after the TTL. The answer reuses the last reachability
// observation (seconds old at most) and dials at most once per process
// start or refresh interval, never once per request.
//
// The cache uses Redis when REDIS_URL is set (with an in-memory LRU as its
// fallback while Redis fails, and decoded local copies of at most 1 s in
// front of it), else the in-memory LRU; its keys carry no prefix
// (stock:{code}:price, ...), see package cache.
//
// Simulated market hours: in mock and embedded modes KISFEED_MARKET_TIME
// (config.Config.MarketClock) starts the synthetic market at a chosen
// instant, advancing in real time from the factory's start. The mock
// source and the embedded emulator's quotes, books and minute bars follow
// that clock (the Market half of [Stack.Clock], built once in [New]); so do the cache's session boundaries
// (the 09:00 open and 15:30 close that end intraday freshness), because
// the synthetic sessions open and close in market time. Tokens, rate
// windows, TTLs and timeouts keep the real clock. KIS mode ignores it.
package wiring
