package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/ingest"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// failNthWrite fails UpsertBars from its nth call on: a database lost for
// good mid-run (the store's own retries already spent).
type failNthWrite struct {
	kisfeed.PriceStore
	n, calls atomic.Int64
}

func (f *failNthWrite) UpsertBars(ctx context.Context, bars []kisfeed.DailyBar) (kisfeed.WriteResult, error) {
	if f.calls.Add(1) >= f.n.Load() {
		return kisfeed.WriteResult{}, errDisk
	}
	return f.PriceStore.UpsertBars(ctx, bars)
}

// TestStoreFailureStopsFetching: the moment a write fails for good the
// fetches stop (no rate budget spent on bars that cannot be stored), the
// run fails naming the write error, and the summary, its JSON and the run
// record count and list every code left unwritten.
func TestStoreFailureStopsFetching(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	src := &counting{Source: synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})}
	fs := &failNthWrite{PriceStore: store}
	fs.n.Store(4) // three batches stored, the fourth fails
	const workers = 2
	in := newIngester(src, fs, afterClose)
	in.FlushSize = 1 // one code's bar per write
	opts := ingest.Options{Workers: workers, Markets: []kisfeed.Market{kisfeed.MarketKOSPI}, Path: ingest.PathCandles,
		From: kisfeed.Date(2025, 6, 2)}
	universe := commonStocksIn(t, kisfeed.Date(2025, 6, 2), kisfeed.MarketKOSPI)
	sum, err := in.Run(ctx, opts)
	if !errors.Is(err, errDisk) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Run error = %v, want the write error named", err)
	}
	// At most: the writes, the failed one, a result queued per worker and
	// one fetch in flight per worker, plus one launched as it failed.
	if got, limit := src.candles.Load(), int64(4+2*workers+1); got > limit {
		t.Errorf("Candles calls = %d after the write failed, want <= %d (of %d codes)", got, limit, universe)
	}
	stored, _ := store.BarCounts(ctx, opts.From, opts.From)
	if len(stored) != 3 {
		t.Errorf("codes stored = %d, want 3", len(stored))
	}
	if sum.Status != kisfeed.RunFailed || sum.Unwritten < 1 || sum.Pending == 0 {
		t.Errorf("status %s unwritten %d pending %d; want failed, the failed batch unwritten, the rest pending",
			sum.Status, sum.Unwritten, sum.Pending)
	}
	if got := len(stored) + sum.Unwritten + sum.Pending + sum.Incomplete; got != universe {
		t.Errorf("stored %d + unwritten %d + pending %d + incomplete %d = %d, want the universe %d",
			len(stored), sum.Unwritten, sum.Pending, sum.Incomplete, got, universe)
	}
	if len(sum.UnwrittenCodes) != min(sum.Unwritten, ingest.MaxListedCodes) ||
		len(sum.PendingCodes) != min(sum.Pending, ingest.MaxListedCodes) {
		t.Errorf("listed %d unwritten, %d pending codes; want %d, %d", len(sum.UnwrittenCodes), len(sum.PendingCodes),
			sum.Unwritten, sum.Pending)
	}
	for _, c := range sum.UnwrittenCodes {
		if stored[c] != 0 {
			t.Errorf("code %s listed unwritten but stored", c)
		}
	}
	if len(sum.UnwrittenCodes) == 0 || len(sum.PendingCodes) == 0 {
		t.Fatalf("unwritten codes %v, pending codes %v: want both listed", sum.UnwrittenCodes, sum.PendingCodes)
	}
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "unwritten") || !strings.Contains(text.String(), sum.UnwrittenCodes[0]) ||
		!strings.Contains(text.String(), sum.PendingCodes[0]) {
		t.Errorf("summary text does not list the unwritten and pending codes:\n%s", text.String())
	}
	js, _ := sum.MarshalJSON()
	if !bytes.Contains(js, []byte(`"unwritten_codes":["`)) || !bytes.Contains(js, []byte(`"pending_codes":["`)) {
		t.Errorf("summary JSON lacks the unwritten/pending codes: %s", js)
	}
	runs, _ := store.Runs(ctx, 1)
	if len(runs) != 1 || runs[0].Unwritten != sum.Unwritten+sum.Pending || !strings.Contains(runs[0].Error, "disk full") {
		t.Errorf("run record = %+v, want unwritten %d and the error", runs, sum.Unwritten+sum.Pending)
	}
}

