package ingest_test

// The candles path against the emulator's corrupt fault: a corrupted
// daily-chart bar (an output2 row) must end in rejected_bars, never in
// daily_prices. Its own helpers keep it apart from the other e2e tests.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/ingest"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/sqlite"
	"github.com/kisfeed/kisfeed/kis"
)

func TestCandlesCorruptedBarsRejected(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Date(2025, 6, 4, 16, 10, 0, 0, kisfeed.KST)
	from, to := kisfeed.Date(2025, 5, 19), kisfeed.Date(2025, 5, 30)
	market := sim.New(1)
	clock := func() time.Time { return now }
	srv, base := emulatortest.Start(t, emulator.WithMarket(market), emulator.WithRate(0), emulator.WithMarketClock(clock),
		emulator.WithFaults(emulator.Faults{Corrupt: 0.3, Seed: 4}))
	c, err := kis.NewClient(kis.WithBaseURL(base), kis.WithMasterURL(base), kis.WithAppKey("corrupt-key", "corrupt-secret"),
		kis.WithTokenStore(kis.NewMemoryTokenStore()), kis.WithRateLimit(10000), kis.WithClock(clock),
		kis.WithRetry(3, time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kisfeed.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	var codes []string
	for _, s := range market.Universe() {
		if len(codes) < 40 && s.IsCommonStock() && (s.ListingDate.IsZero() || s.ListingDate.Before(from)) {
			codes = append(codes, s.Code)
		}
	}
	in := &ingest.Ingester{Source: kis.NewSource(c), Store: store, Clock: kisfeed.Clock{Market: clock}, DB: "test.db"}
	// One worker: the emulator's fault RNG is drawn in request order, so
	// the same seed corrupts the same bars every run.
	sum, err := in.Run(ctx, ingest.Options{From: from, To: to, Path: ingest.PathCandles, Codes: kisfeed.MustParseCodes(codes...), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	if int(st.CorruptedResponses) > len(st.Corrupted) {
		t.Fatalf("%d corruptions, only %d listed: shrink the test", st.CorruptedResponses, len(st.Corrupted))
	}
	rejected, err := store.Rejected(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ code, date string }
	rejectedAt := map[key][]string{}
	for _, r := range rejected {
		k := key{r.Code, r.Date.Format("20060102")}
		rejectedAt[k] = append(rejectedAt[k], r.Reason)
	}
	inWindow, unreadable := 0, 0
	for _, cr := range st.Corrupted {
		if !strings.HasPrefix(cr.Block, "output2[") || cr.Date == "" {
			continue // output1 is the quote summary: no bar comes from it
		}
		day, err := time.ParseInLocation("20060102", cr.Date, kisfeed.KST)
		if err != nil {
			t.Fatalf("corruption %+v: date: %v", cr, err)
		}
		reasons := rejectedAt[key{cr.Code, cr.Date}]
		if cr.Kind == "non_numeric" {
			// The client refuses the row (a *kis.MalformedError), and the
			// rejected row names its field and value, whatever its date.
			unreadable++
			want := fmt.Sprintf("malformed upstream field %s.%s: %q", cr.Block, cr.Field, cr.Value)
			found := false
			for _, r := range reasons {
				found = found || r == want
			}
			if !found {
				t.Errorf("corruption %+v: rejected reasons %q, want %q", cr, reasons, want)
			}
			continue
		}
		if day.Before(from) || day.After(to) {
			continue // the lookback row is only a reference, never stored
		}
		// A readable but impossible bar reaches the validation rules.
		inWindow++
		if len(reasons) == 0 {
			t.Errorf("corruption %+v: no rejected_bars row for %s on %s", cr, cr.Code, cr.Date)
		}
	}
	if inWindow == 0 || unreadable == 0 {
		t.Fatalf("corrupted daily bars: %d readable in the window, %d unreadable; want both (of %d corruptions %+v)",
			inWindow, unreadable, len(st.Corrupted), st.Corrupted)
	}
	// Whatever was stored is the market's own bar.
	for _, code := range codes {
		bars, err := store.Bars(ctx, code, from, to)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bars {
			want, ok := market.DailyBar(b.Code, b.Date)
			if !ok || want.Open != b.Open || want.High != b.High || want.Low != b.Low || want.Close != b.Close ||
				want.Volume != b.Volume || want.Value != b.Value {
				t.Errorf("stored %+v, market has %+v", b, want)
			}
		}
	}
	if sum.Malformed < unreadable || sum.Rejected < inWindow+unreadable {
		t.Errorf("summary: %d rejected (%d malformed); want at least %d (%d malformed)", sum.Rejected, sum.Malformed, inWindow+unreadable, unreadable)
	}
	t.Logf("%d responses corrupted, %d readable bars in the window and %d unreadable rows rejected; %d written",
		st.CorruptedResponses, inWindow, unreadable, sum.Written)
}
