package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/ingest"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// flakyCandles damages the first daily-chart answers for chosen codes: the
// asked day's bar (the last) gets a negative volume, which no bar can have.
type flakyCandles struct {
	kisfeed.Source
	mu   sync.Mutex
	left map[string]int // answers still to damage, guarded by mu
}

func (f *flakyCandles) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	cs, err := f.Source.Candles(ctx, q)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.left[q.Code.String()] > 0 && len(cs.Bars) > 0 {
		f.left[q.Code.String()]--
		cp := *cs
		cp.Bars = append([]kisfeed.Candle(nil), cs.Bars...)
		cp.Bars[len(cp.Bars)-1].Volume = -1
		return &cp, nil
	}
	return cs, nil
}

func TestVerify(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	base := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	codes := []string{"005930", "000660", "035420", "005380", "068270", "035720"}
	if _, err := newIngester(base, store, afterClose).Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes(codes...)}); err != nil {
		t.Fatal(err)
	}

	t.Run("all match", func(t *testing.T) {
		rep, err := newIngester(base, store, afterClose).Verify(ctx, ingest.VerifyOptions{Sample: 100})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Sample != len(codes) || rep.Matched != len(codes) {
			t.Errorf("report = %+v, want %d matched, OK", rep, len(codes))
		}
	})
	t.Run("a bad first answer is retried, not reported", func(t *testing.T) {
		src := &flakyCandles{Source: base, left: map[string]int{"005930": 1}}
		rep, err := newIngester(src, store, afterClose).Verify(ctx, ingest.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Transient != 1 {
			t.Errorf("report = %+v, want OK with 1 transient", rep)
		}
	})
	// Two unsound answers in a row (an emulator's corrupt fault can hit
	// both fetches of one bar) are not evidence: verify asks again and
	// the sound answer decides. Before, the second fetch decided alone
	// and a corrupted reply was reported as a mismatch.
	t.Run("unsound answers are asked again, never evidence", func(t *testing.T) {
		src := &flakyCandles{Source: base, left: map[string]int{"005930": 2, "000660": 3}}
		rep, err := newIngester(src, store, afterClose).Verify(ctx, ingest.VerifyOptions{Sample: 100})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Transient != 2 {
			t.Errorf("report = %+v, want OK with 2 transient", rep)
		}
		src = &flakyCandles{Source: base, left: map[string]int{"005930": 4}}
		rep, err = newIngester(src, store, afterClose).Verify(ctx, ingest.VerifyOptions{Sample: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Mismatches) != 0 || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Error, "unsound") {
			t.Errorf("report = %+v, want no mismatch and one error naming the unsound answers", rep)
		}
	})
	t.Run("a tampered row is reported", func(t *testing.T) {
		s2 := openStore(t)
		if _, err := newIngester(base, s2, afterClose).Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes(codes...)}); err != nil {
			t.Fatal(err)
		}
		bars, _ := s2.Bars(ctx, "000660", day, day)
		bars[0].Close += 100
		if _, err := s2.UpsertBars(ctx, bars); err != nil {
			t.Fatal(err)
		}
		rep, err := newIngester(base, s2, afterClose).Verify(ctx, ingest.VerifyOptions{Sample: 3})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sample != 3 {
			t.Errorf("sample = %d, want 3", rep.Sample)
		}
		full, err := newIngester(base, s2, afterClose).Verify(ctx, ingest.VerifyOptions{Sample: 100})
		if err != nil {
			t.Fatal(err)
		}
		if full.OK() || len(full.Mismatches) != 1 {
			t.Fatalf("report = %+v, want exactly one mismatch", full)
		}
		m := full.Mismatches[0]
		if m.Code != "000660" || len(m.Diffs) != 1 || m.Diffs[0].Field != "close" || m.Diffs[0].Stored != m.Diffs[0].Source+100 {
			t.Errorf("mismatch = %+v, want 000660 close stored = source + 100", m)
		}
		var buf bytes.Buffer
		_ = full.WriteText(&buf)
		if !strings.Contains(buf.String(), "MISMATCH 000660 2025-06-04: values differ: close stored") {
			t.Errorf("text report lacks the mismatch line:\n%s", buf.String())
		}
	})
	t.Run("nothing stored", func(t *testing.T) {
		_, err := newIngester(base, openStore(t), afterClose).Verify(ctx, ingest.VerifyOptions{})
		if !errors.Is(err, kisfeed.ErrNotFound) {
			t.Errorf("Verify on an empty store: %v, want ErrNotFound", err)
		}
	})
}

func TestLogProgress(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	now := time.Date(2025, 6, 4, 16, 10, 0, 0, kisfeed.KST)
	p := ingest.NewLogProgress(log, func() time.Time { return now }, 5*time.Second)
	p.Start(100)
	for done := 1; done <= 100; done++ {
		if done == 55 {
			now = now.Add(6 * time.Second) // a slow stretch: the timer fires
		}
		p.Update(ingest.Tally{Done: done, Total: 100})
	}
	p.Finish(ingest.Tally{Done: 100, Total: 100})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// One line per tenth (10 lines) plus the one the 6 s gap forced.
	if len(lines) != 11 {
		t.Errorf("got %d lines, want 11:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[len(lines)-1], "done=100 total=100") {
		t.Errorf("last line = %q, want done=100 total=100", lines[len(lines)-1])
	}
}
