package emulator

import (
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/krx"
)

// inquire-daily-itemchartprice (REFERENCE §d.3) and the period bars it
// shares with inquire-daily-price.

// periodBar is one D/W/M/Y bar with the close before its first day.
type periodBar struct {
	kisfeed.Candle
	prevClose int64
	upper     int64 // daily limits (D only; 0 otherwise)
	lower     int64
}

// sign is the bar's prdy_vrss_sign. Only day bars carry limits, so only
// they can be 1 (upper limit) or 4 (lower limit); longer bars are up,
// down or unchanged.
func (b periodBar) sign() string { return sign(b.Close, b.prevClose, b.upper, b.lower) }

// periodBars returns the bars of code for trading days in [from, to],
// grouped by period ("D", "W", "M", "Y"), oldest first. Complete daily bars
// come from the market; the session day, when it has started and lies in
// the window, contributes its partial bar from the quote. Days after the
// session never appear. Each period is labelled with its first trading day
// inside the window (the kisfeed.Candle convention), so paging backwards by
// "oldest date − 1 day" never splits or repeats a bar.
func (s *Server) periodBars(sn *snap, from, to time.Time, period string) []periodBar {
	code := sn.st.Code
	lastComplete := sn.day.AddDate(0, 0, -1)
	if sn.todayStarted() && !sn.q.Meta.AsOf.Before(krx.CloseTime(sn.day)) {
		lastComplete = sn.day // after the close the day's bar is final
	}
	end := to
	if end.After(lastComplete) {
		end = lastComplete
	}
	var daily []kisfeed.Candle
	if !end.Before(from) {
		daily = s.m.DailyBars(code, from, end)
	}
	if sn.todayStarted() && lastComplete.Before(sn.day) && !sn.day.Before(from) && !sn.day.After(to) {
		q := sn.q
		daily = append(daily, kisfeed.Candle{Time: sn.day, Open: q.Open, High: q.High, Low: q.Low,
			Close: q.Price, Volume: q.Volume, Value: q.TradingValue})
	}
	bars := sim.Aggregate(daily, chartPeriods[period])
	out := make([]periodBar, len(bars))
	for i, b := range bars {
		out[i].Candle = b
		if pc, ok := s.m.PrevClose(code, b.Time); ok {
			out[i].prevClose = pc
			if period == "D" {
				out[i].upper, out[i].lower = krx.Limits(pc)
			}
		}
	}
	return out
}

// chartPeriods maps FID_PERIOD_DIV_CODE to the period its bars cover.
var chartPeriods = map[string]sim.Period{
	"D": sim.PeriodDay, "W": sim.PeriodWeek, "M": sim.PeriodMonth, "Y": sim.PeriodYear,
}

func (s *Server) chartOutput1(sn *snap, now time.Time) obj {
	q, st, info := sn.q, sn.st, sn.info
	var book kisfeed.OrderBook
	if sn.known {
		book, _ = s.m.OrderBookAt(st.Code, now)
	}
	f := fundamentals{}
	if sn.known {
		f = fundOf(st.Code)
	}
	shares := st.ListedShares
	per, pbr, eps, _ := valuation(sn, f)
	p := sn.prev
	if !sn.hasPrev {
		p = kisfeed.Candle{}
	}
	// The head is the quote summary the minute charts answer too.
	return append(quoteHead(sn, 30), obj{
		{"stck_shrn_iscd", st.Code},
		{"prdy_vol", itoa(p.Volume)},
		{"stck_mxpr", itoa(q.UpperLimit)},
		{"stck_llam", itoa(q.LowerLimit)},
		{"stck_oprc", itoa(q.Open)},
		{"stck_hgpr", itoa(q.High)},
		{"stck_lwpr", itoa(q.Low)},
		{"stck_prdy_oprc", itoa(p.Open)},
		{"stck_prdy_hgpr", itoa(p.High)},
		{"stck_prdy_lwpr", itoa(p.Low)},
		{"askp", itoa(book.Asks[0].Price)},
		{"bidp", itoa(book.Bids[0].Price)},
		{"prdy_vrss_vol", itoa(q.Volume - p.Volume)},
		{"vol_tnrt", ratio(q.Volume, shares, 2)},
		{"stck_fcam", itoa(info.ParValue)},
		{"lstn_stcn", itoa(shares)},
		{"cpfn", itoa(info.Capital / 100_000_000)},
		{"hts_avls", itoa(q.Price * shares / 100_000_000)},
		{"per", per},
		{"eps", eps},
		{"pbr", pbr},
		{"itewhol_loan_rmnd_ratem", fixed(f.loan, 4)},
	}...)
}

func (s *Server) inquireDailyItemChart(d *dataReq) *reply {
	code := d.stock()
	from := d.date("FID_INPUT_DATE_1")
	to := d.date("FID_INPUT_DATE_2")
	period := d.enum("FID_PERIOD_DIV_CODE", "D", "W", "M", "Y")
	// 0 adjusted, 1 original: the synthetic market has no corporate
	// actions, so both series are the same; the value is still checked.
	d.enum("FID_ORG_ADJ_PRC", "0", "1")
	if rep := d.failed(); rep != nil {
		return rep
	}
	sn := s.snapshot(code, d.now)
	var out []obj
	if sn.known && !to.Before(from) {
		bars := s.periodBars(sn, from, to, period)
		for i := len(bars) - 1; i >= 0 && len(out) < dailyChartRows; i-- {
			b := bars[i]
			change := b.Close - b.prevClose
			out = append(out, obj{
				{"stck_bsop_date", ymd(b.Time)},
				{"stck_clpr", itoa(b.Close)},
				{"stck_oprc", itoa(b.Open)},
				{"stck_hgpr", itoa(b.High)},
				{"stck_lwpr", itoa(b.Low)},
				{"acml_vol", itoa(b.Volume)},
				{"acml_tr_pbmn", itoa(b.Value)},
				{"flng_cls_code", "00"},
				{"prtt_rate", "0.00"},
				{"mod_yn", yn(b.Volume == 0)},
				{"prdy_vrss_sign", b.sign()},
				{"prdy_vrss", itoa(change)},
				{"revl_issu_reas", ""},
			})
		}
	}
	// Unknown code: output1 all zero (python-kis checks stck_prpr "0") and
	// no rows.
	return okReply(msg1OK, one("output1", s.chartOutput1(sn, d.now)), rows("output2", out))
}
