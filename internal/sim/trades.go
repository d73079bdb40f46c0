package sim

import (
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// Executions: every minute bar of continuous trading is split into
// individual trades, deterministically (a stream per seed, stock, day and
// minute), so that a real-time feed (the emulator's WebSocket) and a
// snapshot (QuoteAt) tell the same story at every instant.
//
// The split of minute bar k with volume V > 0 and prices O/H/L/C:
//   - n trades, n growing with the intraday volume profile (busier at the
//     open and before the close), at most V, and at least enough to show
//     O, H, L and C when V allows;
//   - the first trade is at O, the last at C, one at H and one at L, the
//     others a ±1-tick walk clamped to [L, H] (all on the tick ladder);
//   - volumes are >= 1 and sum to V (the opening minute's first trade,
//     the opening auction, takes a large share);
//   - times are strictly increasing millisecond offsets in (0, 60 s) of
//     the minute's start, never 0: a trade is never at a minute boundary,
//     so QuoteAt at a boundary is the aggregate of complete bars exactly
//     as before trades existed. In the opening minute and the last
//     continuous minute, half the trades crowd into the first 3 seconds
//     (busy moments, where a feed packs several trades in one frame).
//
// The closing-auction bar (15:30) is one trade of its whole volume at
// 15:30:00 exactly, the instant QuoteAt starts to include it.
//
// A bar whose volume is smaller than the number of distinct prices it
// shows (a 1-share minute with a wick) keeps the close and drops what it
// cannot show; its wick then appears in QuoteAt only from the next
// minute boundary. Such bars are rare and only move High/Low.
//
// Traded value: the minute bars price a minute's whole volume at its
// close (V × C); trades carry their own price, so inside a minute the
// cumulative value is complete bars' value plus Σ volume × price of the
// minute's trades so far, and it snaps to the bar's V × C at the next
// boundary.

// Trade is one execution of the synthetic market.
type Trade struct {
	// Time is the execution instant (KST), millisecond precision.
	Time time.Time
	// Price is the execution price, on the tick grid.
	Price int64
	// Volume is the number of shares traded, at least 1.
	Volume int64
}

// Execution is a trade with the session's running figures right after
// it: Open, High, Low, CumVolume and CumValue are exactly QuoteAt(code,
// Time)'s Open, High, Low, Volume and TradingValue, and Price its Price.
type Execution struct {
	Trade
	// Open, High and Low are the session's so far, this trade included.
	Open, High, Low int64
	// CumVolume and CumValue are the session's volume and traded value so
	// far, this trade included.
	CumVolume, CumValue int64
	// PrevClose is the day's base price (the previous close).
	PrevClose int64
}

// trade is a trade in compact form: ms offset from its minute's start.
type trade struct {
	off, px, vol int64
}

// maxTrades bounds the trades of one minute.
const maxTrades = 200

// burstMs is how long the crowd of trades at a busy minute's start lasts.
const burstMs = 3_000

// tradeCount is how many trades minute k with volume vol and bar b has.
func tradeCount(k int, b *mbar, r *rng) int64 {
	if k == auctionBar {
		return 1
	}
	n := 4 + profile[k]*(50+r.intn(101))/1_000
	n = min(n, maxTrades, b.volume)
	ixO, ixC := tickIdx(b.open), tickIdx(b.close)
	ixH, ixL := tickIdx(b.high), tickIdx(b.low)
	need := int64(2)
	if ixH != ixO && ixH != ixC {
		need++
	}
	if ixL != ixO && ixL != ixC {
		need++
	}
	if ixO == ixC && need == 2 && ixH == ixL {
		need = 1
	}
	return max(n, min(need, b.volume))
}

// minuteTrades splits bar b (minute k of trading day i of s) into trades,
// appended to out; nothing for a minute without volume.
func (m *Market) minuteTrades(s *stock, i, k int, b *mbar, out []trade) []trade {
	if b.volume <= 0 {
		return out
	}
	r := newRNG(m.seed, s.hash, int64(i)*1_000+int64(k), saltTrade)
	n := tradeCount(k, b, &r)
	if k == auctionBar {
		return append(out, trade{off: 0, px: b.close, vol: b.volume})
	}
	start := len(out)
	out = tradePrices(out, b, n, &r)
	ts := out[start:]
	tradeVolumes(ts, k, b.volume, &r)
	tradeTimes(ts, k, &r)
	return out
}

// tradePrices appends n trades priced as the split describes.
func tradePrices(out []trade, b *mbar, n int64, r *rng) []trade {
	ixO, ixC := tickIdx(b.open), tickIdx(b.close)
	ixH, ixL := tickIdx(b.high), tickIdx(b.low)
	if n == 1 {
		return append(out, trade{px: b.close})
	}
	// Positions of the high and the low among the middle trades; -1 when
	// the open or the close already shows it or there is no room.
	posH, posL := int64(-1), int64(-1)
	mid := n - 2
	if ixH != ixO && ixH != ixC && mid > 0 {
		posH = 1 + r.intn(mid)
	}
	if ixL != ixO && ixL != ixC && mid > 0 {
		posL = 1 + r.intn(mid)
		if posL == posH {
			if mid < 2 {
				posL = -1
			} else {
				posL = 1 + (posH-1+1+r.intn(mid-1))%mid
			}
		}
	}
	ix := ixO
	for j := range n {
		switch {
		case j == 0:
			ix = ixO
		case j == n-1:
			ix = ixC
		case j == posH:
			ix = ixH
		case j == posL:
			ix = ixL
		default:
			ix = clamp(ix+r.sym(1), ixL, ixH)
		}
		out = append(out, trade{px: tickPrice(ix)})
	}
	return out
}

// tradeVolumes gives every trade one share and spreads the rest of vol by
// random weights; the opening minute's first trade (the opening auction)
// weighs 20 times more.
func tradeVolumes(ts []trade, k int, vol int64, r *rng) {
	var w [maxTrades]int64
	var total int64
	for j := range ts {
		w[j] = 1 + r.intn(16)
		if k == 0 && j == 0 {
			w[j] *= 20
		}
		total += w[j]
	}
	extra := vol - int64(len(ts))
	var given int64
	for j := range ts {
		share := extra * w[j] / total
		ts[j].vol = 1 + share
		given += share
	}
	for j := 0; given < extra; j = (j + 1) % len(ts) {
		ts[j].vol++
		given++
	}
}

// tradeTimes sets strictly increasing offsets in [1, 59,999] ms: evenly
// stratified with a random place in each slot; in a busy minute (the open,
// the last continuous minute) the first half crowds into burstMs.
func tradeTimes(ts []trade, k int, r *rng) {
	n := int64(len(ts))
	spread := func(from, to int64, part []trade) {
		if len(part) == 0 {
			return
		}
		w := (to - from) / int64(len(part))
		for j := range part {
			part[j].off = from + int64(j)*w + r.intn(w)
		}
	}
	if k == 0 || k == contBars-1 {
		h := n / 2
		spread(1, burstMs, ts[:h])
		spread(burstMs, 60_000, ts[h:])
		return
	}
	spread(1, 60_000, ts)
}

// tradeDay resolves the session instant t for s: the trading-day index,
// and when t lies inside continuous trading, the minute bar in progress
// and the milliseconds elapsed in it (k = -1 otherwise).
func tradeDay(i int, t time.Time) (k int, elapsed int64) {
	open := cal().days[i].Add(secOpen * time.Second)
	d := t.Sub(open)
	if d < 0 || d >= contBars*time.Minute {
		return -1, 0
	}
	return int(d / time.Minute), int64(d % time.Minute / time.Millisecond)
}

// running accumulates a session's figures over bars and trades.
type running struct {
	started             bool
	open, high, low, px int64
	vol, value          int64
}

func (a *running) bar(b *mbar) {
	if !a.started {
		a.started, a.open, a.high, a.low = true, b.open, b.high, b.low
	}
	a.high, a.low = max(a.high, b.high), min(a.low, b.low)
	a.vol += b.volume
	a.value += b.value
	a.px = b.close
}

func (a *running) trade(t trade) {
	if !a.started {
		a.started, a.open, a.high, a.low = true, t.px, t.px, t.px
	}
	a.high, a.low = max(a.high, t.px), min(a.low, t.px)
	a.vol += t.vol
	a.value += t.vol * t.px
	a.px = t.px
}

// Executions returns the trades of code with from < Time <= to, oldest
// first, each with the session's running figures (see [Execution]). It
// covers at most the 8 trading days up to to: it is meant for the short
// windows of a feed, not for history. Nil for an unknown code.
func (m *Market) Executions(code string, from, to time.Time) []Execution {
	s, ok := m.byCode[code]
	if !ok || !to.After(from) {
		return nil
	}
	c := cal()
	lo, hi := c.span(from, to)
	lo = max(lo, s.first, hi-7)
	var out []Execution
	var buf minuteBuf
	var ts []trade
	for i := lo; i <= hi; i++ {
		open := c.days[i].Add(secOpen * time.Second)
		if !to.After(open) || from.After(c.days[i].Add(secClose*time.Second)) {
			continue
		}
		m.genMinutes(s, i, m.day(s, i), &buf)
		prev := m.prevClose(s, i)
		var base running
		for k := range minuteBars {
			start := minuteTime(i, k)
			if start.After(to) {
				break
			}
			if !start.Add(time.Minute).After(from) || buf[k].volume == 0 {
				base.bar(&buf[k])
				continue
			}
			ts = m.minuteTrades(s, i, k, &buf[k], ts[:0])
			acc := base
			for _, t := range ts {
				acc.trade(t)
				at := start.Add(time.Duration(t.off) * time.Millisecond)
				if !at.After(from) || at.After(to) {
					continue
				}
				out = append(out, Execution{
					Trade: Trade{Time: at, Price: t.px, Volume: t.vol},
					Open:  acc.open, High: acc.high, Low: acc.low,
					CumVolume: acc.vol, CumValue: acc.value, PrevClose: prev,
				})
			}
			base.bar(&buf[k])
		}
	}
	return out
}

// partialQuote fills q from the session of day i at t: complete bars
// [0, bars) of buf plus, inside continuous trading, the trades of the
// minute in progress up to t. It reports false when nothing has traded
// yet (q untouched).
func (m *Market) partialQuote(s *stock, i, bars int, t time.Time, buf *minuteBuf, q *kisfeed.Quote) bool {
	var a running
	for k := 0; k < bars; k++ {
		a.bar(&buf[k])
	}
	asOf := time.Time{}
	if bars > 0 {
		asOf = minuteTime(i, bars-1)
	}
	if k, elapsed := tradeDay(i, t); k == bars && k >= 0 {
		var ts [maxTrades]trade
		for _, tr := range m.minuteTrades(s, i, k, &buf[k], ts[:0]) {
			if tr.off > elapsed {
				break
			}
			a.trade(tr)
			asOf = minuteTime(i, k).Add(time.Duration(tr.off) * time.Millisecond)
		}
	}
	if !a.started {
		return false
	}
	q.Price, q.Open, q.High, q.Low = a.px, a.open, a.high, a.low
	q.Volume, q.TradingValue = a.vol, a.value
	q.Meta.AsOf = asOf
	return true
}

// SessionOpen reports whether t is inside the regular session of a KRX
// trading day (09:00 ≤ t < 15:30 KST), when a feed sends trades and books.
func SessionOpen(t time.Time) bool {
	if !krx.IsTradingDay(t) {
		return false
	}
	return !t.Before(krx.OpenTime(t)) && t.Before(krx.CloseTime(t))
}
