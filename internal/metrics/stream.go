package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lagBuckets cover the delay from a KIS real-time record's execution time
// to our receipt: half a millisecond on a loopback emulator, tens of
// milliseconds on a healthy link, seconds when the feed backs up.
var lagBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Stream holds the metrics of the KIS real-time (WebSocket) feed. Get it
// from [Metrics.Stream]; its methods are safe for concurrent use.
//
// A "key" label is an app key's id ("key1", "key2", ... in the order of
// the configuration), never the app key itself: the app key is a
// credential, and a scrape is readable by anyone who can reach /metrics.
type Stream struct {
	sessions      *prometheus.GaugeVec
	registrations *prometheus.GaugeVec
	frames        *prometheus.CounterVec
	records       *prometheus.CounterVec
	parseErrors   *prometheus.CounterVec
	reconnects    *prometheus.CounterVec
	gaps          prometheus.Counter
	lag           *prometheus.HistogramVec
	refused       *prometheus.CounterVec
}

func newStream() *Stream {
	return &Stream{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "stream_sessions",
			Help: "Open KIS WebSocket sessions, by app key id (key1, key2, ...).",
		}, []string{"key"}),
		registrations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "stream_registrations",
			Help: "Real-time registrations (tr_id × code) held on KIS WebSocket sessions, by app key id.",
		}, []string{"key"}),
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_frames_total",
			Help: "WebSocket frames received from KIS, by tr_id (PINGPONG and control frames under their own tr_id).",
		}, []string{"tr_id"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_records_total",
			Help: "Real-time records decoded from KIS frames (a frame may carry several), by tr_id.",
		}, []string{"tr_id"}),
		parseErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_parse_errors_total",
			Help: "KIS WebSocket frames or records that could not be decoded, by reason.",
		}, []string{"reason"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_reconnects_total",
			Help: "KIS WebSocket sessions re-established, by app key id and reason.",
		}, []string{"key", "reason"}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_gaps_total",
			Help: "Gaps in the real-time feed: spans during which records may have been missed (a reconnect, a dropped registration).",
		}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "stream_lag_seconds",
			Help:    "Delay from a real-time record's execution time (KIS stamps seconds) to its receipt, by tr_id.",
			Buckets: lagBuckets,
		}, []string{"tr_id"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_subscribe_refused_total",
			Help: "Real-time registrations KIS refused, by app key id, tr_id and KIS message code (msg_cd).",
		}, []string{"key", "tr_id", "msg_cd"}),
	}
}

func (s *Stream) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		s.sessions, s.registrations, s.frames, s.records, s.parseErrors, s.reconnects, s.gaps, s.lag, s.refused,
	}
}

// SessionUp records a WebSocket session of app key id key ("key1"; never
// the app key) opening. Stream is the kis/stream client's Observer
// (matched structurally: this package imports no client).
func (s *Stream) SessionUp(key string) { s.sessions.WithLabelValues(key).Inc() }

// SessionDown records a session of key closing; reason is the client's
// reconnect reason (counted by [Stream.Reconnect] when it reconnects).
func (s *Stream) SessionDown(key, _ string) { s.sessions.WithLabelValues(key).Dec() }

// Registrations sets the number of real-time registrations key holds now.
func (s *Stream) Registrations(key string, n int) {
	s.registrations.WithLabelValues(key).Set(float64(n))
}

// Frame records one data frame of trID carrying records records.
func (s *Stream) Frame(trID string, records int) {
	trID = orNone(trID)
	s.frames.WithLabelValues(trID).Inc()
	if records > 0 {
		s.records.WithLabelValues(trID).Add(float64(records))
	}
}

// ParseError records a frame or record that could not be decoded. reason
// is one of the client's fixed reason words, not the error text, so the
// label set stays bounded.
func (s *Stream) ParseError(reason string) { s.parseErrors.WithLabelValues(reason).Inc() }

// Reconnect records a session of key about to be re-established after
// reason (a fixed word: "dropped", "closed", "watchdog", ...).
func (s *Stream) Reconnect(key, reason string) { s.reconnects.WithLabelValues(key, reason).Inc() }

// Gap records one gap in the feed. The code is not a label: a storm over
// the universe would add thousands of series.
func (s *Stream) Gap(_ string) { s.gaps.Inc() }

// Lag records the delay d from a record's execution time to its receipt.
// KIS stamps executions to the second, so d carries up to a second of
// truncation and the sub-second buckets say "within the same second"; a
// negative d (truncation, clock skew) is recorded as 0.
func (s *Stream) Lag(trID string, d time.Duration) {
	s.lag.WithLabelValues(orNone(trID)).Observe(max(d, 0).Seconds())
}

// SubscribeRefused records a registration KIS refused, by key, tr_id and
// KIS message code (OPSP0008: too many registrations, ...).
func (s *Stream) SubscribeRefused(key, trID, msgCode string) {
	s.refused.WithLabelValues(key, orNone(trID), orNone(msgCode)).Inc()
}

// orNone names an empty label value, as [Metrics.Request] does for tr_id.
func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}
