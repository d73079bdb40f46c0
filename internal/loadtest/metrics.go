package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kisfeed/kisfeed/internal/metrics"
)

// CacheCounters are the cache counters of a /metrics scrape, summed over
// kinds.
type CacheCounters struct {
	Hits   float64 `json:"hits"`
	Misses float64 `json:"misses"`
	Stale  float64 `json:"stale"`
}

// Memory is a process's memory from its /metrics, in bytes; 0 when the
// figure was not exposed (the process collector reports RSS on Linux
// only).
type Memory struct {
	// RSS is process_resident_memory_bytes.
	RSS float64 `json:"rss_bytes"`
	// HeapInuse is go_memstats_heap_inuse_bytes.
	HeapInuse float64 `json:"heap_inuse_bytes"`
}

// Snapshot is what one scrape of the target's /metrics says.
type Snapshot struct {
	Cache  CacheCounters
	Memory Memory
}

// Metric names read from the target besides the cache counters; both
// come from the standard process and Go collectors serve registers.
const (
	rssName       = "process_resident_memory_bytes"
	heapInuseName = "go_memstats_heap_inuse_bytes"
)

func (c CacheCounters) sub(o CacheCounters) CacheCounters {
	return CacheCounters{Hits: c.Hits - o.Hits, Misses: c.Misses - o.Misses, Stale: c.Stale - o.Stale}
}

// Ratio returns hits / all lookups, or -1 when there were none.
func (c CacheCounters) Ratio() float64 {
	total := c.Hits + c.Misses + c.Stale
	if total <= 0 {
		return -1
	}
	return c.Hits / total
}

// Scrape reads base's /metrics: the cache counters and the memory figures.
func Scrape(ctx context.Context, c *http.Client, base string) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return Snapshot{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Snapshot{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Snapshot{}, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return ParseMetrics(resp.Body)
}

// ParseCache sums the kisfeed_cache_* counters of a Prometheus text
// exposition.
func ParseCache(r io.Reader) (CacheCounters, error) {
	s, err := ParseMetrics(r)
	return s.Cache, err
}

// ParseMetrics reads a Prometheus text exposition: the kisfeed_cache_*
// counters summed over kinds, and the process's resident memory and heap
// in use. The exposition is parsed by expfmt, the format's own parser, so
// only the families of exactly these names count (not longer names
// sharing a prefix).
func ParseMetrics(r io.Reader) (Snapshot, error) {
	var s Snapshot
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return s, fmt.Errorf("metrics: %w", err)
	}
	for name, dst := range map[string]*float64{
		metrics.CacheHitsName:   &s.Cache.Hits,
		metrics.CacheMissesName: &s.Cache.Misses,
		metrics.CacheStaleName:  &s.Cache.Stale,
		rssName:                 &s.Memory.RSS,
		heapInuseName:           &s.Memory.HeapInuse,
	} {
		// A missing family counts 0; a counter's, a gauge's and an
		// untyped sample's values add up alike.
		for _, m := range families[name].GetMetric() {
			*dst += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return s, nil
}
