package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

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

// ScrapeCache reads the cache counters from base's /metrics, summed over
// kinds.
func ScrapeCache(ctx context.Context, c *http.Client, base string) (CacheCounters, error) {
	s, err := Scrape(ctx, c, base)
	return s.Cache, err
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
// in use.
func ParseMetrics(r io.Reader) (Snapshot, error) {
	var s Snapshot
	c := &s.Cache
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *float64
		switch {
		case strings.HasPrefix(line, metrics.CacheHitsName):
			dst = &c.Hits
		case strings.HasPrefix(line, metrics.CacheMissesName):
			dst = &c.Misses
		case strings.HasPrefix(line, metrics.CacheStaleName):
			dst = &c.Stale
		case strings.HasPrefix(line, rssName+" "):
			dst = &s.Memory.RSS
		case strings.HasPrefix(line, heapInuseName+" "):
			dst = &s.Memory.HeapInuse
		default:
			continue
		}
		// name{labels} value [timestamp]
		rest := line
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			rest = line[i+1:]
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			rest = line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return s, fmt.Errorf("metrics line %q: %w", line, err)
		}
		*dst += v
	}
	return s, sc.Err()
}
