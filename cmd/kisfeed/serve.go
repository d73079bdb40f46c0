package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/access"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/fanout"
	"github.com/kisfeed/kisfeed/internal/httpapi"
	"github.com/kisfeed/kisfeed/internal/ingest"
	"github.com/kisfeed/kisfeed/internal/loadtest"
	"github.com/kisfeed/kisfeed/internal/metrics"
	"github.com/kisfeed/kisfeed/internal/wiring"
	"github.com/kisfeed/kisfeed/kis/stream"
	"github.com/kisfeed/kisfeed/krx"
)

// serveOptions are the serve command's flags.
type serveOptions struct {
	addr            string
	requestTimeout  time.Duration
	shutdownTimeout time.Duration
	accessLog       bool
}

func newServeCmd(a *app) *cobra.Command {
	var o serveOptions
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the market-data HTTP API, /metrics, /healthz and /readyz",
		Long: `serve answers market data over HTTP as JSON:

  GET /v1/stocks/{code}/quote | orderbook | info
  GET /v1/stocks/{code}/candles?interval=day|week|month|minute&from=YYYY-MM-DD&to=YYYY-MM-DD
  GET /v1/quotes?codes=005930,000660,...   (up to 100)
  GET /v1/calendar/{date}
  GET /v1/stocks                            (the universe)
  GET /v1/status                            (breaker, cache, upstream rate, ingestion runs)

plus /healthz, /readyz, /metrics (Prometheus) and /openapi.json, and a
market page at / (chart, order book, status strip; open it in a browser:
http://127.0.0.1:8080/?code=005930&interval=day).

Access: with KISFEED_API_KEYS set, every /v1 route needs
"Authorization: Bearer <key>" (401 without, 403 for a key lacking the
scope), and each key may cause KISFEED_API_KEY_MISS_RATE cache misses per
second (burst KISFEED_API_KEY_MISS_BURST) before it gets 429 with
Retry-After; "kisfeed apikey new NAME" makes a key. /metrics needs a key
with the metrics scope when METRICS_REQUIRE_KEY=true. Without keys every
route is public, so serve then listens on 127.0.0.1:8080 unless --addr or
KISFEED_ADDR says otherwise.

It prints
"listening on http://ADDR" once bound and shuts down gracefully on SIGTERM or
Ctrl-C: in-flight requests drain (up to --shutdown-timeout), then pools close.

Under load: a cached quote costs about 50-60 µs of CPU per request, nearly
all of it net/http and the kernel (the cache hit itself is under 1 µs).
GOMAXPROCS keeps Go's default (the CPUs the process may use). The access log
(--access-log, on by default) writes one line per request at info level and
adds about 7 % CPU at 5,000 req/s; at LOG_LEVEL=warn it is skipped for the
cost of a level check, so load tests run with LOG_LEVEL=warn. The garbage
collector runs at GOGC=400 unless GOGC is set: fewer cycles, a shorter
latency tail, a few MB more heap.

When KIS is slow or down: a lookup with a cached copy is answered with it
(X-Cache: STALE) once CACHE_STALE_BUDGET (150ms) has passed, while the
refresh goes on and fills the cache when KIS answers; a code never cached
gets 503 with Retry-After while the circuit breaker is open, and 504 when
KIS did not answer within the request's bound. The breaker opens after
BREAKER_FAILURES failed attempts in a row and, while open, sends one probe
request every BREAKER_PROBE_INTERVAL to find the recovery; /readyz reports
an open or half-open circuit as not ready. Concurrent cold quotes are
fetched 30 to a call (QUOTE_BATCH_WINDOW), and hot quotes are refreshed
shortly before they expire (CACHE_REFRESH_RATE). See RELIABILITY.md.

Real time: in KIS and embedded modes serve runs KIS's WebSocket client.
STREAM_CODES (e.g. 005930,000660) are registered from start-up for the
process lifetime, and their trades and books are written through into the
cache: a quote read is then a hit as of the last execution (as_of = the
trade's time), a book as of the last book frame. Nothing older replaces
something newer. After a reconnect each code's quote and book are re-read
from REST and one warning names the codes and the window that may be
missing. Without STREAM_CODES no KIS session is opened. Approval keys are kept
in KIS_APPROVAL_FILE (or Redis with REDIS_URL). Synthetic mode has no stream.

Replicas: with NATS_URL (and REDIS_URL) serve is one replica of several.
A lease in Redis (STREAM_LEASE_TTL) picks the replica that holds the KIS
sessions; it publishes the events on NATS and registers every replica's
consumers' codes, and each replica serves its own consumers from NATS.
When the holder dies another takes over within about ttl + ttl/3 and
consumers get a gap event per code, then the new holder's events (new
ids). KISFEED_REPLICA names this replica (default hostname-pid);
/v1/status shows "stream": {"replica": {"holder": ...}}.

Memory: serve sets a soft memory limit of 128 MiB unless GOMEMLIMIT is set
(Go's own variable, read from the process environment only, not from .env;
e.g. GOMEMLIMIT=512MiB, or GOMEMLIMIT=off for none). GOGC=400 lets the heap
grow to five times what is live, so a flood of cold requests (3,000 req/s
over 2,600 codes) left about 300 MB resident, still there a minute later;
with the limit the collector runs sooner as the heap nears it and the
flood leaves about 140 MB. It is soft: a live heap above it (a very large
CACHE_MEMORY_ENTRIES of candles) still works, at the price of more
collections, which Go caps at about half the CPU; raise it then, and keep
it below a container's memory limit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.serve(cmd.Context(), o) },
	}
	f := c.Flags()
	f.StringVar(&o.addr, "addr", "", "listen address (default KISFEED_ADDR; else :8080 with KISFEED_API_KEYS, 127.0.0.1:8080 without)")
	f.DurationVar(&o.requestTimeout, "request-timeout", httpapi.DefaultRequestTimeout, "bound on each request; past it the answer is 504")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long in-flight requests may drain on shutdown")
	f.BoolVar(&o.accessLog, "access-log", true, "log every request at info level (skipped when LOG_LEVEL is above info)")
	return c
}

// gcPercent is the GOGC that serve and loadtest use unless GOGC is set.
// Both keep small heaps (a bounded cache; per-request garbage under 1 KB)
// and allocate steadily at thousands of requests per second, so Go's
// default of 100 collects many times a second and each cycle's assist and
// pause work lands in the latency tail. 400 trades a few MB of heap for
// far fewer cycles: at 5,000 req/s the server's own p99 fell from about
// 2–3 ms to about 1.4 ms on a 2-core machine.
const gcPercent = 400

// tuneGC applies gcPercent unless the user chose a GOGC.
func (a *app) tuneGC() {
	if a.getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// memLimit is the soft memory limit serve sets unless GOMEMLIMIT is set.
// serve's live heap is tens of MB (the bounded cache, the universe, the
// requests in flight: about 45 MB at the height of a 3,000 req/s flood
// from 2,000 connections); GOGC=400 lets the total grow to five times
// that before a collection, and nothing collects an idle server, so the
// flood left ~300 MB resident (at 256 MiB: ~257 MB; at 128 MiB: ~140 MB,
// with no worse latency). Under ordinary load the live heap is 5–20 MB,
// so the limit seldom binds and GOGC=400 sets the pace; in a flood it
// costs about twice the collections, which the tail hardly shows.
const memLimit = 128 << 20

// tuneMemory applies memLimit unless the user chose a GOMEMLIMIT (which
// the runtime has already applied, including "off").
func (a *app) tuneMemory() {
	if a.getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memLimit)
	}
}

func (a *app) serve(ctx context.Context, o serveOptions) error {
	if o.requestTimeout <= 0 || o.shutdownTimeout <= 0 {
		return usageError("--request-timeout and --shutdown-timeout: want durations > 0 like 15s")
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	a.tuneGC()
	a.tuneMemory()
	log := a.logger(cfg)
	if o.addr, err = listenAddr(cfg, o.addr); err != nil {
		return err
	}
	keys, err := cfg.APIKeys() // validated by a.config; parsed again for the keys
	if err != nil {
		return withExit(2, err)
	}

	reg := prometheus.NewRegistry()
	m := serveMetrics(reg)
	// Bind first: a busy port fails fast, before an upstream (embedded
	// emulator, pools) is started for nothing.
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return withExit(1, fmt.Errorf("listen %s: %w", o.addr, err))
	}
	up, err := a.upstream(ctx, cfg, log, wiring.Deps{
		KISObserver: m, CacheObserver: m, OnBreakerState: m.SetBreakerState,
		LongRunning: true, // refresh-ahead of hot quotes
		// The real-time stream: STREAM_CODES written through into the
		// cache from start-up; no KIS session while nothing is acquired.
		Stream: true, StreamObserver: m.Stream(),
		// With NATS_URL the stream runs only in the lease holder's tenure.
		StreamOnLease: cfg.Replicated(),
	})
	if err != nil {
		ln.Close()
		return withExit(1, fmt.Errorf("upstream: %w", err))
	}
	defer func() {
		if err := up.Close(); err != nil {
			log.Warn("closing upstream", "error", err)
		}
	}()
	m.SetRateFunc(keyRates(up))
	m.SetMarketFunc(marketState(up.Clock.Market))
	checks := up.Checks
	db, dbName, err := a.serveDatabase(ctx, cfg)
	if err != nil {
		return withExit(1, fmt.Errorf("database: %w", err))
	}
	if db != nil {
		defer db.Close()
		checks = append(checks, databaseCheck(db))
		m.SetIngestFunc(latestRun(db))
		log.Info("database for /readyz and ingestion metrics", "db", dbName)
	}
	// A nil store converts to a nil PriceStore: no database.
	status := newStatusFeed(reg, a.clock.Now, upstreamLimit(cfg, len(up.Clients)), len(up.Clients), db)
	hub, streams, stopStreams, err := startStreams(ctx, cfg, up, m, log, status)
	if err != nil {
		return withExit(1, fmt.Errorf("serve: %w", err))
	}
	defer stopStreams()
	h := httpapi.New(httpapi.Options{
		Source: up.Source, Logger: log.With("component", "http"), Observer: m, Gatherer: reg,
		Checks: checks, Clock: kisfeed.Clock{Wall: a.clock.Wall, Market: up.Clock.Market}, Status: status.report,
		RequestTimeout: o.requestTimeout, AccessLog: o.accessLog,
		Access: access.New(keys), MetricsRequireKey: cfg.MetricsRequireKey,
		Stream: streams.sse, StreamWS: streams.ws,
	})
	fmt.Fprintf(a.stdout, "listening on http://%s\n", ln.Addr())
	logAccess(log, len(keys), ln.Addr(), cfg.MetricsRequireKey)
	log.Info("serving", "addr", ln.Addr().String(), "mode", string(cfg.Mode()))
	err = httpapi.Serve(ctx, ln, h, httpapi.ServeOptions{
		ShutdownTimeout: o.shutdownTimeout,
		WriteTimeout:    o.requestTimeout + 30*time.Second,
		Logger:          log,
		// The stream handlers bound their connections' send buffers.
		ConnContext: fanout.ConnContext,
		OnShutdown: func() {
			log.Info("shutting down: draining in-flight requests")
			// Streams never end on their own: end them (SSE: a final
			// error event; WebSocket: close 1001) so the drain can finish.
			if hub != nil {
				hub.Close()
			}
		},
	})
	if err != nil {
		return withExit(1, fmt.Errorf("serve: %w", err))
	}
	log.Info("stopped")
	return nil
}

// listenAddr is serve's address: --addr when given, else KISFEED_ADDR or
// its default (loopback unless API keys are configured,
// config.ListenAddr); an unusable one is an error naming where it came
// from.
func listenAddr(cfg config.Config, flag string) (string, error) {
	if flag != "" {
		if err := checkListenAddr(flag); err != nil {
			return "", usageError("--addr %q: %v", flag, err)
		}
		return flag, nil
	}
	addr, _ := cfg.ListenAddr()
	if err := checkListenAddr(addr); err != nil {
		return "", withExit(2, fmt.Errorf("KISFEED_ADDR %q: %w", addr, err))
	}
	return addr, nil
}

// databaseCheck is /readyz's check of the price database.
func databaseCheck(db kisfeed.PriceStore) httpapi.Check {
	return httpapi.PingCheck("database", func(ctx context.Context) error {
		_, err := db.Runs(ctx, 1)
		return err
	})
}

// startStreams starts the real-time fan-out: with NATS_URL through the
// replica (lease, NATS relay), else on this process's own stream; it
// points /v1/status at the stream it serves. No hub and no routes without
// a stream. stop ends what it started.
func startStreams(ctx context.Context, cfg config.Config, up *upstream, m *metrics.Metrics, log *slog.Logger, status *statusFeed) (*fanout.Hub, streamHandlers, func(), error) {
	if !cfg.Replicated() {
		if up.Live != nil {
			status.stream = func() stream.Stats { return up.Live.Stats().Stream }
		}
		hub, streams, err := startFanout(up, m, log)
		return hub, streams, func() {}, err
	}
	rep, stop, err := startReplica(ctx, cfg, up, m, log)
	if err != nil {
		return nil, streamHandlers{}, nil, err
	}
	status.stream = rep.LiveStats
	status.replica = rep.Status
	return rep.Hub(), newStreamHandlers(rep.Hub(), log), stop, nil
}

// serveMetrics registers everything serve's /metrics exports on reg: the
// Go runtime and process collectors and kisfeed's own metrics.
// TestDeployMetricNames checks the dashboard and the alert rules against
// what this registers.
func serveMetrics(reg prometheus.Registerer) *metrics.Metrics {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return metrics.New(reg)
}

// keyRates feeds the rate-limit gauges: per KIS client (one per app key,
// named key1, key2, ... in the order of the configuration, never by the
// app key), the configured limit and the rate it paces at now.
func keyRates(up *upstream) func() []metrics.KeyRate {
	return func() []metrics.KeyRate {
		out := make([]metrics.KeyRate, len(up.Clients))
		for i, c := range up.Clients {
			out[i] = metrics.KeyRate{Key: "key" + strconv.Itoa(i+1), Limit: up.RateLimit, Pacing: c.RateLimit()}
		}
		return out
	}
}

// marketState feeds the KRX calendar gauges from the built-in calendar on
// the market clock (the wall clock against KIS; the simulated one in mock
// and embedded modes), so alert rules can tell trading days and market
// hours apart without knowing KRX holidays.
func marketState(market func() time.Time) func() (tradingDay, open bool) {
	return func() (bool, bool) {
		now := market()
		return krx.IsTradingDay(now), krx.IsOpen(now)
	}
}

// upstreamLimit is the most KIS requests per second the keys allow
// together, as the wiring paces them: the configured rate per key, the
// built-in emulator's own in embedded mode; 0 without KIS (mock mode).
func upstreamLimit(cfg config.Config, keys int) float64 {
	perKey := cfg.EffectiveRate()
	if cfg.Mode() == config.ModeEmbedded {
		perKey = wiring.EmbeddedRate
	}
	return perKey * float64(keys)
}

// checkListenAddr checks that addr has the host:port form with a port in
// range before anything binds: a malformed address is bad usage (exit 2),
// while a well-formed one that cannot be bound (port taken, foreign host)
// is a listen failure (exit 1).
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		// LookupPort refuses ports outside 0-65535 (and unknown service
		// names) without touching the network.
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return errors.New("want host:port with a port from 0 to 65535, e.g. :8080 or 127.0.0.1:8080")
	}
	return nil
}

// serveDatabase opens the ingestion database serve reports on: DATABASE_URL
// when set, else ./kisfeed.db only if it already exists — serve must not
// create a database as a side effect. nil when there is none.
func (a *app) serveDatabase(ctx context.Context, cfg config.Config) (priceStore, string, error) {
	if cfg.DatabaseURL == "" {
		if _, err := os.Stat(defaultSQLite); err != nil {
			return nil, "", nil
		}
	}
	return openPriceStore(ctx, "", cfg)
}

// successLookback is how many of the newest runs latestRun searches for
// the last succeeded one: a day's retries and backfills fit many times
// over, and a success further back is too old for the alert that reads it
// anyway (absent, it fires as a missing success should).
const successLookback = 50

// latestRun feeds the ingestion gauges from the newest ingestion_runs row,
// read at scrape time with a short deadline so a slow database cannot stall
// /metrics.
func latestRun(db kisfeed.PriceStore) func() (metrics.RunFigures, bool) {
	return func() (metrics.RunFigures, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		runs, err := db.Runs(ctx, successLookback)
		if err != nil || len(runs) == 0 {
			return metrics.RunFigures{}, false
		}
		var lastSuccess time.Time
		for _, r := range runs { // newest first
			if r.Status == kisfeed.RunSucceeded {
				lastSuccess = r.FinishedAt
				break
			}
		}
		r := runs[0]
		if r.Status == kisfeed.RunRunning && r.FinishedAt.IsZero() && ingest.RunDead(r, time.Now()) {
			// Its process died (silent past the lease, or gone from this
			// host) and no run or verify has marked it abandoned yet:
			// report it ended at its last heartbeat, not as running
			// forever, and as abandoned, the state it will be marked with.
			r.FinishedAt = r.HeartbeatAt
			r.Status = kisfeed.RunAbandoned
		}
		return metrics.RunFigures{
			Started: r.StartedAt, Finished: r.FinishedAt,
			// Succeeded counts the codes in scope whose fetch did not fail
			// (skipped-as-stored and rejected included): the run's failures
			// are what an alert watches.
			Stocks: int64(r.Universe), Succeeded: int64(max(r.Universe-r.Failed, 0)), Failed: int64(r.Failed),
			Rows: int64(r.Written), Status: string(r.Status), LastSuccess: lastSuccess,
		}, true
	}
}

// loadtestOptions are the loadtest command's flags.
type loadtestOptions struct {
	target      string
	rate        float64
	duration    time.Duration
	codes       int
	zipf        float64
	concurrency int
	seed        uint64
	json        bool
}

func newLoadtestCmd(a *app) *cobra.Command {
	var o loadtestOptions
	c := &cobra.Command{
		Use:   "loadtest --target URL",
		Short: "Load a running kisfeed serve at a constant rate and print latency figures",
		Long: `loadtest is an open-loop load generator: it sends GET /v1/stocks/{code}/quote
at a constant arrival rate (request i leaves at start + i/rate whatever the
server does) and measures each latency from the scheduled time, so a slow
server cannot hide behind a slowed-down client. Codes follow a Zipf mix over
the first --codes common shares of the target's universe (GET /v1/stocks),
or of the synthetic market's when the target cannot list them.

It prints the achieved rate, p50/p95/p99/max latency, errors by status, and
the cache hit ratio from the target's /metrics (counter delta over the run),
plus the service time measured from the actual send: the server's share. A
gap between the two is time requests waited to leave (the dispatcher wakes
on timers with about 1 ms resolution, and a saturated generator sends late),
and it is counted, not hidden. It also prints the target's resident memory
(process_resident_memory_bytes) and heap in use from its /metrics just
before the first request and just after the last answer: what a flood
leaves behind. One dispatcher hands due requests to a pool
of keep-alive workers that grows only while every worker is busy, up to
--concurrency. On a small machine, pin the generator and the server to
different CPUs (taskset -c 1 kisfeed loadtest ...) so they do not compete.

Every flag is checked before the target is contacted.

Exit status: 0 when every request was answered without a 5xx (a 4xx, such
as an unknown code, is the client's doing and does not fail the run); 1
when any request got a 5xx or no answer (connection error, or no answer
within 30 s), or when the target does not answer at all; 2 bad usage; 130
interrupted (the figures so far are printed).

A target that requires API keys: set KISFEED_API_KEY in loadtest's
environment (not a flag, which other users could read in the process
list); every request carries it as "Authorization: Bearer <key>". Its
cache-miss quota applies: a cold run may need a key with a higher rate=.

"kisfeed loadtest stream" loads the real-time streams instead (SSE or
WebSocket consumers); see its --help.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.loadtest(cmd.Context(), o) },
	}
	f := c.Flags()
	f.StringVar(&o.target, "target", "", "base URL of a running kisfeed serve, e.g. http://127.0.0.1:8080 (required)")
	f.Float64Var(&o.rate, "rate", 100, "arrival rate, requests per second")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send requests")
	f.IntVar(&o.codes, "codes", 100, "how many codes of the universe to spread requests over")
	f.Float64Var(&o.zipf, "zipf", 1.1, "Zipf exponent s > 1 of the code mix (higher = more skewed)")
	f.IntVar(&o.concurrency, "concurrency", 2000, "most requests in flight (worker pool size); beyond it requests wait, and the wait counts as latency")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the code sequence")
	f.BoolVar(&o.json, "json", false, "print the figures as JSON")
	return c
}

