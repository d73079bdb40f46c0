package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// WriteText prints the figures for people.
func (r Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "target      %s\n", r.Target)
	fmt.Fprintf(&b, "requested   %.0f req/s for %s (%d scheduled)\n", r.Rate, r.Duration, r.Scheduled)
	fmt.Fprintf(&b, "achieved    %.1f req/s (%d completed in %s)\n", r.Achieved, r.Completed, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "latency     p50 %s  p95 %s  p99 %s  max %s (from scheduled time)\n",
		ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max))
	fmt.Fprintf(&b, "service     p50 %s  p99 %s (from send; %d workers)\n", ms(r.ServiceP50), ms(r.ServiceP99), r.Workers)
	fmt.Fprintf(&b, "statuses   ")
	for _, st := range slices.Sorted(maps.Keys(r.Statuses)) {
		name := fmt.Sprint(st)
		if st == 0 {
			name = "no-answer"
		}
		fmt.Fprintf(&b, " %s:%d", name, r.Statuses[st])
	}
	fmt.Fprintf(&b, "\nerrors      %d\n", r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(&b, "first error %s\n", r.FirstError)
	}
	if len(r.XCache) > 0 { // none when nothing answered
		fmt.Fprintf(&b, "x-cache    ")
		for _, k := range slices.Sorted(maps.Keys(r.XCache)) {
			fmt.Fprintf(&b, " %s:%d", k, r.XCache[k])
		}
		b.WriteString("\n")
	}
	if r.HitRatio >= 0 {
		fmt.Fprintf(&b, "cache hit   %.1f%% (from /metrics: %.0f hits, %.0f misses, %.0f stale)\n",
			100*r.HitRatio, r.CacheDelta.Hits, r.CacheDelta.Misses, r.CacheDelta.Stale)
	} else {
		fmt.Fprintf(&b, "cache hit   unknown (target /metrics unreadable or no cache lookups)\n")
	}
	fmt.Fprintf(&b, "target rss  %s before, %s after (heap in use %s, %s; from /metrics)\n",
		mb(r.MemBefore.RSS), mb(r.MemAfter.RSS), mb(r.MemBefore.HeapInuse), mb(r.MemAfter.HeapInuse))
	_, err := io.WriteString(w, b.String())
	return err
}

// mb formats a byte count in MB (10^6) with 1 decimal, or "unknown" for 0
// (a figure the target did not expose).
func mb(n float64) string {
	if n <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f MB", n/1e6)
}

// ms formats a duration in milliseconds with 3 decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// MarshalJSON writes durations as milliseconds (float), which tools read
// more easily than nanoseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return json.Marshal(struct {
		Target     string         `json:"target"`
		Rate       float64        `json:"rate"`
		DurationS  float64        `json:"duration_s"`
		Scheduled  int            `json:"scheduled"`
		Completed  int            `json:"completed"`
		ElapsedS   float64        `json:"elapsed_s"`
		Achieved   float64        `json:"achieved_rate"`
		P50ms      float64        `json:"p50_ms"`
		P95ms      float64        `json:"p95_ms"`
		P99ms      float64        `json:"p99_ms"`
		MaxMs      float64        `json:"max_ms"`
		SvcP50ms   float64        `json:"service_p50_ms"`
		SvcP99ms   float64        `json:"service_p99_ms"`
		Workers    int            `json:"workers"`
		Statuses   map[int]int    `json:"statuses"`
		Errors     int            `json:"errors"`
		XCache     map[string]int `json:"x_cache"`
		HitRatio   float64        `json:"cache_hit_ratio"`
		CacheDelta CacheCounters  `json:"cache_delta"`
		FirstError string         `json:"first_error,omitempty"`
		MemBefore  Memory         `json:"mem_before"`
		MemAfter   Memory         `json:"mem_after"`
	}{
		Target: r.Target, Rate: r.Rate, DurationS: r.Duration.Seconds(), Scheduled: r.Scheduled,
		Completed: r.Completed, ElapsedS: r.Elapsed.Seconds(), Achieved: r.Achieved,
		P50ms: msf(r.P50), P95ms: msf(r.P95), P99ms: msf(r.P99), MaxMs: msf(r.Max),
		SvcP50ms: msf(r.ServiceP50), SvcP99ms: msf(r.ServiceP99), Workers: r.Workers,
		Statuses: r.Statuses, Errors: r.Errors, XCache: r.XCache, HitRatio: r.HitRatio,
		CacheDelta: r.CacheDelta, FirstError: r.FirstError, MemBefore: r.MemBefore, MemAfter: r.MemAfter,
	})
}
