package sim

import (
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Benchmarks for the speed goals (see the package report): New < 100 ms,
// DailyBar a few µs amortised, MinuteBars well under 100 µs, QuoteAt and
// OrderBookAt ≲ 50 µs.

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		New(int64(b.N))
	}
}

// BenchmarkUniverseFirstCall walks every stock's series: a new seed each
// time, so the per-seed memo never answers.
func BenchmarkUniverseFirstCall(b *testing.B) {
	seed := int64(1 << 40)
	for b.Loop() {
		seed++
		New(seed).Universe()
	}
}

// BenchmarkDailyBarCold walks one stock's whole history on a fresh market
// each time: series, bars and values computed from scratch.
func BenchmarkDailyBarCold(b *testing.B) {
	days := cal().days
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		b.StopTimer()
		m := New(int64(n))
		b.StartTimer()
		for _, d := range days {
			m.DailyBar("005930", d)
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*len(days)), "ns/bar")
}

// BenchmarkDailyBarWarm reads bars already memoised.
func BenchmarkDailyBarWarm(b *testing.B) {
	m := New(7)
	days := cal().days
	for _, d := range days {
		m.DailyBar("005930", d)
	}
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		m.DailyBar("005930", days[k%len(days)])
		k++
	}
}

func BenchmarkMinuteBars(b *testing.B) {
	m := New(7)
	day := kisfeed.Date(2024, time.March, 5)
	m.MinuteBars("005930", day)
	b.ReportAllocs()
	for b.Loop() {
		m.MinuteBars("005930", day)
	}
}

func BenchmarkQuoteAt(b *testing.B) {
	m := New(7)
	u := m.Universe()
	t0 := kisfeed.Date(2026, time.November, 27).Add(11*time.Hour + 17*time.Minute)
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		m.QuoteAt(u[k%len(u)].Code, t0)
		k++
	}
}

func BenchmarkOrderBookAt(b *testing.B) {
	m := New(7)
	u := m.Universe()
	t0 := kisfeed.Date(2026, time.November, 27).Add(11*time.Hour + 17*time.Minute)
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		m.OrderBookAt(u[k%len(u)].Code, t0)
		k++
	}
}

// BenchmarkQuoteAtParallel is the emulator's inquire-price load: random
// stocks at one instant, from every core.
func BenchmarkQuoteAtParallel(b *testing.B) {
	m := New(7)
	u := m.Universe()
	t0 := kisfeed.Date(2026, time.November, 27).Add(11*time.Hour + 17*time.Minute)
	b.RunParallel(func(pb *testing.PB) {
		k := 0
		for pb.Next() {
			m.QuoteAt(u[k%len(u)].Code, t0)
			k += 7
		}
	})
}