func (a *app) loadtest(ctx context.Context, o loadtestOptions) error {
	if o.target == "" {
		return usageError("--target is required: the base URL of a running kisfeed serve, e.g. http://127.0.0.1:8080")
	}
	// Every flag is checked before the target hears from us. Zero
	// --zipf and --concurrency mean "default" to loadtest.Config, but on
	// the command line they are mistakes.
	if o.codes < 1 {
		return usageError("--codes %d: want 1 or more", o.codes)
	}
	if o.zipf == 0 {
		return usageError("--zipf 0: want an exponent > 1 (e.g. 1.1)")
	}
	if o.concurrency < 1 {
		return usageError("--concurrency %d: want 1 or more", o.concurrency)
	}
	lc := loadtest.Config{
		Target: o.target, Rate: o.rate, Duration: o.duration, Zipf: o.zipf,
		Concurrency: o.concurrency, Seed: o.seed,
	}
	if err := lc.Validate(); err != nil {
		var fe *loadtest.FieldError
		if errors.As(err, &fe) { // its fields are named as the flags are
			return usageError("--%s %s", strings.ReplaceAll(fe.Field, " × ", " × --"), fe.Msg)
		}
		return usageError("%v", err)
	}
	a.tuneGC() // the generator's own GC pauses would count as latency
	lc.Client = &http.Client{
		Timeout: 30 * time.Second,
		Transport: withAPIKey(a.getenv(apiKeyEnv), &http.Transport{
			MaxIdleConns: o.concurrency, MaxIdleConnsPerHost: o.concurrency,
			IdleConnTimeout: 90 * time.Second, DisableCompression: true,
		}),
	}
	defer lc.Client.CloseIdleConnections()
	codes, err := a.targetCodes(ctx, lc.Client, o.target, o.codes)
	if err != nil {
		return err
	}
	lc.Codes = codes
	r, err := loadtest.Run(ctx, lc)
	if err != nil && r.Scheduled == 0 {
		return withExit(1, err)
	}
	if err := a.printReport(r, o.json); err != nil {
		return err
	}
	if err != nil {
		return withExit(exitInterrupted, fmt.Errorf("interrupted after %d of the scheduled requests: %w", r.Scheduled, err))
	}
	if err := r.Failure(); err != nil {
		return withExit(1, err)
	}
	return nil
}
