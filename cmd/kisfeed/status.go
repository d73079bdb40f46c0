package main

import (
	"context"
	"github.com/kisfeed/kisfeed/internal/replica"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/httpapi"
	"github.com/kisfeed/kisfeed/internal/metrics"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// statusRuns is how many ingestion runs /v1/status lists.
const statusRuns = 5

// statusWindow is how far back /v1/status measures the upstream rate.
const statusWindow = 30 * time.Second

// The metrics /v1/status reads beside metrics' exported cache names;
// TestStatusFeed reads them from a registry metrics.New filled, so a
// rename there fails it.
const (
	breakerStateName     = metrics.Namespace + "_breaker_state"
	upstreamRequestsName = metrics.Namespace + "_upstream_requests_total"
)

// statusFeed fills /v1/status from what serve already keeps: the metrics
// registry (breaker state, cache and upstream counters), the KIS keys'
// rate limit and the ingestion database. Reading the registry, rather
// than asking each part, keeps the page's figures the ones Prometheus
// scrapes.
type statusFeed struct {
	gather prometheus.Gatherer
	now    func() time.Time
	limit  float64            // requests/s all keys allow; 0 without KIS
	keys   int                // KIS app keys
	db     kisfeed.PriceStore // nil without a database
	// stream reports the KIS WebSocket sessions per app key (live.Live's
	// client); nil without a stream (synthetic mode).
	stream func() stream.Stats
	// replica reports this replica's lease and relay (NATS_URL); nil for
	// a single process.
	replica func() replica.Status

	mu      sync.Mutex
	samples []rateSample // guarded by mu: upstream counter readings, oldest first, within statusWindow
}

// rateSample is one reading of the upstream request counter.
type rateSample struct {
	at time.Time
	n  int64
}

// newStatusFeed starts the rate window at the counter's current value.
func newStatusFeed(g prometheus.Gatherer, now func() time.Time, limit float64, keys int, db kisfeed.PriceStore) *statusFeed {
	f := &statusFeed{gather: g, now: now, limit: limit, keys: keys, db: db}
	var s httpapi.Status
	f.fromMetrics(&s)
	f.samples = []rateSample{{at: now(), n: s.Upstream.Requests}}
	return f
}

// report is httpapi.Options.Status.
func (f *statusFeed) report(ctx context.Context) httpapi.Status {
	s := httpapi.Status{Breaker: "unknown", Upstream: httpapi.StatusUpstream{Keys: f.keys}}
	f.fromMetrics(&s)
	s.Upstream.PerSecond = f.rate(f.now(), s.Upstream.Requests)
	if f.limit > 0 {
		s.Upstream.Limit = &f.limit
	}
	f.fromStream(&s)
	if f.db != nil {
		s.Ingestion.Database = true
		runs, err := f.db.Runs(ctx, statusRuns)
		if err != nil {
			// The database's errors name the host, never a password
			// (see httpapi.PingCheck).
			s.Ingestion.Error = "reading ingestion runs: " + err.Error()
		}
		for _, r := range runs {
			s.Ingestion.Runs = append(s.Ingestion.Runs, statusRun(r))
		}
	}
	return s
}

// fromStream fills the stream part: each app key's session and
// registrations from the live client, or, without a stream, every key
// with none.
func (f *statusFeed) fromStream(s *httpapi.Status) {
	if f.stream == nil {
		for i := range f.keys {
			s.Stream.Keys = append(s.Stream.Keys, httpapi.StatusStreamKey{Key: i + 1})
		}
		return
	}
	s.Stream.Available = true
	if f.replica != nil {
		r := f.replica()
		s.Stream.Replica = &httpapi.StatusReplica{Name: r.Name, Holder: r.Holder, Epoch: r.Epoch, Fence: r.Fence,
			Since: r.Since, Tenures: r.Tenures, Gaps: r.Gaps, Forwarded: r.Forwarded}
	}
	for i, k := range f.stream().Keys {
		sk := httpapi.StatusStreamKey{Key: i + 1, Registrations: k.Registrations}
		if k.Connected {
			sk.Sessions = 1
		}
		s.Stream.Keys = append(s.Stream.Keys, sk)
	}
}

// fromMetrics reads the breaker state and the cache and upstream
// counters from the registry.
func (f *statusFeed) fromMetrics(s *httpapi.Status) {
	// Gather returns what it could alongside an error; use that.
	mfs, _ := f.gather.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case breakerStateName:
			for _, m := range mf.GetMetric() {
				if m.GetGauge().GetValue() == 1 {
					s.Breaker = label(m, "state")
				}
			}
		case metrics.CacheHitsName:
			s.Cache.Hits = sumCounter(mf)
		case metrics.CacheMissesName:
			s.Cache.Misses = sumCounter(mf)
		case metrics.CacheStaleName:
			s.Cache.Stale = sumCounter(mf)
		case upstreamRequestsName:
			s.Upstream.Requests = sumCounter(mf)
		}
	}
	if n := s.Cache.Hits + s.Cache.Misses; n > 0 {
		r := float64(s.Cache.Hits) / float64(n)
		s.Cache.HitRatio = &r
	}
}

// rate records the reading n at now and returns the requests per second
// since the oldest reading within statusWindow, nil when less than a
// second separates them. Readings closer than a second to the last are
// not kept, so a busy page cannot flood the window.
func (f *statusFeed) rate(now time.Time, n int64) *float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if last := f.samples[len(f.samples)-1]; now.Sub(last.at) >= time.Second {
		f.samples = append(f.samples, rateSample{at: now, n: n})
	}
	// Keep the newest reading at least statusWindow old as the base.
	for len(f.samples) > 1 && now.Sub(f.samples[1].at) >= statusWindow {
		f.samples = f.samples[1:]
	}
	first := f.samples[0]
	dt := now.Sub(first.at).Seconds()
	if dt < 1 || n < first.n {
		return nil
	}
	r := float64(n-first.n) / dt
	return &r
}

func statusRun(r kisfeed.IngestionRun) httpapi.StatusRun {
	day := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(kisfeed.KST).Format(time.DateOnly)
	}
	kst := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		return t.In(kisfeed.KST)
	}
	return httpapi.StatusRun{
		ID: r.ID, Status: string(r.Status), StartedAt: kst(r.StartedAt), FinishedAt: kst(r.FinishedAt),
		From: day(r.From), To: day(r.To), Path: r.Path,
		Universe: r.Universe, Written: r.Written, Rejected: r.Rejected, Failed: r.Failed, Error: r.Error,
	}
}

func sumCounter(mf *dto.MetricFamily) int64 {
	var n float64
	for _, m := range mf.GetMetric() {
		n += m.GetCounter().GetValue()
	}
	return int64(n)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
