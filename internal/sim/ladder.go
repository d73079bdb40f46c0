package sim

import "github.com/kisfeed/kisfeed/krx"

// The tick ladder numbers every on-tick price consecutively (1 → 0,
// 2 → 1, …, 1999 → 1998, 2000 → 1999, 2005 → 2000, …), so a random walk
// in ladder steps stays on the KRX tick grid whatever the price level. It
// mirrors krx.TickSize; a test checks that the two agree.
var ladder = [...]struct{ from, tick, base int64 }{
	{1, 1, 0},
	{2_000, 5, 1_999},
	{5_000, 10, 2_599},
	{20_000, 50, 4_099},
	{50_000, 100, 4_699},
	{200_000, 500, 6_199},
	{500_000, 1_000, 6_799},
}

// tickIdx returns the ladder index of an on-tick price (p >= 1).
func tickIdx(p int64) int64 {
	for k := len(ladder) - 1; k > 0; k-- {
		if p >= ladder[k].from {
			return ladder[k].base + (p-ladder[k].from)/ladder[k].tick
		}
	}
	if p < 1 {
		return 0
	}
	return p - 1
}

// priceTable caches tickPrice for the ladder indices prices of the
// simulation use (up to about 3.7 million won); minute bars convert every
// price through it.
var priceTable = func() []int64 {
	t := make([]int64, 10_000)
	for i := range t {
		t[i] = tickPriceSlow(int64(i))
	}
	return t
}()

// tickPrice returns the price at ladder index i (i >= 0).
func tickPrice(i int64) int64 {
	if i >= 0 && i < int64(len(priceTable)) {
		return priceTable[i]
	}
	return tickPriceSlow(i)
}

func tickPriceSlow(i int64) int64 {
	for k := len(ladder) - 1; k > 0; k-- {
		if i >= ladder[k].base {
			return ladder[k].from + (i-ladder[k].base)*ladder[k].tick
		}
	}
	if i < 0 {
		return 1
	}
	return i + 1
}

// roundTick returns the on-tick price nearest p (ties round down), at
// least 1.
func roundTick(p int64) int64 {
	if p < 1 {
		return 1
	}
	t := krx.TickSize(p)
	r := modTick(p, t)
	if r == 0 {
		return p
	}
	// The tick-table boundaries are multiples of both neighbouring ticks,
	// so p-r and p-r+t are on tick.
	if t-r < r {
		return p - r + t
	}
	return p - r
}

func clamp(v, lo, hi int64) int64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// modTick returns p % t for a tick size t. Constant divisors compile to
// multiplications; the daily walk does this several times per day and
// stock.
func modTick(p, t int64) int64 {
	switch t {
	case 1:
		return 0
	case 5:
		return p % 5
	case 10:
		return p % 10
	case 50:
		return p % 50
	case 100:
		return p % 100
	case 500:
		return p % 500
	case 1_000:
		return p % 1_000
	}
	return p % t
}

// limits is krx.Limits with cheaper rounding; a test checks that the two
// agree for every base price up to 3,000,000 won.
func limits(base int64) (upper, lower int64) {
	width := base * 30 / 100
	upper = base + width
	if upper < 1 {
		upper = 1
	} else {
		upper -= modTick(upper, krx.TickSize(upper))
	}
	lower = base - width
	if lower < 1 {
		return upper, 1
	}
	t := krx.TickSize(lower)
	if r := modTick(lower, t); r != 0 {
		lower += t - r
	}
	return upper, lower
}
