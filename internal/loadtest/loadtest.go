// Package loadtest is an open-loop HTTP load generator for the kisfeed
// API: requests leave at a constant arrival rate whatever the server does,
// and each latency is measured from the moment the request was scheduled,
// not sent, so a stalled server shows up as latency instead of silently
// lowering the load (coordinated omission).
//
// The generator is built to cost little next to the server it measures
// (both often share one small machine): one dispatcher goroutine wakes
// when the next request is due and hands every request due by then, with
// its scheduled time, to a pool of long-lived workers; the pool grows only
// when every worker is busy, up to Config.Concurrency, so a fast server is
// driven by a handful of goroutines and keep-alive connections. Requests
// are built once per code and shared read-only (net/http never writes to
// a request it is given: Client.Do works on a copy when it adds a timeout,
// and the Transport only reads); bodies are drained into a per-worker
// buffer. When the dispatcher or the pool falls behind, requests leave
// late, and the lateness is part of their latency: the figures stay
// honest about coordinated omission. The service time (from the actual
// send) is reported alongside, so a late generator can be told from a
// slow server.
package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config describes one run.
type Config struct {
	// Target is the API's base URL, e.g. http://127.0.0.1:8080.
	Target string
	// Rate is the arrival rate in requests per second.
	Rate float64
	// Duration is how long requests are scheduled for.
	Duration time.Duration
	// Codes are the stock codes to ask for, most popular first: code i is
	// drawn with Zipf probability ∝ 1/(i+1)^Zipf.
	Codes []string
	// Zipf is the Zipf exponent s (> 1; default 1.1).
	Zipf float64
	// Concurrency caps requests in flight (default 2,000). When reached,
	// later requests wait to start, and the wait counts in their latency.
	Concurrency int
	// Seed makes the code sequence reproducible (default 1).
	Seed uint64
	// Client sends the requests (a pooled client sized to Concurrency if
	// nil).
	Client *http.Client
}

// Result is what a run measured. Its JSON is [Result.MarshalJSON]'s
// (durations in milliseconds or seconds), so the fields carry no tags.
type Result struct {
	Target    string
	Rate      float64       // requested, per second
	Duration  time.Duration // requested
	Scheduled int
	Completed int
	// Elapsed runs from the first scheduled request to the last answer.
	Elapsed time.Duration
	// Achieved is completed requests per second of Elapsed.
	Achieved float64
	// Latency percentiles, from scheduled time to the end of the body.
	P50 time.Duration
	P95 time.Duration
	P99 time.Duration
	Max time.Duration
	// Service-time percentiles, from the moment the request was actually
	// sent to the end of the body: the server's share. A gap between these
	// and the latencies above is time requests waited to leave (a late
	// dispatcher or a saturated pool on the generator's side).
	ServiceP50 time.Duration
	ServiceP99 time.Duration
	// Workers is how many worker goroutines the pool grew to.
	Workers int
	// Statuses counts answers by HTTP status (0 = no answer: transport
	// error or timeout).
	Statuses map[int]int
	// Errors counts answers that were not 2xx, plus transport errors.
	Errors int
	// XCache counts the X-Cache header values seen.
	XCache map[string]int
	// HitRatio is the cache hit ratio over the run, from the delta of the
	// target's kisfeed_cache_* counters: hits / (hits + misses + stale).
	// -1 when /metrics was unreadable or saw no lookups.
	HitRatio float64
	// CacheDelta holds the counter deltas behind HitRatio.
	CacheDelta CacheCounters
	// MemBefore and MemAfter are the target's memory as its /metrics
	// showed it just before the first request and just after the last
	// answer: a flood's cost in resident memory, which outlives it when
	// the heap grows. Zero figures when /metrics was unreadable or
	// lacked them.
	MemBefore Memory
	MemAfter  Memory
	// FirstError is one transport error, for the report.
	FirstError string
}

// xcache values recorded per request, to keep the per-request slot small.
const (
	xNone uint8 = iota
	xHit
	xMiss
	xStale
	xOther
)

var xNames = [...]string{xNone: "none", xHit: "HIT", xMiss: "MISS", xStale: "STALE", xOther: "other"}

