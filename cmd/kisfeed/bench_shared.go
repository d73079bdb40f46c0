package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/wiring"
	"github.com/kisfeed/kisfeed/kis"
)

// benchSharedFlags are the flags of "kisfeed bench shared".
type benchSharedFlags struct {
	duration time.Duration
	workers  int
	json     bool
}

func newBenchSharedCmd(a *app) *cobra.Command {
	var f benchSharedFlags
	c := &cobra.Command{
		Use:   "shared",
		Short: "Hammer KIS with single-price calls to measure a shared rate budget",
		Long: `Hammer the KIS API (normally an emulator at KIS_BASE_URL) with current-price
calls for random stock codes from --workers goroutines for --duration, going
around the cache and breaker straight to the KIS client(s), and print the
calls made, errors, the achieved rate and the tokens this process issued.

Run several at once with the same KIS_APP_KEY and REDIS_URL to check that the
Redis token store and rate limiter make them share one app key's budget:
together they should stay within the key's limit in every second and issue
one token (scripts/shared-budget.sh does exactly that).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.duration <= 0 {
				return usageError("--duration %s: want > 0", f.duration)
			}
			if f.workers < 1 || f.workers > 1024 {
				return usageError("--workers %d: want 1 to 1024", f.workers)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			log := a.logger(cfg)
			u, err := wiring.New(cmd.Context(), cfg, a.sourceDeps(cfg, log, wiring.Deps{}))
			if err != nil {
				return withExit(1, err)
			}
			defer u.Close()
			if len(u.Clients) == 0 {
				return usageError("bench shared needs KIS clients: set KIS_BASE_URL and KIS_APP_KEY (mode %s has none)", cfg.Mode())
			}
			res := benchShared(cmd.Context(), u.Clients, benchCodes(cfg), f.duration, f.workers)
			res.Mode, res.BaseURL, res.Redis = string(cfg.Mode()), u.BaseURL, cfg.RedisURL != ""
			res.Shared = res.Redis && cfg.SharedRateLimit && cfg.Mode() == config.ModeKIS
			return res.print(a.stdout, f.json)
		},
	}
	c.Flags().DurationVar(&f.duration, "duration", 20*time.Second, "how long to run")
	c.Flags().IntVar(&f.workers, "workers", 8, "concurrent callers")
	c.Flags().BoolVar(&f.json, "json", false, "print the figures as JSON")
	return c
}

// benchCodes are the ordinary shares of the synthetic universe: the codes
// the emulator knows. Computed offline, so the bench itself spends no
// request on the universe.
func benchCodes(cfg config.Config) []string {
	var codes []string
	for _, s := range sim.New(cfg.Seed).Universe() {
		if s.IsCommonStock() {
			codes = append(codes, s.Code)
		}
	}
	return codes
}

// sharedResult is what one bench run reports.
type sharedResult struct {
	Mode         string        `json:"mode"`
	BaseURL      string        `json:"base_url"`
	Redis        bool          `json:"redis"`
	Shared       bool          `json:"shared_rate_limit"`
	Keys         int           `json:"app_keys"`
	Workers      int           `json:"workers"`
	Elapsed      time.Duration `json:"-"`
	ElapsedSec   float64       `json:"elapsed_seconds"`
	Calls        int64         `json:"calls"`
	OK           int64         `json:"ok"`
	Errors       int64         `json:"errors"`
	Rate         float64       `json:"calls_per_second"`
	Requests     int64         `json:"http_requests"`
	Retries      int64         `json:"retries"`
	RateLimited  int64         `json:"rate_limited_answers"`
	TokensIssued int64         `json:"tokens_issued"`
	LimiterWait  time.Duration `json:"-"`
	FirstError   string        `json:"first_error,omitempty"`
}

// benchShared runs workers callers for d, each calling Price on the next
// client (round-robin) for a random code, and sums the clients' counters.
func benchShared(ctx context.Context, clients []*kis.Client, codes []string, d time.Duration, workers int) sharedResult {
	// Cancel at d rather than set a deadline: with a deadline the client's
	// limiter refuses at once any wait that would end after it, and the
	// last moments of the run would spin on those refusals.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := time.AfterFunc(d, cancel)
	defer stop.Stop()
	var calls, ok, failed atomic.Int64
	var next atomic.Uint64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
		wg.Go(func() {
			for ctx.Err() == nil {
				c := clients[next.Add(1)%uint64(len(clients))]
				code := codes[rng.IntN(len(codes))]
				_, _, err := c.Price(ctx, code)
				if ctx.Err() != nil && err != nil {
					return // the run ended mid-call: not an error
				}
				calls.Add(1)
				if err != nil && !errors.Is(err, kisfeed.ErrNotFound) {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := sharedResult{Keys: len(clients), Workers: workers, Elapsed: elapsed, ElapsedSec: elapsed.Seconds(),
		Calls: calls.Load(), OK: ok.Load(), Errors: failed.Load()}
	r.Rate = float64(r.Calls) / elapsed.Seconds()
	st := sumClientStats(clients)
	r.Requests, r.Retries, r.RateLimited, r.TokensIssued, r.LimiterWait = st.Requests, st.Retries, st.RateLimited, st.TokensIssued, st.LimiterWait
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	return r
}

func (r sharedResult) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	shared := "off"
	if r.Shared {
		shared = "on (Redis)"
	}
	p("upstream       %s %s, %d app key(s), shared rate limit %s\n", r.Mode, r.BaseURL, r.Keys, shared)
	p("duration       %.1fs with %d workers\n", r.ElapsedSec, r.Workers)
	p("calls          %d (%d ok, %d errors)\n", r.Calls, r.OK, r.Errors)
	p("achieved rate  %.2f calls/s\n", r.Rate)
	p("http requests  %d (%d retries, %d rate-limited answers)\n", r.Requests, r.Retries, r.RateLimited)
	p("tokens issued  %d (by this process)\n", r.TokensIssued)
	if r.FirstError != "" {
		p("first error    %s\n", r.FirstError)
	}
	return err
}
