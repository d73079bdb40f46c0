package emulator

import (
	"strings"
	"time"

	"github.com/kisfeed/kisfeed/krx"
)

// Minute bars: inquire-time-itemchartprice and inquire-time-dailychartprice
// (REFERENCE §d.4, §d.5).

// minuteOutput1 is the output1 of the minute charts: the quote summary.
func minuteOutput1(sn *snap) obj { return quoteHead(sn, 8) }

// quoteHead is the quote summary that heads the chart outputs (output1 of
// the minute charts, the first fields of the daily chart's), with room for
// size fields.
func quoteHead(sn *snap, size int) obj {
	q := sn.q
	return append(make(obj, 0, size), obj{
		{"prdy_vrss", itoa(q.Change)},
		{"prdy_vrss_sign", sign(q.Price, q.PrevClose, q.UpperLimit, q.LowerLimit)},
		{"prdy_ctrt", fixed(q.ChangeRate, 2)},
		{"stck_prdy_clpr", itoa(q.PrevClose)},
		{"acml_vol", itoa(q.Volume)},
		{"acml_tr_pbmn", itoa(q.TradingValue)},
		{"hts_kor_isnm", sn.st.Name},
		{"stck_prpr", itoa(q.Price)},
	}...)
}

// minuteRows returns up to n rows, newest first, of the minute bars of day
// whose start is at or before cutoff (an instant) and, for the session
// day, already included in the quote (bar time <= Quote.Meta.AsOf, the
// time of the last included bar — so the rows always add up to output1).
// acml_tr_pbmn is the cumulative traded value up to each bar.
func (s *Server) minuteRows(code string, day, cutoff time.Time, asOf time.Time, n int) []obj {
	bars := s.m.MinuteBars(code, day)
	cum := make([]int64, len(bars))
	var acc int64
	last := -1
	for i, b := range bars {
		acc += b.Value
		cum[i] = acc
		if b.Time.After(cutoff) || (!asOf.IsZero() && b.Time.After(asOf)) {
			break
		}
		last = i
	}
	out := make([]obj, 0, min(n, last+1))
	for i := last; i >= 0 && len(out) < n; i-- {
		b := bars[i]
		out = append(out, obj{
			{"stck_bsop_date", ymd(day)},
			{"stck_cntg_hour", hms(b.Time)},
			{"stck_prpr", itoa(b.Close)},
			{"stck_oprc", itoa(b.Open)},
			{"stck_hgpr", itoa(b.High)},
			{"stck_lwpr", itoa(b.Low)},
			{"cntg_vol", itoa(b.Volume)},
			{"acml_tr_pbmn", itoa(cum[i])},
		})
	}
	return out
}

func (s *Server) inquireTimeItemChart(d *dataReq) *reply {
	code := d.stock()
	hour := d.hour("FID_INPUT_HOUR_1")
	d.enum("FID_PW_DATA_INCU_YN", "Y", "N")
	// FID_ETC_CLS_CODE must be sent, blank (REFERENCE §d.4).
	d.require("FID_ETC_CLS_CODE")
	if rep := d.failed(); rep != nil {
		return rep
	}
	sn := s.snapshot(code, d.now)
	var out []obj
	if sn.known {
		// "Today" is the session the quote shows: today's completed bars
		// on a trading day (none before 09:00), the last trading day's on
		// a holiday. A future FID_INPUT_HOUR_1 means "now" because bars
		// beyond the quote's AsOf are never included.
		cutoff := sn.day.Add(hour)
		asOf := sn.q.Meta.AsOf
		if !sn.todayStarted() {
			asOf = sn.day.Add(-time.Nanosecond) // nothing of the session day yet
		}
		out = s.minuteRows(code, sn.day, cutoff, asOf, minuteChartRows)
	}
	return okReply(msg1OK, one("output1", minuteOutput1(sn)), rows("output2", out))
}

// minuteHistory is how far back inquire-time-dailychartprice serves
// (REFERENCE §d.5: KIS keeps about one year).
const minuteHistory = 365 * 24 * time.Hour

func (s *Server) inquireTimeDailyChart(d *dataReq) *reply {
	code := d.stock()
	hour := d.hour("FID_INPUT_HOUR_1")
	day := d.date("FID_INPUT_DATE_1")
	d.enum("FID_PW_DATA_INCU_YN", "Y", "N")
	// FID_FAKE_TICK_INCU_YN is optional per REFERENCE §d.5 (must be blank
	// when sent); one client reports KIS rejecting its absence, but the
	// documented reading is kept.
	if v, ok := d.param("FID_FAKE_TICK_INCU_YN"); ok && strings.TrimSpace(v) != "" && v != "N" {
		d.fail(errField())
	}
	if rep := d.failed(); rep != nil {
		return rep
	}
	sn := s.snapshot(code, d.now)
	var out []obj
	if sn.known && krx.IsTradingDay(day) && !day.After(sn.day) && d.now.Sub(day) <= minuteHistory {
		var asOf time.Time
		if day.Equal(sn.day) {
			asOf = sn.q.Meta.AsOf
			if !sn.todayStarted() {
				asOf = day.Add(-time.Nanosecond)
			}
		}
		out = s.minuteRows(code, day, day.Add(hour), asOf, pastMinuteRows)
	}
	// output1 describes the current quote (which day it shows is
	// unconfirmed at KIS; the current one is what d.4 does).
	return okReply(msg1OK, one("output1", minuteOutput1(sn)), rows("output2", out))
}
