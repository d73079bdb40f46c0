package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// deliveryBuckets cover a real-time event's time inside serve, from its
// publication to the end of its write to a consumer: tens of
// microseconds when consumers keep up, up to the slow-consumer bound.
var deliveryBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}

// Fanout holds the metrics of the real-time fan-out to consumers (GET
// /v1/stream and /v1/ws). Its methods implement fanout.Observer; get it
// from [Metrics.Fanout]. transport is "sse" or "ws"; reasons are the
// fan-out's fixed words, so every label set stays bounded.
type Fanout struct {
	consumers   *prometheus.GaugeVec
	delivered   *prometheus.CounterVec
	dropped     prometheus.Counter
	disconnects *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	highWater   *prometheus.HistogramVec
	latency     *prometheus.HistogramVec
}

func newFanout() *Fanout {
	return &Fanout{
		consumers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "stream_consumers",
			Help: "Consumers connected to the real-time streams, by transport (sse, ws).",
		}, []string{"transport"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_delivered_total",
			Help: "Real-time events written to consumers, by transport.",
		}, []string{"transport"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_dropped_events_total",
			Help: "Book events a consumer never saw because a newer book of the same code replaced them in its queue (the fan-out's only drop; trades are never dropped).",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_consumer_disconnects_total",
			Help: "Consumer streams ended, by transport and reason (slow_consumer, shutdown, abuse, closed).",
		}, []string{"transport", "reason"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "stream_refusals_total",
			Help: "Error events sent to consumers, by reason (subscription_limit, quota, rate_limited, too_many_codes, unknown_code, invalid, unavailable).",
		}, []string{"reason"}),
		highWater: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "stream_queue_high_water",
			Help:    "Deepest queue (events) of each consumer that left, by transport.",
			Buckets: []float64{1, 4, 16, 64, 256, 1024},
		}, []string{"transport"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "stream_publish_to_write_seconds",
			Help:    "Time from an event's publication in serve to the end of its write to a consumer, by transport.",
			Buckets: deliveryBuckets,
		}, []string{"transport"}),
	}
}

func (f *Fanout) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.consumers, f.delivered, f.dropped, f.disconnects, f.refusals, f.highWater, f.latency}
}

// Connected adds delta to the consumers connected on transport.
func (f *Fanout) Connected(transport string, delta int) {
	f.consumers.WithLabelValues(transport).Add(float64(delta))
}

// Delivered counts n events written on transport.
func (f *Fanout) Delivered(transport string, n int) {
	f.delivered.WithLabelValues(transport).Add(float64(n))
}

// Coalesced counts a book replaced in a queue before it was written.
func (f *Fanout) Coalesced() { f.dropped.Inc() }

// Disconnected counts a consumer's stream ended for reason.
func (f *Fanout) Disconnected(transport, reason string) {
	f.disconnects.WithLabelValues(transport, reason).Inc()
}

// Refused counts an error event sent for reason.
func (f *Fanout) Refused(reason string) { f.refusals.WithLabelValues(reason).Inc() }

// QueueHighWater observes a leaving consumer's deepest queue.
func (f *Fanout) QueueHighWater(transport string, depth int) {
	f.highWater.WithLabelValues(transport).Observe(float64(depth))
}

// Latency observes one event's publish-to-write time.
func (f *Fanout) Latency(transport string, d time.Duration) {
	f.latency.WithLabelValues(transport).Observe(d.Seconds())
}