// Run performs the run and returns its figures. It stops early, with the
// figures so far, when ctx is done.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if len(cfg.Codes) == 0 {
		return Result{}, &FieldError{Field: "codes", Msg: "empty: want at least one stock code"}
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConns: cfg.Concurrency, MaxIdleConnsPerHost: cfg.Concurrency,
				IdleConnTimeout: 90 * time.Second, DisableCompression: true,
			},
		}
		defer client.CloseIdleConnections()
	}
	base := strings.TrimRight(cfg.Target, "/")
	before, beforeErr := Scrape(ctx, client, base)

	n := int(cfg.Rate * cfg.Duration.Seconds())
	reqs := make([]*http.Request, len(cfg.Codes))
	for i, c := range cfg.Codes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stocks/"+c+"/quote", nil)
		if err != nil {
			return Result{}, fmt.Errorf("code %q: %w", c, err)
		}
		req.Header = http.Header{} // non-nil: Client.Do need not copy the request to add one
		reqs[i] = req
	}
	f := &flood{
		client: client, concurrency: cfg.Concurrency,
		lat: make([]time.Duration, n), svc: make([]time.Duration, n),
		status: make([]int16, n), xc: make([]uint8, n),
	}
	scheduled, elapsed := f.run(ctx, cfg, reqs, n)

	// Scraped at once, before the figures are summed: the memory after
	// is the flood's, not what the server returns while we count.
	after, afterErr := Scrape(context.WithoutCancel(ctx), client, base)
	r := Result{Target: base, Rate: cfg.Rate, Duration: cfg.Duration, Scheduled: scheduled, Workers: f.workers,
		Elapsed: elapsed, Statuses: map[int]int{}, XCache: map[string]int{}, HitRatio: -1, FirstError: f.firstErr}
	if beforeErr == nil {
		r.MemBefore = before.Memory
	}
	if afterErr == nil {
		r.MemAfter = after.Memory
	}
	f.sum(&r, scheduled, elapsed)
	if beforeErr == nil && afterErr == nil {
		r.CacheDelta = after.Cache.sub(before.Cache)
		r.HitRatio = r.CacheDelta.Ratio()
	}
	return r, ctx.Err()
}

// flood is one run's open-loop sender: a pool of workers, grown on
// demand up to concurrency, and what each request measured, by index.
type flood struct {
	client      *http.Client
	concurrency int

	lat, svc []time.Duration // from the scheduled time; from the send
	status   []int16
	xc       []uint8
	errOnce  sync.Once
	firstErr string

	jobs    chan floodJob
	wg      sync.WaitGroup
	workers int
}

// floodJob is one request to send: its index and scheduled time.
type floodJob struct {
	i   int
	at  time.Time
	req *http.Request
}

