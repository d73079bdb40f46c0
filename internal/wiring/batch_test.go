package wiring_test

import (
	"context"
	"fmt"
	"github.com/kisfeed/kisfeed"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/embedded"
	"github.com/kisfeed/kisfeed/internal/wiring"
	"github.com/kisfeed/kisfeed/kis"
)

// TestColdMissesBatched: where the upstream batches natively (embedded
// emulator, real-server behaviour) concurrent cold misses for different
// codes reach it as intstock-multprice calls of up to 30 codes, not one
// inquire-price call each; over KIS's mock server (no multprice) and in
// mock mode nothing is batched.
func TestColdMissesBatched(t *testing.T) {
	t.Parallel()
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		var emu *embedded.Emulator
		u := newUpstream(t, config.Default(), withEmulator(wiring.Deps{}, &emu))
		if wiring.BatcherOf(u) == nil {
			t.Fatal("Batcher: nil, want the batching layer in embedded mode")
		}
		stocks, err := u.Source.Universe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		const n = 60
		var codes []string
		for _, s := range stocks {
			if s.IsCommonStock() && len(codes) < n {
				codes = append(codes, s.Code)
			}
		}
		if len(codes) < n {
			t.Fatalf("universe: %d common stocks, want %d", len(codes), n)
		}
		before := emu.Server.Stats().RequestsByTrID
		errs := make(chan error, n)
		for _, c := range codes {
			go func() {
				q, err := u.Source.Quote(t.Context(), kisfeed.MustParseCode(c))
				if err == nil && q.Code != c {
					err = fmt.Errorf("asked %s, got %s", c, q.Code)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		after := emu.Server.Stats().RequestsByTrID
		multi := after[kis.TrMultPrice] - before[kis.TrMultPrice]
		single := after[kis.TrPrice] - before[kis.TrPrice]
		// Two full batches, plus stragglers when the goroutines start
		// spread over more than one window on a busy machine.
		if multi < 2 || multi > 6 || single != 0 {
			t.Errorf("upstream calls for %d cold codes: %d multprice, %d inquire-price; want 2 to 6 and 0", n, multi, single)
		}
	})
	t.Run("kis mock server", func(t *testing.T) {
		t.Parallel()
		_, base := emulatortest.Start(t)
		u := newUpstream(t, kisConfig(t, base), wiring.Deps{})
		if wiring.BatcherOf(u) != nil {
			t.Error("Batcher: set over KIS's mock server, want nil (it has no intstock-multprice)")
		}
	})
	t.Run("mock", func(t *testing.T) {
		t.Parallel()
		cfg := config.Default()
		cfg.EnableKISAPI = "false"
		if u := newUpstream(t, cfg, wiring.Deps{}); wiring.BatcherOf(u) != nil {
			t.Error("Batcher: set in mock mode, want nil")
		}
	})
}

// BenchmarkColdFill asks every one of 2,600 cold codes at once through the
// embedded stack (cache → batch → breaker → kis client → emulator at 18
// req/s) and reports the upstream calls and the time until the last code
// is answered. Batched, that is ~87 intstock-multprice calls in ~5 s; one
// by one it would be 2,600 calls and ~150 s. Run it with -benchtime=1x:
//
//	go test -run '^$' -bench ColdFill -benchtime=1x ./internal/wiring/
func BenchmarkColdFill(b *testing.B) {
	const n = 2600
	for b.Loop() {
		b.StopTimer()
		cfg := config.Default()
		if err := cfg.Validate(); err != nil {
			b.Fatal(err)
		}
		var emu *embedded.Emulator
		u, err := wiring.New(b.Context(), cfg, withEmulator(wiring.Deps{}, &emu))
		if err != nil {
			b.Fatal(err)
		}
		stocks, err := u.Source.Universe(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		var codes []string
		for _, s := range stocks {
			if s.IsCommonStock() && len(codes) < n {
				codes = append(codes, s.Code)
			}
		}
		before := emu.Server.Stats().RequestsByTrID
		errs := make(chan error, len(codes))
		ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
		start := time.Now()
		b.StartTimer()
		for _, c := range codes {
			go func() {
				_, err := u.Source.Quote(ctx, kisfeed.MustParseCode(c))
				errs <- err
			}()
		}
		failed := 0
		for range codes {
			if err := <-errs; err != nil {
				failed++
			}
		}
		b.StopTimer()
		elapsed := time.Since(start)
		cancel()
		after := emu.Server.Stats().RequestsByTrID
		b.ReportMetric(float64(len(codes)), "codes")
		b.ReportMetric(float64(after[kis.TrMultPrice]-before[kis.TrMultPrice]), "multprice-calls")
		b.ReportMetric(float64(after[kis.TrPrice]-before[kis.TrPrice]), "price-calls")
		b.ReportMetric(float64(failed), "failed")
		b.ReportMetric(elapsed.Seconds(), "fill-s")
		if err := u.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
