package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kisfeed/kisfeed/internal/fanout"
	"github.com/kisfeed/kisfeed/kis/stream"
)

func TestStream(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	s := m.Stream()
	s.SessionUp("key1")
	s.SessionUp("key1")
	s.SessionDown("key1", "dropped")
	s.Registrations("key2", 41)
	s.Frame("H0STCNT0", 3)
	s.Frame("H0STCNT0", 0) // a control frame: no records
	s.Frame("", 1)
	s.ParseError("fields")
	s.Reconnect("key1", "watchdog")
	s.Gap("005930")
	s.Gap("000660")
	s.SubscribeRefused("key2", "H0STASP0", "OPSP0008")
	s.Lag("H0STCNT0", 3*time.Millisecond)
	s.Lag("H0STCNT0", -time.Second) // truncation or skew: recorded as 0

	tests := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"sessions up twice, down once", s.sessions.WithLabelValues("key1"), 1},
		{"registrations", s.registrations.WithLabelValues("key2"), 41},
		{"frames", s.frames.WithLabelValues("H0STCNT0"), 2},
		{"frame without tr_id", s.frames.WithLabelValues("none"), 1},
		{"records add the frame's count", s.records.WithLabelValues("H0STCNT0"), 3},
		{"parse errors", s.parseErrors.WithLabelValues("fields"), 1},
		{"reconnects", s.reconnects.WithLabelValues("key1", "watchdog"), 1},
		{"refused", s.refused.WithLabelValues("key2", "H0STASP0", "OPSP0008"), 1},
		{"gaps", s.gaps, 2},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	want := `
# HELP kisfeed_stream_lag_seconds Delay from a real-time record's execution time (KIS stamps seconds) to its receipt, by tr_id.
# TYPE kisfeed_stream_lag_seconds histogram
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.0005"} 1
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.001"} 1
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.0025"} 1
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.005"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.01"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.025"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.05"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.1"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.25"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="0.5"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="1"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="2.5"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="5"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="10"} 2
kisfeed_stream_lag_seconds_bucket{tr_id="H0STCNT0",le="+Inf"} 2
kisfeed_stream_lag_seconds_sum{tr_id="H0STCNT0"} 0.003
kisfeed_stream_lag_seconds_count{tr_id="H0STCNT0"} 2
`
	if err := testutil.CollectAndCompare(s.lag, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestDescribedBeforeUse: every metric is part of the registry from New
// on, series or not. A vector with no series is absent from a scrape
// (client_golang gathers no empty family), so the deploy name test reads
// the registry's descriptors, not the scrape.
func TestDescribedBeforeUse(t *testing.T) {
	t.Parallel()
	rec := &describeRecorder{Registerer: prometheus.NewRegistry()}
	New(rec)
	for _, name := range []string{
		"kisfeed_stream_sessions", "kisfeed_stream_registrations", "kisfeed_stream_frames_total",
		"kisfeed_stream_records_total", "kisfeed_stream_parse_errors_total", "kisfeed_stream_reconnects_total",
		"kisfeed_stream_gaps_total", "kisfeed_stream_lag_seconds", "kisfeed_stream_subscribe_refused_total",
		"kisfeed_kis_rate_limit", "kisfeed_kis_pacing_rate", "kisfeed_krx_trading_day", "kisfeed_krx_market_open",
		"kisfeed_ingest_last_run_status", "kisfeed_ingest_last_success_timestamp_seconds",
	} {
		if !strings.Contains(rec.descs.String(), `fqName: "`+name+`"`) {
			t.Errorf("%s: not described", name)
		}
	}
}

// describeRecorder notes every descriptor registered through it.
type describeRecorder struct {
	prometheus.Registerer
	descs strings.Builder
}

func (r *describeRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		r.descs.WriteString(d.String() + "\n")
	}
	return r.Registerer.Register(c)
}