// run sends n requests at cfg.Rate, each for a code drawn from reqs on a
// Zipf law, and returns how many were scheduled and the time it took.
func (f *flood) run(ctx context.Context, cfg Config, reqs []*http.Request, n int) (scheduled int, elapsed time.Duration) {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	zipf := rand.NewZipf(rng, cfg.Zipf, 1, uint64(len(reqs)-1))

	// The pool: workers take jobs (request index, scheduled time) until
	// jobs is closed. The channel is unbuffered so a send succeeds only
	// when a worker is idle; otherwise the dispatcher grows the pool.
	f.jobs = make(chan floodJob)
	for range min(cfg.Concurrency, 4) {
		f.spawn()
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	start := time.Now()
	interval := float64(time.Second) / cfg.Rate
loop:
	for scheduled < n {
		at := start.Add(time.Duration(float64(scheduled) * interval))
		if d := time.Until(at); d > 0 {
			// Sleep until the next request is due; every request due by
			// the time the dispatcher wakes (timers are coarse under
			// 1 ms) then leaves at once, each with its own scheduled time.
			timer.Reset(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				break loop
			case <-timer.C:
			}
		}
		if !f.dispatch(ctx, floodJob{i: scheduled, at: at, req: reqs[zipf.Uint64()]}) {
			break loop
		}
		scheduled++
	}
	close(f.jobs)
	f.wg.Wait()
	return scheduled, time.Since(start)
}

// spawn starts one more worker.
func (f *flood) spawn() {
	f.workers++
	f.wg.Go(func() {
		buf := make([]byte, 16<<10)
		for j := range f.jobs {
			sent := time.Now()
			st, x, err := get(f.client, j.req, buf)
			end := time.Now()
			f.lat[j.i], f.svc[j.i] = end.Sub(j.at), end.Sub(sent)
			f.status[j.i], f.xc[j.i] = int16(st), x
			if err != nil {
				f.errOnce.Do(func() { f.firstErr = err.Error() })
			}
		}
	})
}

// dispatch hands j to an idle worker, growing the pool when none is idle
// and it may grow; it returns false when ctx ends first.
func (f *flood) dispatch(ctx context.Context, j floodJob) bool {
	select {
	case f.jobs <- j:
		return true
	default:
	}
	if f.workers < f.concurrency {
		f.spawn()
	}
	select {
	case f.jobs <- j:
		return true
	case <-ctx.Done():
		return false
	}
}

// sum adds to r the statuses, cache answers and latency percentiles of
// the first scheduled requests, sent over elapsed.
func (f *flood) sum(r *Result, scheduled int, elapsed time.Duration) {
	done := make([]time.Duration, 0, scheduled)
	service := make([]time.Duration, 0, scheduled)
	for i := range scheduled {
		st := int(f.status[i])
		r.Statuses[st]++
		if st < 200 || st > 299 {
			r.Errors++
		}
		if st != 0 {
			done = append(done, f.lat[i])
			service = append(service, f.svc[i])
			r.XCache[xNames[f.xc[i]]]++
		}
	}
	r.Completed = len(done)
	if elapsed > 0 {
		r.Achieved = float64(r.Completed) / elapsed.Seconds()
	}
	slices.Sort(done)
	r.P50, r.P95, r.P99 = percentile(done, 0.50), percentile(done, 0.95), percentile(done, 0.99)
	if len(done) > 0 {
		r.Max = done[len(done)-1]
	}
	slices.Sort(service)
	r.ServiceP50, r.ServiceP99 = percentile(service, 0.50), percentile(service, 0.99)
}

// FieldError is a [Config] setting that cannot be used. Field is the
// setting's lowercase name, which the loadtest command's flags share
// (--target, --rate, ...), so it can name the flag; two settings wrong
// together are joined by " × " ("rate × duration").
type FieldError struct {
	Field string
	Msg   string // what was given and what is wanted
}

func (e *FieldError) Error() string { return e.Field + " " + e.Msg }

// Validate fills in the defaults of zero settings and checks every setting
// but Codes, which callers often fetch from the target, so that a bad
// setting is refused before the target is contacted. The error is a
// *[FieldError].
func (cfg *Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if u, err := url.Parse(cfg.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("target", "%q: want an http(s) URL like http://127.0.0.1:8080", cfg.Target)
	}
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) || cfg.Rate > 1e6 {
		return bad("rate", "%v: want 0 < rate <= 1000000 requests per second", cfg.Rate)
	}
	if cfg.Duration <= 0 {
		return bad("duration", "%s: want > 0", cfg.Duration)
	}
	if n := cfg.Rate * cfg.Duration.Seconds(); n < 1 || n > 50e6 {
		return bad("rate × duration", "= %.0f requests: want 1 to 50,000,000", n)
	}
	if cfg.Zipf == 0 {
		cfg.Zipf = 1.1
	}
	if !(cfg.Zipf > 1) || math.IsInf(cfg.Zipf, 0) {
		return bad("zipf", "%v: want an exponent > 1 (e.g. 1.1)", cfg.Zipf)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 2000
	}
	if cfg.Concurrency < 1 {
		return bad("concurrency", "%d: want 1 or more", cfg.Concurrency)
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	return nil
}

// Failure reports whether the run failed, as an error saying how many
// requests did: a request fails when it got no answer (transport error,
// timeout) or a 5xx. A 4xx is the client's concern (an unknown code), not
// the server's, and does not fail the run. nil when none failed.
func (r Result) Failure() error {
	var noAnswer, server int
	for st, n := range r.Statuses {
		switch {
		case st == 0:
			noAnswer += n
		case st >= 500:
			server += n
		}
	}
	if noAnswer+server == 0 {
		return nil
	}
	err := fmt.Errorf("%d of %d requests failed (%d 5xx, %d unanswered)", noAnswer+server, r.Scheduled, server, noAnswer)
	if r.FirstError != "" {
		err = fmt.Errorf("%w: first error: %s", err, r.FirstError)
	}
	return err
}

// get sends one request and drains the body into buf.
func get(c *http.Client, req *http.Request, buf []byte) (status int, x uint8, err error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, xNone, err
	}
	defer resp.Body.Close()
	for {
		_, rerr := resp.Body.Read(buf)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, xNone, rerr
		}
	}
	var h string
	if v := resp.Header["X-Cache"]; len(v) > 0 {
		h = v[0]
	}
	switch h {
	case "":
		x = xNone
	case "HIT":
		x = xHit
	case "MISS":
		x = xMiss
	case "STALE":
		x = xStale
	default:
		x = xOther
	}
	return resp.StatusCode, x, nil
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// FetchCodes returns the first n common-share codes of the target's
// universe (GET /v1/stocks?group=ST, sorted by code).
func FetchCodes(ctx context.Context, c *http.Client, base string, n int) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/stocks?group=ST", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/stocks: status %d", resp.StatusCode)
	}
	var body struct {
		Stocks []struct {
			Code string `json:"code"`
		} `json:"stocks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET /v1/stocks: decode: %w", err)
	}
	codes := make([]string, 0, min(n, len(body.Stocks)))
	for _, s := range body.Stocks {
		if len(codes) == n {
			break
		}
		codes = append(codes, s.Code)
	}
	if len(codes) == 0 {
		return nil, errors.New("GET /v1/stocks: no stocks listed")
	}
	return codes, nil
}
