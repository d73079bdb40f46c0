// Package metrics defines kisfeed's Prometheus metrics on an injected
// registry: HTTP requests, upstream (KIS) calls and rate budgets, the cache,
// the circuit breaker, the KIS real-time stream, the KRX calendar and the
// latest ingestion run.
//
// deploy/grafana/kisfeed.json and deploy/prometheus/alerts.yml query these
// names; TestDeployMetricNames (cmd/kisfeed) fails when they name one that
// serve does not register.
//
// There is no global registry: [New] registers everything on the
// prometheus.Registerer it is given, and the methods of [Metrics] are the
// observer interfaces the other packages call (the KIS client's Observer,
// the cache's hit/miss observer, the breaker's state callback), matched
// structurally so this package imports none of them.
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric name.
const Namespace = "kisfeed"

// Metric names other programs read (the load generator reads the cache
// counters from /metrics).
const (
	CacheHitsName   = Namespace + "_cache_hits_total"
	CacheMissesName = Namespace + "_cache_misses_total"
	CacheStaleName  = Namespace + "_cache_stale_serves_total"
)

// BreakerStates are the circuit-breaker states the state gauge always
// exports, so dashboards see a 0 series for the states not current.
var BreakerStates = []string{"closed", "half-open", "open"}

// httpBuckets are tuned for a cached gateway: most answers take well under
// a millisecond, uncached ones tens to hundreds of milliseconds.
var httpBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// upstreamBuckets cover KIS round trips (tens of ms) up to client timeouts.
var upstreamBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics holds every kisfeed metric. Its methods are safe for concurrent
// use; a nil *Metrics is not valid (use [New] with a throwaway registry
// when metrics are not wanted).
type Metrics struct {
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	upstreamRequests *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	kisErrors        *prometheus.CounterVec
	retries          *prometheus.CounterVec
	limiterWait      prometheus.Histogram
	tokens           prometheus.Counter

	cacheHits   *prometheus.CounterVec
	cacheMisses *prometheus.CounterVec
	cacheStale  *prometheus.CounterVec

	breakerState *prometheus.GaugeVec
	// breakerMu serialises SetBreakerState so the gauge never shows two
	// states at 1.
	breakerMu sync.Mutex

	ingest *ingestCollector
	rates  *funcCollector
	market *funcCollector
	stream *Stream
	fanout *Fanout
}

// New creates the metrics and registers them on reg. It panics if a
// metric is already registered there, like prometheus.MustRegister: that
// is a wiring bug, not a runtime condition.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method, route pattern and status code.",
			Buckets: httpBuckets,
		}, []string{"method", "route", "status"}),

		upstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "upstream_requests_total",
			Help: "Requests sent to the KIS API, by tr_id and HTTP status (0 = transport failure).",
		}, []string{"tr_id", "status"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "upstream_request_duration_seconds",
			Help:    "Round-trip time of KIS API requests, by tr_id.",
			Buckets: upstreamBuckets,
		}, []string{"tr_id"}),
		kisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "kis_errors_total",
			Help: "Failed KIS API requests, by KIS message code (msg_cd; \"none\" when the failure carried none).",
		}, []string{"msg_cd"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "upstream_retries_total",
			Help: "Retried KIS API requests, by tr_id and reason.",
		}, []string{"tr_id", "reason"}),
		limiterWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "kis_limiter_wait_seconds",
			Help:    "Time requests waited on the KIS rate limiter.",
			Buckets: []float64{0, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "kis_token_issuances_total",
			Help: "Access tokens issued by KIS (tokenP calls that succeeded).",
		}),

		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "cache_hits_total",
			Help: "Values served from the cache within their TTL, by kind.",
		}, []string{"kind"}),
		cacheMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "cache_misses_total",
			Help: "Cache lookups that went to the upstream, by kind.",
		}, []string{"kind"}),
		cacheStale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "cache_stale_serves_total",
			Help: "Cached values served as stale (past their TTL, or while the upstream is known to be down), by kind.",
		}, []string{"kind"}),

		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "breaker_state",
			Help: "Circuit-breaker state: 1 for the current state, 0 for the others.",
		}, []string{"state"}),

		ingest: newIngestCollector(),
		rates:  newRateCollector(),
		market: newMarketCollector(),
		stream: newStream(),
		fanout: newFanout(),
	}
	reg.MustRegister(
		m.httpRequests, m.httpDuration,
		m.upstreamRequests, m.upstreamDuration, m.kisErrors, m.retries, m.limiterWait, m.tokens,
		m.cacheHits, m.cacheMisses, m.cacheStale,
		m.breakerState, m.ingest, m.rates, m.market,
	)
	reg.MustRegister(m.stream.collectors()...)
	reg.MustRegister(m.fanout.collectors()...)
	for _, s := range BreakerStates {
		m.breakerState.WithLabelValues(s)
	}
	return m
}

