package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTarget counts quote requests per code and serves cache counters
// that grow with them: every 4th request a miss.
type fakeTarget struct {
	mu     sync.Mutex // guards counts, n
	counts map[string]int
	n      int
}

func (f *fakeTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/metrics" {
		misses := (f.n + 3) / 4
		fmt.Fprintf(w, "# TYPE kisfeed_cache_hits_total counter\nkisfeed_cache_hits_total{kind=\"price\"} %d\n", f.n-misses)
		fmt.Fprintf(w, "kisfeed_cache_misses_total{kind=\"price\"} %d\nkisfeed_cache_stale_serves_total 0\n", misses)
		// Memory grows by 1 kB of RSS and 500 B of heap per request.
		fmt.Fprintf(w, "process_resident_memory_bytes %d\ngo_memstats_heap_inuse_bytes %d\n", 20_000_000+1000*f.n, 5_000_000+500*f.n)
		return
	}
	code := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/stocks/"), "/quote")
	f.counts[code]++
	f.n++
	if code == "000003" {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("X-Cache", "HIT")
	_, _ = w.Write([]byte(`{"code":"` + code + `"}`))
}

func TestRun(t *testing.T) {
	t.Parallel()
	ft := &fakeTarget{counts: map[string]int{}}
	srv := httptest.NewServer(ft)
	defer srv.Close()
	codes := []string{"000000", "000001", "000002", "000003", "000004", "000005", "000006", "000007"}
	r, err := Run(t.Context(), Config{Target: srv.URL, Rate: 4000, Duration: 100 * time.Millisecond, Codes: codes, Zipf: 1.5, Concurrency: 64})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scheduled != 400 || r.Completed != 400 {
		t.Errorf("scheduled, completed: got %d, %d; want 400, 400", r.Scheduled, r.Completed)
	}
	if r.Statuses[200]+r.Statuses[503] != 400 || r.Errors != r.Statuses[503] || r.Errors == 0 {
		t.Errorf("statuses %v errors %d: want 200s and 503s adding to 400, errors = 503s > 0", r.Statuses, r.Errors)
	}
	if r.XCache["HIT"] != r.Statuses[200] {
		t.Errorf("x-cache HIT: got %d, want %d", r.XCache["HIT"], r.Statuses[200])
	}
	if ft.counts["000000"] <= ft.counts["000001"] || ft.counts["000001"] <= ft.counts["000007"] {
		t.Errorf("code counts %v: want a Zipf mix, most popular first", ft.counts)
	}
	if r.CacheDelta.Hits+r.CacheDelta.Misses != 400 || r.HitRatio < 0.74 || r.HitRatio > 0.76 {
		t.Errorf("cache delta %+v ratio %v: want 400 lookups, ratio 0.75", r.CacheDelta, r.HitRatio)
	}
	if !(r.P50 > 0 && r.P50 <= r.P95 && r.P95 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("percentiles %s %s %s %s: want 0 < p50 <= p95 <= p99 <= max", r.P50, r.P95, r.P99, r.Max)
	}
	if !(r.ServiceP50 > 0 && r.ServiceP50 <= r.P50 && r.ServiceP99 <= r.P99) {
		t.Errorf("service p50 %s p99 %s: want 0 < each <= latency p50 %s p99 %s", r.ServiceP50, r.ServiceP99, r.P50, r.P99)
	}
	if r.Workers < 1 || r.Workers > 64 {
		t.Errorf("workers: got %d, want 1 to the concurrency 64", r.Workers)
	}
	if want := (Memory{RSS: 20_000_000, HeapInuse: 5_000_000}); r.MemBefore != want {
		t.Errorf("memory before: got %+v, want %+v", r.MemBefore, want)
	}
	if want := (Memory{RSS: 20_400_000, HeapInuse: 5_200_000}); r.MemAfter != want {
		t.Errorf("memory after: got %+v, want %+v", r.MemAfter, want)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "cache hit   75.0%") {
		t.Errorf("text report %q (%v): want the hit ratio", text.String(), err)
	}
	if want := "target rss  20.0 MB before, 20.4 MB after (heap in use 5.0 MB, 5.2 MB"; !strings.Contains(text.String(), want) {
		t.Errorf("text report %q: want %q", text.String(), want)
	}
	js, err := json.Marshal(r)
	if err != nil || !bytes.Contains(js, []byte(`"p99_ms"`)) ||
		!bytes.Contains(js, []byte(`"mem_after":{"rss_bytes":20400000,"heap_inuse_bytes":5200000}`)) {
		t.Errorf("json report %s (%v): want p99_ms and mem_after", js, err)
	}
}

