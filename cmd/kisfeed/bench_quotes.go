package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis"
)

// benchQuotesResult is what "kisfeed bench quotes" prints.
type benchQuotesResult struct {
	BaseURL     string  `json:"base_url"`
	Calls       int     `json:"calls"`
	Workers     int     `json:"workers"`
	ClientRate  float64 `json:"client_rate"`
	ElapsedSec  float64 `json:"elapsed_seconds"`
	Rate        float64 `json:"achieved_rate"`
	Errors      int64   `json:"errors"`
	Retries     int64   `json:"retries"`
	RateLimited int64   `json:"rate_limited_seen"`
	FinalRate   float64 `json:"client_rate_at_end"`
	// From GET <base>/_emulator/stats; -1 when the upstream is not an
	// emulator.
	Rejections int64  `json:"rate_limit_rejections"`
	MaxWindow  int    `json:"max_requests_per_second_window"`
	FirstError string `json:"first_error,omitempty"`
}

// emulatorStats is the part of /_emulator/stats the bench reads.
type emulatorStats struct {
	RateLimitRejections        int64 `json:"rate_limit_rejections"`
	MaxRequestsPerSecondWindow int   `json:"max_requests_per_second_window"`
}

func newBenchQuotesCmd(a *app) *cobra.Command {
	var (
		calls, workers int
		asJSON, reset  bool
	)
	c := &cobra.Command{
		Use:   "quotes",
		Short: "Time N single-price calls through the KIS client and print the rate figures",
		Long: `Send --calls current-price calls (inquire-price) from --workers goroutines
straight through the KIS client (no cache, no breaker) to the configured
upstream — normally an emulator at KIS_BASE_URL started with
"kisfeed emulator --rate 18" — and print the calls, the elapsed time, the
achieved rate, errors and retries, and, from GET <base>/_emulator/stats, the
emulator's rate_limit_rejections and max_requests_per_second_window.

The bar for KIS's 18/s limit: 1,000 calls, 0 rejections, no 1-second window
above 18, at least 95% of the limit (elapsed <= 58.5 s).`,
		Example: "  KIS_BASE_URL=http://127.0.0.1:9443 KIS_APP_KEY=k KIS_APP_SECRET=s kisfeed bench quotes --calls 1000 --workers 16",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if calls < 1 || calls > 1_000_000 {
				return usageError("--calls %d: want 1 to 1000000", calls)
			}
			if workers < 1 || workers > 1024 {
				return usageError("--workers %d: want 1 to 1024", workers)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			up, err := a.upstream(cmd.Context(), cfg, a.logger(cfg))
			if err != nil {
				return withExit(1, err)
			}
			defer func() {
				if up.Close != nil {
					_ = up.Close()
				}
			}()
			if len(up.Clients) == 0 {
				return usageError("bench quotes needs a KIS client: set KIS_BASE_URL and KIS_APP_KEY (mode %s has none)", cfg.Mode())
			}
			res, err := benchQuotes(cmd.Context(), up.Clients[0], benchCodes(cfg), calls, workers, reset)
			if err != nil {
				return withExit(1, err)
			}
			if asJSON {
				return writeJSON(a.stdout, res)
			}
			res.print(a.stdout)
			return nil
		},
	}
	c.Flags().IntVar(&calls, "calls", 1000, "number of price calls")
	c.Flags().IntVar(&workers, "workers", 16, "concurrent callers")
	c.Flags().BoolVar(&reset, "reset-stats", true, "reset the emulator's counters first, so its figures cover this run")
	c.Flags().BoolVar(&asJSON, "json", false, "print the figures as JSON")
	return c
}

// benchQuotes runs the calls. The token is obtained first so issuance is
// not timed.
func benchQuotes(ctx context.Context, c *kis.Client, codes []string, calls, workers int, reset bool) (benchQuotesResult, error) {
	if len(codes) == 0 {
		codes = []string{"005930", "000660", "035420", "005380", "035720"}
	}
	if _, err := c.Token(ctx); err != nil {
		return benchQuotesResult{}, fmt.Errorf("get token: %w", err)
	}
	if reset {
		emulatorCall(ctx, http.MethodPost, c.BaseURL()+"/_emulator/stats/reset", nil)
	}
	before := c.Stats()
	res := benchQuotesResult{BaseURL: c.BaseURL(), Calls: calls, Workers: workers, ClientRate: c.RateLimit()}
	var (
		next     atomic.Int64
		errs     atomic.Int64
		firstErr sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(calls) || ctx.Err() != nil {
					return
				}
				if _, _, err := c.Price(ctx, codes[int(i)%len(codes)]); err != nil && !isNotFound(err) {
					errs.Add(1)
					firstErr.Do(func() { res.FirstError = err.Error() })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := c.Stats()
	res.ElapsedSec = elapsed.Seconds()
	res.Rate = float64(calls) / elapsed.Seconds()
	res.Errors = errs.Load()
	res.Retries = after.Retries - before.Retries
	res.RateLimited = after.RateLimited - before.RateLimited
	res.FinalRate = c.RateLimit()
	res.Rejections, res.MaxWindow = -1, -1
	var st emulatorStats
	if emulatorCall(ctx, http.MethodGet, c.BaseURL()+"/_emulator/stats", &st) {
		res.Rejections, res.MaxWindow = st.RateLimitRejections, st.MaxRequestsPerSecondWindow
	}
	return res, ctx.Err()
}

func isNotFound(err error) bool { return err != nil && kisfeed.IsBusinessError(err) }

// emulatorCall calls the emulator's admin API; false when the upstream is
// not an emulator (or the call failed).
func emulatorCall(ctx context.Context, method, url string, v any) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	if v == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return true
	}
	return json.NewDecoder(resp.Body).Decode(v) == nil
}

func (r benchQuotesResult) print(w io.Writer) {
	fmt.Fprintf(w, "upstream           %s\n", r.BaseURL)
	fmt.Fprintf(w, "calls              %d from %d workers\n", r.Calls, r.Workers)
	fmt.Fprintf(w, "elapsed            %.2f s\n", r.ElapsedSec)
	fmt.Fprintf(w, "achieved rate      %.2f calls/s (client paces at %.2f/s, %.2f/s at the end)\n", r.Rate, r.ClientRate, r.FinalRate)
	fmt.Fprintf(w, "errors             %d\n", r.Errors)
	fmt.Fprintf(w, "retries            %d (%d EGW00201 answers)\n", r.Retries, r.RateLimited)
	if r.Rejections >= 0 {
		fmt.Fprintf(w, "emulator rejections %d (rate_limit_rejections)\n", r.Rejections)
		fmt.Fprintf(w, "max 1-s window     %d (max_requests_per_second_window)\n", r.MaxWindow)
	} else {
		fmt.Fprintln(w, "emulator stats     unavailable (upstream is not an emulator)")
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error        %s\n", r.FirstError)
	}
}