// Stream returns the metrics of the KIS real-time feed, registered on the
// same registry as the rest.
func (m *Metrics) Stream() *Stream { return m.stream }

// Fanout returns the metrics of the real-time fan-out to consumers,
// registered on the same registry as the rest.
func (m *Metrics) Fanout() *Fanout { return m.fanout }

// ObserveHTTP records one served HTTP request. route is the router's
// pattern ("/v1/stocks/{code}/quote"), never the raw path, so the label
// set stays bounded.
func (m *Metrics) ObserveHTTP(method, route string, status int, elapsed time.Duration) {
	s := statusLabel(status)
	m.httpRequests.WithLabelValues(method, route, s).Inc()
	m.httpDuration.WithLabelValues(method, route, s).Observe(elapsed.Seconds())
}

// Request records one KIS API round trip (the kis.Observer method): status
// is the HTTP status (0 when the request never got one), msgCode the KIS
// msg_cd of the body, err non-nil when the call failed.
func (m *Metrics) Request(trID string, status int, msgCode string, elapsed time.Duration, err error) {
	if trID == "" {
		trID = "none"
	}
	m.upstreamRequests.WithLabelValues(trID, statusLabel(status)).Inc()
	m.upstreamDuration.WithLabelValues(trID).Observe(elapsed.Seconds())
	if err != nil {
		if msgCode == "" {
			msgCode = "none"
		}
		m.kisErrors.WithLabelValues(msgCode).Inc()
	}
}

// Retry records a retried KIS request (the kis.Observer method).
func (m *Metrics) Retry(trID, reason string) {
	if trID == "" {
		trID = "none"
	}
	m.retries.WithLabelValues(trID, reason).Inc()
}

// LimiterWait records time spent waiting on the rate limiter (the
// kis.Observer method).
func (m *Metrics) LimiterWait(d time.Duration) { m.limiterWait.Observe(d.Seconds()) }

// TokenIssued records an access-token issuance (the kis.Observer method).
func (m *Metrics) TokenIssued() { m.tokens.Inc() }

// Hit records a cache hit of the given kind ("quote", "orderbook", ...).
func (m *Metrics) Hit(kind string) { m.cacheHits.WithLabelValues(kind).Inc() }

// Miss records a cache miss of the given kind.
func (m *Metrics) Miss(kind string) { m.cacheMisses.WithLabelValues(kind).Inc() }

// Stale records a stale serve of the given kind.
func (m *Metrics) Stale(kind string) { m.cacheStale.WithLabelValues(kind).Inc() }

// SetBreakerState sets the breaker gauge to state ("closed", "half-open",
// "open"; any other name gets its own series). Pass it as the breaker's
// state-change callback.
func (m *Metrics) SetBreakerState(state string) {
	m.breakerMu.Lock()
	defer m.breakerMu.Unlock()
	for _, s := range BreakerStates {
		m.breakerState.WithLabelValues(s).Set(0)
	}
	m.breakerState.WithLabelValues(state).Set(1)
}

// SetIngestFunc installs the function the ingestion gauges read at each
// scrape; it returns ok=false while no run is known (the gauges are then
// absent). Passing nil removes it.
func (m *Metrics) SetIngestFunc(f func() (RunFigures, bool)) { m.ingest.set(f) }

// statusLabel formats common statuses without allocating.
func statusLabel(code int) string {
	switch code {
	case 200:
		return "200"
	case 400:
		return "400"
	case 404:
		return "404"
	case 500:
		return "500"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return strconv.Itoa(code)
}