func TestRunNoMetrics(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	r, err := Run(t.Context(), Config{Target: srv.URL, Rate: 1000, Duration: 20 * time.Millisecond, Codes: []string{"005930"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.HitRatio != -1 || r.Completed != 20 || r.Workers > 2000 {
		t.Errorf("got ratio %v, %d completed; want -1 (unknown), 20", r.HitRatio, r.Completed)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "target rss  unknown before, unknown after") {
		t.Errorf("text report %q (%v): want the memory unknown", text.String(), err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Config{Target: "http://127.0.0.1:1", Rate: 10, Duration: time.Second, Codes: []string{"005930"}}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no target", func(c *Config) { c.Target = "" }, "want an http(s) URL"},
		{"ftp target", func(c *Config) { c.Target = "ftp://x" }, "want an http(s) URL"},
		{"zero rate", func(c *Config) { c.Rate = 0 }, "want 0 < rate"},
		{"zero duration", func(c *Config) { c.Duration = 0 }, "duration 0s: want > 0"},
		{"too few requests", func(c *Config) { c.Rate, c.Duration = 0.5, time.Second }, "want 1 to 50,000,000"},
		{"no codes", func(c *Config) { c.Codes = nil }, "at least one stock code"},
		{"zipf 1", func(c *Config) { c.Zipf = 1 }, "want an exponent > 1"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "want 1 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tt.edit(&c)
			_, err := Run(t.Context(), c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseCache(t *testing.T) {
	t.Parallel()
	in := `# HELP kisfeed_cache_hits_total x
# TYPE kisfeed_cache_hits_total counter
kisfeed_cache_hits_total{kind="price"} 10
kisfeed_cache_hits_total{kind="orderbook"} 5
kisfeed_cache_misses_total{kind="price"} 3 1712345678000
kisfeed_cache_stale_serves_total 2
kisfeed_cache_hitsx 100
`
	c, err := ParseCache(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if c != (CacheCounters{Hits: 15, Misses: 3, Stale: 2}) {
		t.Errorf("got %+v, want hits 15, misses 3, stale 2", c)
	}
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Snapshot
	}{
		{"memory and cache", `# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 4.54e+08
go_memstats_heap_inuse_bytes 3.67e+08
kisfeed_cache_hits_total{kind="price"} 7
`, Snapshot{Cache: CacheCounters{Hits: 7}, Memory: Memory{RSS: 454e6, HeapInuse: 367e6}}},
		// Longer names sharing the prefix are other metrics.
		{"lookalikes", `process_resident_memory_bytes_max 1
go_memstats_heap_inuse_bytes_total 2
`, Snapshot{}},
		{"absent (not Linux)", "go_goroutines 8\n", Snapshot{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMetrics(strings.NewReader(tt.in))
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{Target: "http://127.0.0.1:1", Rate: 10, Duration: time.Second}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" for a valid config
		want  string
	}{
		{"valid without codes", func(*Config) {}, "", ""},
		{"https", func(c *Config) { c.Target = "https://example.com/api" }, "", ""},
		{"no scheme", func(c *Config) { c.Target = "127.0.0.1:8080" }, "target", "want an http(s) URL"},
		{"no host", func(c *Config) { c.Target = "http://" }, "target", "want an http(s) URL"},
		{"negative rate", func(c *Config) { c.Rate = -5 }, "rate", "want 0 < rate"},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, "duration", "want > 0"},
		{"too few requests", func(c *Config) { c.Rate, c.Duration = 0.5, time.Second }, "rate × duration", "rate × duration = 0 requests"},
		{"zipf below 1", func(c *Config) { c.Zipf = 0.5 }, "zipf", "want an exponent > 1"},
		{"zero concurrency takes the default", func(c *Config) { c.Concurrency = 0 }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tt.edit(&c)
			err := c.Validate()
			var fe *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want a *FieldError for %s containing %q", err, tt.field, tt.want)
			}
		})
	}
}

func TestResultFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses map[int]int
		want     string // "" for no failure
	}{
		{"all answered", map[int]int{200: 10}, ""},
		{"client errors do not fail the run", map[int]int{200: 8, 404: 2}, ""},
		{"a 5xx fails it", map[int]int{200: 9, 503: 1}, "1 of 10 requests failed (1 5xx, 0 unanswered)"},
		{"no answer fails it", map[int]int{0: 10}, "10 of 10 requests failed (0 5xx, 10 unanswered): first error: dial tcp: refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Result{Statuses: tt.statuses, FirstError: "dial tcp: refused"}
			for _, n := range tt.statuses {
				r.Scheduled += n
			}
			err := r.Failure()
			if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && !strings.HasPrefix(got, tt.want)) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWriteTextNoAnswers(t *testing.T) {
	t.Parallel()
	r := Result{Target: "http://127.0.0.1:1", Scheduled: 5, Statuses: map[int]int{0: 5}, XCache: map[string]int{}, HitRatio: -1, Errors: 5}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(b.String()) {
		if strings.TrimSpace(line) == "x-cache" {
			t.Errorf("report has an empty x-cache line:\n%s", b.String())
		}
	}
	if !strings.Contains(b.String(), "cache hit   unknown") {
		t.Errorf("report %q: want the cache hit ratio unknown", b.String())
	}
}
