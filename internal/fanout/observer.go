package fanout

import "time"

// Observer receives the fan-out's metrics events; the wiring connects it
// to Prometheus (suggested names in the comments, all with the
// kisfeed_stream_ prefix the load generator scrapes for drops and
// disconnects). Methods are called on hot paths (Coalesced under the
// hub's lock, Delivered and Latency per written batch) and must be cheap
// and non-blocking. Transport is "sse" or "ws".
type Observer interface {
	// Connected adds delta (+1 or −1) to the consumers connected on
	// transport (gauge kisfeed_stream_consumers{transport}).
	Connected(transport string, delta int)
	// Delivered counts n events written to a consumer
	// (counter kisfeed_stream_delivered_total{transport}).
	Delivered(transport string, n int)
	// Coalesced counts a book replaced in a consumer's queue by a newer
	// one of the same code before it was written: the fan-out's only drop
	// (counter kisfeed_stream_coalesced_drops_total).
	Coalesced()
	// Disconnected counts a consumer's stream ended by reason:
	// slow_consumer, shutdown, abuse, closed (the client left)
	// (counter kisfeed_stream_disconnects_total{transport,reason}).
	Disconnected(transport, reason string)
	// Refused counts an error event sent for reason: subscription_limit,
	// quota, rate_limited, too_many_codes, unknown_code, invalid,
	// unavailable
	// (counter kisfeed_stream_refusals_total{reason}).
	Refused(reason string)
	// QueueHighWater reports a leaving consumer's deepest queue, in events
	// (histogram kisfeed_stream_queue_high_water); [Stats].HighWater has
	// the hub-wide maximum for a gauge.
	QueueHighWater(transport string, depth int)
	// Latency observes one event's time from Publish to the end of its
	// write (histogram kisfeed_stream_publish_to_write_seconds{transport}).
	Latency(transport string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) Connected(string, int)         {}
func (nopObserver) Delivered(string, int)         {}
func (nopObserver) Coalesced()                    {}
func (nopObserver) Disconnected(string, string)   {}
func (nopObserver) Refused(string)                {}
func (nopObserver) QueueHighWater(string, int)    {}
func (nopObserver) Latency(string, time.Duration) {}
