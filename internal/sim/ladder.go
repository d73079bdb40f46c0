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

// tickPrice returns the price at ladder index i (i >= 0).
func tickPrice(i int64) int64 {
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
	d, u := krx.RoundDown(p), krx.RoundUp(p)
	if u-p < p-d {
		return u
	}
	return d
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