// TestDeadRunsAreAbandoned: a run whose process died (its heartbeat older
// than the lease) is marked abandoned when the next run starts and when
// verify looks; a run still beating is left running.
func TestDeadRunsAreAbandoned(t *testing.T) {
	t.Parallel()
	wall := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		look func(in *ingest.Ingester) error
	}{
		{"next run", func(in *ingest.Ingester) error {
			_, err := in.Run(t.Context(), ingest.Options{Codes: kisfeed.MustParseCodes("005930")})
			return err
		}},
		{"verify", func(in *ingest.Ingester) error {
			_, err := in.Verify(t.Context(), ingest.VerifyOptions{Sample: 1})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			store := openStore(t)
			in := newIngester(synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }}), store, afterClose)
			in.Clock.Wall = func() time.Time { return wall }
			if tt.name == "verify" {
				if _, err := in.Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes("005930")}); err != nil {
					t.Fatal(err)
				}
			}
			start := func(hb time.Time) int64 {
				r := &kisfeed.IngestionRun{StartedAt: afterClose, From: day, To: day, HeartbeatAt: hb}
				if err := store.StartRun(ctx, r); err != nil {
					t.Fatal(err)
				}
				return r.ID
			}
			dead := start(wall.Add(-ingest.DefaultLease - time.Second))
			live := start(wall.Add(-ingest.DefaultLease / 2))
			if err := tt.look(in); err != nil {
				t.Fatal(err)
			}
			runs, err := store.Runs(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range runs {
				switch r.ID {
				case dead:
					if r.Status != kisfeed.RunAbandoned || r.FinishedAt.IsZero() {
						t.Errorf("dead run: status %q finished %v, want abandoned and finished", r.Status, r.FinishedAt)
					}
				case live:
					if r.Status != kisfeed.RunRunning {
						t.Errorf("live run: status %q, want running", r.Status)
					}
				}
			}
		})
	}
}

// beatWatch reports each heartbeat of a run on a channel.
type beatWatch struct {
	kisfeed.PriceStore
	beats chan int64
}

func (b *beatWatch) HeartbeatRun(ctx context.Context, id int64, at time.Time) error {
	select {
	case b.beats <- id:
	default:
	}
	return b.PriceStore.HeartbeatRun(ctx, id, at)
}

// TestRunHeartbeats: a running run renews its lease while it works; the
// fetch below waits for a renewal before answering.
func TestRunHeartbeats(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	bw := &beatWatch{PriceStore: store, beats: make(chan int64, 1)}
	base := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	var beatSeen atomic.Int64
	src := &sourcetest.Func{
		UniverseFn: base.Universe,
		QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			select {
			case id := <-bw.beats:
				beatSeen.Store(id)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return base.Quotes(ctx, kisfeed.MustParseCodes(codes...))
		},
	}
	in := newIngester(src, bw, afterClose)
	in.Lease = 4 * time.Millisecond // a renewal every millisecond
	sum, err := in.Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes("005930")})
	if err != nil {
		t.Fatal(err)
	}
	if beatSeen.Load() != sum.RunID {
		t.Errorf("heartbeat of run %d seen, want run %d", beatSeen.Load(), sum.RunID)
	}
	runs, _ := store.Runs(ctx, 1)
	if len(runs) != 1 || runs[0].Status != kisfeed.RunSucceeded {
		t.Errorf("run record = %+v, want succeeded (a heartbeat never overrides the outcome)", runs)
	}
}
