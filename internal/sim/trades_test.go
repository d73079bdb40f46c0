package sim

import (
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

// TestExecutionsSplitBars checks the split of every minute bar into
// trades: volumes sum to the bar's, prices stay in [low, high], the first
// and last trade show the open and close, times are strictly increasing
// and strictly inside the minute, and the closing auction is one trade at
// 15:30:00.
func TestExecutionsSplitBars(t *testing.T) {
	t.Parallel()
	m := market()
	for _, smp := range randomSamples(m, 12) {
		code, day := smp[0].(string), smp[1].(time.Time)
		t.Run(code+"/"+day.Format("20060102"), func(t *testing.T) {
			bars := m.MinuteBars(code, day)
			ex := m.Executions(code, day, day.Add(24*time.Hour))
			daily, _ := m.DailyBar(code, day)
			if len(ex) == 0 {
				t.Fatal("no executions")
			}
			if last := ex[len(ex)-1]; last.CumVolume != daily.Volume || last.CumValue != daily.Value || last.Price != daily.Close {
				t.Fatalf("last execution %+v, want the daily bar %+v", last, daily)
			}
			byMinute := map[time.Time][]Execution{}
			for k, e := range ex {
				if k > 0 && !e.Time.After(ex[k-1].Time) {
					t.Fatalf("execution %d at %s not after %s", k, e.Time, ex[k-1].Time)
				}
				start := e.Time.Truncate(time.Minute)
				byMinute[start] = append(byMinute[start], e)
			}
			for _, b := range bars {
				got := byMinute[b.Time]
				var vol int64
				for _, e := range got {
					vol += e.Volume
					if e.Price < b.Low || e.Price > b.High {
						t.Fatalf("%s: trade at %d outside [%d, %d]", b.Time.Format("15:04"), e.Price, b.Low, b.High)
					}
					if e.Time.Equal(b.Time) && b.Time.Hour() != 15 {
						t.Fatalf("%s: trade at the minute boundary", b.Time.Format("15:04"))
					}
				}
				if vol != b.Volume {
					t.Fatalf("%s: trades sum to %d shares, bar has %d", b.Time.Format("15:04"), vol, b.Volume)
				}
				if len(got) > 0 && got[len(got)-1].Price != b.Close {
					t.Fatalf("%s: last trade %d, bar close %d", b.Time.Format("15:04"), got[len(got)-1].Price, b.Close)
				}
				if len(got) > 3 && got[0].Price != b.Open {
					t.Fatalf("%s: first trade %d, bar open %d", b.Time.Format("15:04"), got[0].Price, b.Open)
				}
			}
			auction := byMinute[day.Add(15*time.Hour+30*time.Minute)]
			if len(auction) != 1 || !auction[0].Time.Equal(day.Add(15*time.Hour+30*time.Minute)) {
				t.Fatalf("closing auction trades %+v, want one at 15:30:00", auction)
			}
		})
	}
}

// TestExecutionsAgreeWithQuoteAt checks that every execution's running
// figures are what QuoteAt says at its instant, and that QuoteAt at a
// minute boundary is the aggregate of the complete bars (trades never move
// it there).
func TestExecutionsAgreeWithQuoteAt(t *testing.T) {
	t.Parallel()
	m := market()
	for _, smp := range randomSamples(m, 6) {
		code, day := smp[0].(string), smp[1].(time.Time)
		t.Run(code+"/"+day.Format("20060102"), func(t *testing.T) {
			ex := m.Executions(code, day, day.Add(24*time.Hour))
			for k, e := range ex {
				if k%7 != 0 && k != len(ex)-1 {
					continue
				}
				q, _ := m.QuoteAt(code, e.Time)
				if q.Price != e.Price || q.Open != e.Open || q.High != e.High || q.Low != e.Low ||
					q.Volume != e.CumVolume || q.TradingValue != e.CumValue || !q.Meta.AsOf.Equal(e.Time) {
					t.Fatalf("QuoteAt(%s) = %+v, execution %+v", e.Time.Format("15:04:05.000"), q, e)
				}
				// Just before the trade it is not included yet.
				before, _ := m.QuoteAt(code, e.Time.Add(-time.Millisecond))
				if before.Volume != e.CumVolume-e.Volume {
					t.Fatalf("QuoteAt(%s - 1ms).Volume = %d, want %d", e.Time.Format("15:04:05.000"), before.Volume, e.CumVolume-e.Volume)
				}
			}
			bars := m.MinuteBars(code, day)
			var vol int64
			for k, b := range bars[:380] {
				vol += b.Volume
				q, _ := m.QuoteAt(code, b.Time.Add(time.Minute))
				if k < 379 && (q.Volume != vol || q.Price != b.Close) {
					t.Fatalf("QuoteAt(%s) volume %d price %d, want bars' %d %d", b.Time.Add(time.Minute).Format("15:04"), q.Volume, q.Price, vol, b.Close)
				}
			}
		})
	}
}

// TestExecutionsWindow checks the half-open window (from, to] and that
// nothing trades outside the session.
func TestExecutionsWindow(t *testing.T) {
	t.Parallel()
	m := market()
	day := kisfeed.Date(2026, time.November, 27)
	all := m.Executions("005930", day.Add(9*time.Hour), day.Add(10*time.Hour))
	if len(all) < 10 {
		t.Fatalf("%d executions 09:00–10:00, want many", len(all))
	}
	mid := all[len(all)/2].Time
	a := m.Executions("005930", day.Add(9*time.Hour), mid)
	b := m.Executions("005930", mid, day.Add(10*time.Hour))
	if len(a)+len(b) != len(all) || !a[len(a)-1].Time.Equal(mid) {
		t.Fatalf("split at %s: %d + %d executions, want %d with the first part ending at it", mid, len(a), len(b), len(all))
	}
	for _, w := range [][2]time.Time{
		{day, day.Add(9 * time.Hour)},
		{day.Add(15*time.Hour + 30*time.Minute), day.Add(20 * time.Hour)},
		{kisfeed.Date(2026, time.November, 28), kisfeed.Date(2026, time.November, 29)}, // Saturday
	} {
		if ex := m.Executions("005930", w[0], w[1]); len(ex) != 0 {
			t.Errorf("Executions(%s, %s) = %d trades, want none", w[0], w[1], len(ex))
		}
	}
	if ex := m.Executions("999999", day, day.Add(24*time.Hour)); ex != nil {
		t.Errorf("Executions(unknown) = %d trades, want nil", len(ex))
	}
}

func BenchmarkExecutionsMinute(b *testing.B) {
	m := New(1)
	day := kisfeed.Date(2026, time.November, 27)
	from := day.Add(10 * time.Hour)
	for b.Loop() {
		m.Executions("005930", from, from.Add(time.Second))
	}
}

// TestBookAroundExecutions checks that the book around an execution's
// price is OrderBookAt at its instant.
func TestBookAroundExecutions(t *testing.T) {
	t.Parallel()
	m := market()
	day := kisfeed.Date(2026, time.November, 27)
	for k, e := range m.Executions("000660", day.Add(9*time.Hour), day.Add(16*time.Hour)) {
		if k%97 != 0 {
			continue
		}
		got, ok := m.BookAround("000660", e.Time, e.Price)
		want, _ := m.OrderBookAt("000660", e.Time)
		got.Meta, want.Meta = kisfeed.Meta{}, kisfeed.Meta{}
		if !ok || got != want {
			t.Fatalf("BookAround(%s, %d) = %+v, OrderBookAt %+v", e.Time.Format("15:04:05.000"), e.Price, got, want)
		}
	}
	if _, ok := m.BookAround("999999", day, 1000); ok {
		t.Error("BookAround(unknown) ok")
	}
}
