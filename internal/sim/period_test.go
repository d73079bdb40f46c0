package sim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kisfeed/kisfeed"
)

func bar(y int, m time.Month, d int, o, h, l, c, v int64) kisfeed.Candle {
	return kisfeed.Candle{Time: kisfeed.Date(y, m, d), Open: o, High: h, Low: l, Close: c, Volume: v, Value: v * c}
}

// TestAggregate: the one week/month/year fold both the emulator and the
// mock Source serve. The days straddle a year end inside one ISO week
// (2025-12-29 … 2026-01-04 is 2026-W01), so week, month and year cut them
// differently.
func TestAggregate(t *testing.T) {
	t.Parallel()
	days := func() []kisfeed.Candle {
		return []kisfeed.Candle{
			bar(2025, 12, 26, 100, 110, 95, 105, 10),  // Fri, 2025-W52
			bar(2025, 12, 29, 105, 120, 104, 118, 20), // Mon, 2026-W01
			bar(2025, 12, 30, 118, 119, 90, 92, 30),   // Tue
			bar(2026, 1, 2, 92, 130, 91, 125, 40),     // Fri, same ISO week, new month and year
			bar(2026, 1, 5, 125, 126, 120, 121, 50),   // Mon, 2026-W02
		}
	}
	sum := func(o, h, l, c int64, first kisfeed.Candle, rest ...kisfeed.Candle) kisfeed.Candle {
		b := first
		b.Open, b.High, b.Low, b.Close = o, h, l, c
		for _, r := range rest {
			b.Volume += r.Volume
			b.Value += r.Value
		}
		return b
	}
	d := days()
	tests := []struct {
		p    Period
		want []kisfeed.Candle
	}{
		{PeriodDay, days()},
		{PeriodWeek, []kisfeed.Candle{d[0], sum(105, 130, 90, 125, d[1], d[2], d[3]), d[4]}},
		{PeriodMonth, []kisfeed.Candle{sum(100, 120, 90, 92, d[0], d[1], d[2]), sum(92, 130, 91, 121, d[3], d[4])}},
		{PeriodYear, []kisfeed.Candle{sum(100, 120, 90, 92, d[0], d[1], d[2]), sum(92, 130, 91, 121, d[3], d[4])}},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			t.Parallel()
			got := Aggregate(days(), tt.p)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Aggregate(%s) (-want +got):\n%s", tt.p, diff)
			}
		})
	}
}

// TestAggregateLabels: a bar is labelled with the KST day of its first
// daily bar even when that bar's time is not midnight (the partial bar of
// the session day is built from a quote), and an empty input stays empty.
func TestAggregateLabels(t *testing.T) {
	t.Parallel()
	noon := time.Date(2026, 3, 10, 3, 0, 0, 0, time.UTC) // 12:00 KST
	got := Aggregate([]kisfeed.Candle{{Time: noon, Open: 1, High: 2, Low: 1, Close: 2, Volume: 3}}, PeriodWeek)
	if want := kisfeed.Date(2026, 3, 10); len(got) != 1 || !got[0].Time.Equal(want) {
		t.Errorf("label = %v, want one bar at %v", got, want)
	}
	if got := Aggregate(nil, PeriodMonth); len(got) != 0 {
		t.Errorf("Aggregate(nil) = %v, want empty", got)
	}
}

// TestAggregateMarket: over the synthetic market, every period bar holds
// exactly the daily bars of its period: volumes add up, and each label is
// a trading day that starts a new period.
func TestAggregateMarket(t *testing.T) {
	t.Parallel()
	m := market()
	from, to := kisfeed.Date(2024, time.January, 1), kisfeed.Date(2025, time.December, 31)
	daily := m.DailyBars("005930", from, to)
	var vol int64
	for _, d := range daily {
		vol += d.Volume
	}
	for _, p := range []Period{PeriodDay, PeriodWeek, PeriodMonth, PeriodYear} {
		bars := Aggregate(m.DailyBars("005930", from, to), p)
		var got int64
		for i, b := range bars {
			got += b.Volume
			if _, ok := m.DailyBar("005930", b.Time); !ok {
				t.Errorf("%s bar %d labelled %v, not a trading day", p, i, b.Time)
			}
			if i > 0 && p.key(bars[i-1].Time) == p.key(b.Time) {
				t.Errorf("%s bars %d and %d share a period", p, i-1, i)
			}
		}
		if got != vol {
			t.Errorf("%s: volume %d, want %d (the daily sum)", p, got, vol)
		}
	}
}
