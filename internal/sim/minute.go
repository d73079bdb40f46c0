package sim

import (
	"math/bits"
	"sync/atomic"
)

// Minute bars: 380 one-minute bars of continuous trading (09:00 … 15:19)
// and one closing-auction bar at 15:30.
const (
	contBars   = 380
	minuteBars = contBars + 1
	auctionBar = contBars
)

// mbar is one minute bar in compact form.
type mbar struct {
	open, high, low, close, volume, value int64
}

// minuteBuf holds one day's minute bars; callers keep it on the stack.
type minuteBuf [minuteBars]mbar

// genMinutes builds the minute bars of day i of s whose daily bar is d.
//
// Construction (all integer, on the tick ladder so every price is on
// tick): the day's volume is split over the minutes by a U-shaped profile
// (thin stocks get idle minutes with no trade); the minute closes follow
// random-walk bridges pinned at the open, at the high and the low (at two
// random traded minutes) and at a last continuous price next to the
// close, clamped to [low, high]; idle minutes stay flat; the auction bar
// trades at the close. So the aggregate is exactly d, and every minute's
// value is its volume × its close.
func (m *Market) genMinutes(s *stock, i int, d day, out *minuteBuf) {
	r := newRNG(m.seed, s.hash, int64(i), saltMinute)

	// Anchors: minutes where the high and the low trade.
	tH := int(r.intn(contBars - 1))
	tL := int(r.intn(contBars - 2))
	if tL >= tH {
		tL++
	}
	forced := func(k int) bool { return k == 0 || k == tH || k == tL || k == contBars-1 }

	// Volume profile.
	var w [minuteBars]int64
	var total int64
	for k := 0; k < contBars; k++ {
		dk := int64(k - contBars/2)
		wk := (60 + dk*dk*300/(contBars/2*contBars/2)) * (50 + r.intn(101))
		if k == 0 {
			wk *= 3 // the opening auction
		}
		if s.idle > 0 && !forced(k) && r.intn(65_536) < s.idle {
			wk = 0
		}
		w[k] = wk
		total += wk
	}
	w[auctionBar] = max(total*(3+r.intn(6))/100, 1)
	total += w[auctionBar]

	var vols [minuteBars]int64
	var sum int64
	// vols[k] = volume × w[k] / total, in 32.32 fixed point: one division
	// instead of 381.
	scale := uint64(d.volume) << 32 / uint64(total)
	for k := range vols {
		hi, lo := bits.Mul64(uint64(w[k]), scale)
		vols[k] = int64(hi<<32 | lo>>32)
		sum += vols[k]
	}
	// The remainder goes one share each to weighted minutes, cycling from
	// a random start.
	start := int(r.intn(minuteBars))
	for k := 0; sum < d.volume; k++ {
		j := (start + k) % minuteBars
		if w[j] > 0 {
			vols[j]++
			sum++
		}
	}
	// Anchors must trade: borrow a share from the busiest minute.
	for _, k := range [...]int{0, tH, tL, contBars - 1, auctionBar} {
		if vols[k] == 0 {
			busiest := 0
			for j := range vols {
				if vols[j] > vols[busiest] {
					busiest = j
				}
			}
			vols[busiest]--
			vols[k]++
		}
	}

	// Price path in ladder steps: p[k+1] is the close of minute k, p[0]
	// the open.
	ixO, ixH, ixL, ixC := tickIdx(d.open), tickIdx(d.high), tickIdx(d.low), tickIdx(d.close)
	ixEnd := clamp(ixC+r.sym(1), ixL, ixH)
	span := ixH - ixL
	// Step law: the free walk should wander about half the day's range.
	var k, pNum int64
	if span >= 45 {
		k = span / 22
	} else {
		pNum = min(span*span*65_536/3_040, 32_768)
	}
	step := func() int64 {
		if k > 0 {
			return r.sym(k)
		}
		if pNum == 0 {
			return 0
		}
		u := r.intn(65_536)
		switch {
		case u < pNum:
			return 1
		case u < 2*pNum:
			return -1
		}
		return 0
	}

	var p [contBars + 1]int64
	type anchor struct {
		t int // position in p
		v int64
	}
	a1, a2 := anchor{tH + 1, ixH}, anchor{tL + 1, ixL}
	if a2.t < a1.t {
		a1, a2 = a2, a1
	}
	anchors := [...]anchor{{0, ixO}, a1, a2, {contBars, ixEnd}}
	p[0] = ixO
	for seg := 0; seg+1 < len(anchors); seg++ {
		from, to := anchors[seg], anchors[seg+1]
		n := int64(to.t - from.t)
		var z int64
		for j := int64(1); j <= n; j++ {
			z += step()
			p[from.t+int(j)] = z
		}
		// Bridge: subtract the linear drift that would miss the target.
		miss := z - (to.v - from.v)
		for j := int64(1); j <= n; j++ {
			pos := from.t + int(j)
			p[pos] = clamp(from.v+p[pos]-miss*j/n, ixL, ixH)
		}
		p[to.t] = to.v
	}

	// Minute bars. Idle minutes stay at the last price.
	for k := 0; k < contBars; k++ {
		if vols[k] == 0 {
			p[k+1] = p[k]
		}
		o, c := p[k], p[k+1]
		hi, lo := max(o, c), min(o, c)
		if vols[k] > 0 {
			wick := r.intn(10)
			if wick < 2 {
				hi = min(hi+1, ixH)
			} else if wick < 4 {
				lo = max(lo-1, ixL)
			}
		}
		cp := tickPrice(c)
		out[k] = mbar{
			open: tickPrice(o), high: tickPrice(hi), low: tickPrice(lo), close: cp,
			volume: vols[k], value: vols[k] * cp,
		}
	}
	out[auctionBar] = mbar{
		open: d.close, high: d.close, low: d.close, close: d.close,
		volume: vols[auctionBar], value: vols[auctionBar] * d.close,
	}
}

// dayValue returns the traded value of day i: the sum over its minute
// bars, memoised per stock and day.
func (m *Market) dayValue(s *stock, i int, d day) int64 {
	s.valOnce.Do(func() { s.values = make([]atomic.Int64, len(cal().days)) })
	if v := s.values[i].Load(); v != 0 {
		return v
	}
	var buf minuteBuf
	m.genMinutes(s, i, d, &buf)
	var v int64
	for k := range buf {
		v += buf[k].value
	}
	s.values[i].Store(v)
	return v
}
