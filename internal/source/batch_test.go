package source_test

import (
	"fmt"
	"testing"

	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/source"
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
		u := newUpstream(t, config.Default(), source.Deps{})
		if u.Batcher == nil {
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
		before := u.Emulator.Stats().RequestsByTrID
		errs := make(chan error, n)
		for _, c := range codes {
			go func() {
				q, err := u.Source.Quote(t.Context(), c)
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
		after := u.Emulator.Stats().RequestsByTrID
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
		u := newUpstream(t, kisConfig(t, base), source.Deps{})
		if u.Batcher != nil {
			t.Error("Batcher: set over KIS's mock server, want nil (it has no intstock-multprice)")
		}
	})
	t.Run("mock", func(t *testing.T) {
		t.Parallel()
		cfg := config.Default()
		cfg.EnableKISAPI = "false"
		if u := newUpstream(t, cfg, source.Deps{}); u.Batcher != nil {
			t.Error("Batcher: set in mock mode, want nil")
		}
	})
}
