package loadtest

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in fixed log-linear buckets, as HDR
// histograms do: exact below 64 µs, then 32 buckets per power of two, so
// a percentile read back is within about 3% of the true value and the
// memory is the same (a few kB) whether it holds ten values or a billion.
// 1,000 consumers recording for minutes cannot grow it. Safe for
// concurrent use: every consumer adds to the one histogram of its group
// with atomic adds rather than keeping its own (20 kB × 1,000 consumers).
type histogram struct {
	counts   [histBuckets]atomic.Uint64
	n        atomic.Uint64
	negative atomic.Uint64 // values below 0 (clock skew), recorded as 0
	min, max atomic.Int64  // exact, in ns; min valid when n > 0
}

const (
	histSubBits = 6 // 64 exact µs, then 32 sub-buckets per octave
	histHalf    = 1 << (histSubBits - 1)
	histMaxExp  = 36 // values are capped at 2^41 µs (about 25 days)
	histBuckets = 1<<histSubBits + histMaxExp*histHalf
	histCap     = uint64(1)<<(histMaxExp+histSubBits-1) - 1
)

func newHistogram() *histogram {
	h := &histogram{}
	h.min.Store(int64(^uint64(0) >> 1))
	return h
}

// bucketOf returns the bucket of v µs.
func bucketOf(v uint64) int {
	v = min(v, histCap)
	if v < 1<<histSubBits {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits // >= 1
	sub := v >> e                    // in [32, 63]
	return 1<<histSubBits + (e-1)*histHalf + int(sub-histHalf)
}

// bucketMid returns the middle of bucket i, in µs.
func bucketMid(i int) uint64 {
	if i < 1<<histSubBits {
		return uint64(i)
	}
	i -= 1 << histSubBits
	e := i/histHalf + 1
	lo := uint64(i%histHalf+histHalf) << e
	return lo + (uint64(1)<<e)/2
}

// record adds d.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		h.negative.Add(1)
		d = 0
	}
	h.counts[bucketOf(uint64(d/time.Microsecond))].Add(1)
	h.n.Add(1)
	for v := h.max.Load(); int64(d) > v && !h.max.CompareAndSwap(v, int64(d)); v = h.max.Load() {
	}
	for v := h.min.Load(); int64(d) < v && !h.min.CompareAndSwap(v, int64(d)); v = h.min.Load() {
	}
}

// quantile returns the q-quantile (nearest rank), clamped to the exact
// minimum and maximum so that identical values read back exactly.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999)
	rank = max(1, min(rank, n))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			d := time.Duration(bucketMid(i)) * time.Microsecond
			return max(time.Duration(h.min.Load()), min(d, time.Duration(h.max.Load())))
		}
	}
	return time.Duration(h.max.Load())
}

// LatencySummary is a latency distribution as a run reports it.
type LatencySummary struct {
	// Count is how many events were measured; Negative how many of them
	// arrived before their timestamp (clocks out of step), counted as 0.
	Count, Negative uint64
	P50, P90, P99   time.Duration
	Max             time.Duration
}

func (h *histogram) summary() LatencySummary {
	s := LatencySummary{Count: h.n.Load(), Negative: h.negative.Load()}
	if s.Count == 0 {
		return s
	}
	s.P50, s.P90, s.P99 = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99)
	s.Max = time.Duration(h.max.Load())
	return s
}