func (r *describeRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func TestRateAndMarketGauges(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.SetRateFunc(func() []KeyRate {
		return []KeyRate{{Key: "key1", Limit: 18, Pacing: 17.46}, {Key: "key2", Limit: 18, Pacing: 13.095}}
	})
	m.SetMarketFunc(func() (bool, bool) { return true, false })
	want := `
# HELP kisfeed_kis_rate_limit Configured KIS request rate limit of an app key, requests per second, by app key id.
# TYPE kisfeed_kis_rate_limit gauge
kisfeed_kis_rate_limit{key="key1"} 18
kisfeed_kis_rate_limit{key="key2"} 18
# HELP kisfeed_kis_pacing_rate Rate the KIS client paces an app key at now, requests per second (under the limit; lower after EGW00201), by app key id.
# TYPE kisfeed_kis_pacing_rate gauge
kisfeed_kis_pacing_rate{key="key1"} 17.46
kisfeed_kis_pacing_rate{key="key2"} 13.095
# HELP kisfeed_krx_trading_day 1 when today (KST, on the market clock) is a KRX trading day, else 0 (weekends and KRX holidays).
# TYPE kisfeed_krx_trading_day gauge
kisfeed_krx_trading_day 1
# HELP kisfeed_krx_market_open 1 while the KRX regular session (09:00-15:30 KST on a trading day, market clock) is running, else 0.
# TYPE kisfeed_krx_market_open gauge
kisfeed_krx_market_open 0
`
	names := []string{"kisfeed_kis_rate_limit", "kisfeed_kis_pacing_rate", "kisfeed_krx_trading_day", "kisfeed_krx_market_open"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	m.SetRateFunc(nil)
	m.SetMarketFunc(nil)
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 0 {
		t.Errorf("after removing the funcs: got %d series (%v), want 0", n, err)
	}
}

func TestIngestStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fig  RunFigures
		want string
	}{
		{
			name: "failed run after an earlier success",
			fig:  RunFigures{Status: "failed", LastSuccess: time.Unix(1741676400, 0)},
			want: `
# HELP kisfeed_ingest_last_run_status State of the latest ingestion run: 1 for its state, 0 for the others.
# TYPE kisfeed_ingest_last_run_status gauge
kisfeed_ingest_last_run_status{status="abandoned"} 0
kisfeed_ingest_last_run_status{status="failed"} 1
kisfeed_ingest_last_run_status{status="interrupted"} 0
kisfeed_ingest_last_run_status{status="running"} 0
kisfeed_ingest_last_run_status{status="succeeded"} 0
# HELP kisfeed_ingest_last_success_timestamp_seconds Unix time the newest succeeded ingestion run finished.
# TYPE kisfeed_ingest_last_success_timestamp_seconds gauge
kisfeed_ingest_last_success_timestamp_seconds 1.7416764e+09
`,
		},
		{
			name: "unknown status gets its own series; no success known",
			fig:  RunFigures{Status: "paused"},
			want: `
# HELP kisfeed_ingest_last_run_status State of the latest ingestion run: 1 for its state, 0 for the others.
# TYPE kisfeed_ingest_last_run_status gauge
kisfeed_ingest_last_run_status{status="abandoned"} 0
kisfeed_ingest_last_run_status{status="failed"} 0
kisfeed_ingest_last_run_status{status="interrupted"} 0
kisfeed_ingest_last_run_status{status="paused"} 1
kisfeed_ingest_last_run_status{status="running"} 0
kisfeed_ingest_last_run_status{status="succeeded"} 0
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			m := New(reg)
			m.SetIngestFunc(func() (RunFigures, bool) { return tt.fig, true })
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tt.want),
				"kisfeed_ingest_last_run_status", "kisfeed_ingest_last_success_timestamp_seconds"); err != nil {
				t.Error(err)
			}
		})
	}
}

// The wiring hands (*Stream) to stream.WithObserver: keep the method set in
// step with the client's hooks.
var _ stream.Observer = (*Stream)(nil)

// The wiring hands (*Fanout) to fanout.Config.Observer.
var _ fanout.Observer = (*Fanout)(nil)

func TestFanoutMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := New(reg).Fanout()
	f.Connected("sse", 1)
	f.Connected("sse", 1)
	f.Connected("sse", -1)
	f.Delivered("ws", 5)
	f.Coalesced()
	f.Disconnected("sse", "slow_consumer")
	f.Refused("quota")
	f.QueueHighWater("sse", 1024)
	f.Latency("ws", 2*time.Millisecond)
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"consumers sse", testutil.ToFloat64(f.consumers.WithLabelValues("sse")), 1},
		{"delivered ws", testutil.ToFloat64(f.delivered.WithLabelValues("ws")), 5},
		{"dropped", testutil.ToFloat64(f.dropped), 1},
		{"disconnects slow", testutil.ToFloat64(f.disconnects.WithLabelValues("sse", "slow_consumer")), 1},
		{"refusals quota", testutil.ToFloat64(f.refusals.WithLabelValues("quota")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "kisfeed_stream_publish_to_write_seconds", "kisfeed_stream_queue_high_water"); n != 2 {
		t.Errorf("histograms collected: %d, want 2", n)
	}
}
