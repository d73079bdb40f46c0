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

// profile is the U-shaped intraday volume profile of continuous trading:
// busy after the open and before the close, quiet at lunch.
var profile = func() (p [contBars]int64) {
	for k := range p {
		dk := int64(k - contBars/2)
		p[k] = 60 + dk*dk*300/(contBars/2*contBars/2)
	}
	p[0] *= 3 // the opening auction
	return p
}()

// u16 deals 16-bit uniforms, four per draw of r: the minute path needs
// about a thousand small random numbers a day.
type u16 struct {
	r   *rng
	buf uint64
	n   int
}

// intn returns a number in [0, n) for 0 < n <= 65,536.
func (u *u16) intn(n int64) int64 {
	if u.n == 0 {
		u.buf, u.n = u.r.next(), 4
	}
	x := u.buf & 0xffff
	u.buf >>= 16
	u.n--
	return int64(x * uint64(n) >> 16)
}

// extremeMinute draws the minute of the day's high or low: often in the
// first half hour or the last hour, as on real trading days.
func extremeMinute(r *rng) int {
	switch x := r.intn(10); {
	case x < 3:
		return int(r.intn(30))
	case x < 5:
		return contBars - 61 + int(r.intn(60))
	}
	return int(r.intn(contBars - 1))
}

// genMinutes builds the minute bars of day i of s whose daily bar is d
// into out and returns their total traded value. With out nil it only
// computes the value (the wick draws come last, so skipping them changes
// nothing else).
//
// Construction (all integer, on the tick ladder so every price is on
// tick): the day's volume is split over the minutes by a U-shaped profile
// (thin stocks get idle minutes with no trade); the minute closes follow
// random-walk bridges pinned at the open, at the high and the low (at two
// traded minutes) and at a last continuous price next to the close,
// clamped to [low, high]; idle minutes stay flat; the auction bar trades
// at the close. So the aggregate is exactly d, and every minute's value is
// its volume × its close.
func (m *Market) genMinutes(s *stock, i int, d day, out *minuteBuf) int64 {
	r := newRNG(m.seed, s.hash, int64(i), saltMinute)
	u := u16{r: &r}

	// Anchors: minutes where the high and the low trade.
	tH := extremeMinute(&r)
	tL := extremeMinute(&r)
	if tL == tH {
		tL = (tH + 1 + int(r.intn(contBars-2))) % (contBars - 1)
	}
	var vols [minuteBars]int64
	minuteVolumes(&vols, s, d, &r, &u, tH, tL)
	var p [contBars + 1]int64
	pricePath(&p, d, &r, &u, tH, tL)

	// Minute bars. Idle minutes stay at the last price.
	ixH, ixL := tickIdx(d.high), tickIdx(d.low)
	var value int64
	for k := range contBars {
		if vols[k] == 0 {
			p[k+1] = p[k]
			if out != nil {
				px := tickPrice(p[k])
				out[k] = mbar{open: px, high: px, low: px, close: px}
			}
			continue
		}
		cp := tickPrice(p[k+1])
		value += vols[k] * cp
		if out == nil {
			continue
		}
		o, c := p[k], p[k+1]
		hi, lo := max(o, c), min(o, c)
		switch wick := u.intn(10); {
		case wick < 2:
			hi = min(hi+1, ixH)
		case wick < 4:
			lo = max(lo-1, ixL)
		}
		out[k] = mbar{
			open: tickPrice(o), high: tickPrice(hi), low: tickPrice(lo), close: cp,
			volume: vols[k], value: vols[k] * cp,
		}
	}
	value += vols[auctionBar] * d.close
	if out != nil {
		out[auctionBar] = mbar{
			open: d.close, high: d.close, low: d.close, close: d.close,
			volume: vols[auctionBar], value: vols[auctionBar] * d.close,
		}
	}
	return value
}

// minuteVolumes splits day d's volume over the minutes into vols: a
// U-shaped profile, idle minutes for thin stocks, and a trade at each
// anchor (the open, tH, tL, the last continuous minute, the auction).
// It draws from r and u in a fixed order: the series depends on it.
func minuteVolumes(vols *[minuteBars]int64, s *stock, d day, r *rng, u *u16, tH, tL int) {
	forced := func(k int) bool { return k == 0 || k == tH || k == tL || k == contBars-1 }

	// Volume profile.
	var w [minuteBars]int64
	var total int64
	for k := range contBars {
		wk := profile[k] * (50 + u.intn(101))
		if s.idle > 0 && u.intn(65_536) < s.idle && !forced(k) {
			wk = 0
		}
		w[k] = wk
		total += wk
	}
	w[auctionBar] = max(total*(3+r.intn(6))/100, 1)
	total += w[auctionBar]

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
	// Anchors must trade: borrow a share from the busiest minute (daily
	// volume is at least 500, so it has two).
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
}

// pricePath fills p with day d's price path in ladder steps: p[k+1] is
// the close of minute k, p[0] the open; random-walk bridges pinned at the
// open, the high (minute tH), the low (minute tL) and a last continuous
// price next to the close. It draws from r and u in a fixed order.
func pricePath(p *[contBars + 1]int64, d day, r *rng, u *u16, tH, tL int) {
	ixO, ixH, ixL, ixC := tickIdx(d.open), tickIdx(d.high), tickIdx(d.low), tickIdx(d.close)
	ixEnd := clamp(ixC+r.sym(1), ixL, ixH)
	span := ixH - ixL
	// Step law: the free walk should wander about half the day's range:
	// uniform steps in [-k, k] for wide days, else ±1 with probability
	// pNum/65,536 each.
	var k, pNum int64
	if span >= 45 {
		k = span / 22
	} else {
		pNum = min(span*span*65_536/3_040, 32_768)
	}

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
		for j := from.t + 1; j <= to.t; j++ {
			switch {
			case k > 0:
				z += u.intn(2*k+1) - k
			case pNum > 0:
				x := u.intn(65_536)
				if x < pNum {
					z++
				} else if x < 2*pNum {
					z--
				}
			}
			p[j] = z
		}
		// Bridge: subtract the linear share of the miss, trunc(miss×j/n),
		// stepped without dividing.
		miss := z - (to.v - from.v)
		am := abs64(miss)
		qStep, rStep := am/n, am%n
		var q, rem int64
		for j := from.t + 1; j <= to.t; j++ {
			q += qStep
			rem += rStep
			if rem >= n {
				q++
				rem -= n
			}
			corr := q
			if miss < 0 {
				corr = -q
			}
			p[j] = clamp(from.v+p[j]-corr, ixL, ixH)
		}
		p[to.t] = to.v
	}
}

// dayValue returns the traded value of day i: the sum over its minute
// bars, memoised per stock and day.
func (m *Market) dayValue(s *stock, i int, d day) int64 {
	s.valOnce.Do(func() { s.values = make([]atomic.Int64, len(cal().days)) })
	if v := s.values[i].Load(); v != 0 {
		return v
	}
	v := m.genMinutes(s, i, d, nil)
	s.values[i].Store(v)
	return v
}
