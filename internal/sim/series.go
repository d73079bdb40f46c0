package sim

import "github.com/kisfeed/kisfeed/krx"

// day is one daily bar without its traded value (which needs the minute
// bars).
type day struct {
	open, high, low, close, volume int64
}

// drawClose draws day i's close from the previous close: a bounded random
// walk in basis points (sum of three uniforms, an occasional news day, a
// rare limit-up or limit-down day for generated shares),
// pulled towards the stock's anchor and turned back outside its band, on
// the tick grid and within the day's limits. Integer arithmetic only.
func (s *stock) drawClose(r *rng, prev int64) (closePx, ret int64) {
	v := s.volBp
	a, b, c, news := r.chunks(2*v+1, 2*v+1, 2*v+1, 250)
	ret = a + b + c - 3*v
	if news == 0 {
		ret *= 4 // news day
	}
	if s.jumpy && r.intn(2_000) == 0 {
		// Limit day (상한가/하한가): about one a day across the market.
		ret = 3_500 - 7_000*r.intn(2)
	}
	ret += s.revBp * (s.anchor - prev) / (s.anchor + prev)
	if (prev > s.bandHi && ret > 0) || (prev < s.bandLo && ret < 0) {
		ret = -ret
	}
	upper, lower := limits(prev)
	return clamp(roundTick(prev+prev*ret/10_000), lower, upper), ret
}

// dayRNG is the stream of day i of s: the stock's key (seed and code)
// xor the day's precomputed hash, so the hot series loop mixes nothing.
func (m *Market) dayRNG(s *stock, i int) rng {
	return rng{s: s.key ^ dayHash[i]}
}

// dayHash[i] is the hash of trading-day index i for the daily stream.
var dayHash = func() []uint64 {
	h := make([]uint64, len(cal().days))
	for i := range h {
		h[i] = mix(mix(uint64(i) ^ saltDay))
	}
	return h
}()

// series returns the memoised closes of s (computed on first use).
func (m *Market) series(s *stock) []int32 {
	s.once.Do(func() {
		n := len(cal().days)
		closes := make([]int32, n)
		prev := s.p0
		for i := s.first; i < n; i++ {
			r := m.dayRNG(s, i)
			c, _ := s.drawClose(&r, prev)
			closes[i] = int32(c)
			prev = c
		}
		s.closes = closes
	})
	return s.closes
}

// prevClose returns the base price of trading day i (i >= s.first).
func (m *Market) prevClose(s *stock, i int) int64 {
	if i <= s.first {
		return s.p0
	}
	return int64(m.series(s)[i-1])
}

// day returns the bar of trading day i (i >= s.first) without its value.
// It replays the day's stream: the close first (as series drew it), then
// open, high, low and volume.
func (m *Market) day(s *stock, i int) day {
	prev := m.prevClose(s, i)
	r := m.dayRNG(s, i)
	c, ret := s.drawClose(&r, prev)
	upper, lower := krx.Limits(prev)
	v := s.volBp

	// The open anticipates part of the day's move.
	gap := r.sym(v/2) + ret*r.intn(60)/100
	o := clamp(roundTick(prev+prev*gap/10_000), lower, upper)

	top, bot := max(o, c), min(o, c)
	h := clamp(krx.RoundUp(top+top*r.intn(v+1)*6/10/10_000), top, upper)
	l := clamp(krx.RoundDown(bot-bot*r.intn(v+1)*6/10/10_000), lower, bot)

	// Volume: busier on big moves.
	vol := s.avgVol * (40 + r.intn(121)) / 100
	vol = vol * (2*v + abs64(ret)) / (2 * v)
	// At least 500 so every anchor minute can trade; at most 2e9 so the
	// minute split's 32.32 fixed point cannot overflow.
	vol = clamp(vol, 500, 2_000_000_000)
	return day{open: o, high: h, low: l, close: c, volume: vol}
}
