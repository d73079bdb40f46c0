package emulator

import (
	"testing"
	"time"
)

// BenchmarkPeriodBars: the daily/weekly/monthly bars behind
// inquire-daily-itemchartprice and inquire-daily-price, a year back.
func BenchmarkPeriodBars(b *testing.B) {
	s, err := New(WithMarket(sharedMarket()), WithRate(0), WithMarketClock(func() time.Time { return marketTime }))
	if err != nil {
		b.Fatal(err)
	}
	sn := s.snapshot("005930", marketTime)
	from := sn.day.AddDate(-1, 0, 0)
	for _, period := range []string{"D", "W", "M"} {
		b.Run(period, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bars := s.periodBars(sn, from, sn.day, period); len(bars) == 0 {
					b.Fatal("no bars")
				}
			}
		})
	}
}
