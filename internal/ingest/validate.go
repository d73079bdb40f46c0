package ingest

import (
	"fmt"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// tickTableSince is when KRX unified the KOSPI and KOSDAQ tick tables into
// the one krx.TickSize implements (REFERENCE §i gives 2023 and calls the
// exact day unconfirmed; 2023-01-25 is the announced date). Older bars were
// priced on the previous tables, under which some prices valid then (a
// KOSDAQ 250,100) are off today's grid, so the tick check starts here.
var tickTableSince = kisfeed.Date(2023, 1, 25)

// validator checks bars between fetch and store. A bar that fails any rule
// is rejected with the first reason found, never stored.
type validator struct {
	universe map[string]kisfeed.Stock
}

// check returns "" when b is sound, else why it is not. (Bars outside the
// window are the caller's business: they were not asked for.) prevClose is the
// previous trading day's close the daily limit derives from; 0 skips the
// limit rule (no trustworthy reference: a new listing, or a previous bar
// that was itself rejected).
func (v *validator) check(b kisfeed.DailyBar, prevClose int64) string {
	if err := kisfeed.ValidateCode(b.Code); err != nil {
		return fmt.Sprintf("code %q malformed", b.Code)
	}
	if _, ok := v.universe[b.Code]; !ok {
		return fmt.Sprintf("code %s not in the universe", b.Code)
	}
	if b.Date.IsZero() {
		return "date missing"
	}
	day := kisfeed.Day(b.Date)
	if !krx.IsTradingDay(day) {
		return fmt.Sprintf("date %s is not a trading day", day.Format(time.DateOnly))
	}
	bad, missing := shapeProblems(b)
	if missing {
		return strings.Join(bad, "; ")
	}
	if prevClose > 0 {
		upper, lower := krx.Limits(prevClose)
		if b.High > upper {
			bad = append(bad, fmt.Sprintf("high %d above the upper limit %d (previous close %d)", b.High, upper, prevClose))
		}
		if b.Low < lower {
			bad = append(bad, fmt.Sprintf("low %d below the lower limit %d (previous close %d)", b.Low, lower, prevClose))
		}
	}
	return strings.Join(bad, "; ")
}

// shapeProblem returns "" when b's numbers can be a day's bar at all
// (prices positive and on the tick grid, open and close within low..high,
// volume and value not negative), else why not. It needs no reference
// (universe, previous close), so verify judges the source's answers with
// it too: an answer that fails it is a bad answer, not evidence.
func shapeProblem(b kisfeed.DailyBar) string {
	bad, _ := shapeProblems(b)
	return strings.Join(bad, "; ")
}

// shapeProblems lists what is wrong with b's numbers; missing reports that
// a required price is absent, which makes the other rules meaningless.
func shapeProblems(b kisfeed.DailyBar) (bad []string, missing bool) {
	day := kisfeed.Day(b.Date)
	// Required fields: KIS sends an absent number as "" which the client
	// reads as 0, and a price of 0 never trades.
	for _, f := range []struct {
		name string
		v    int64
	}{{"open", b.Open}, {"high", b.High}, {"low", b.Low}, {"close", b.Close}} {
		if f.v <= 0 {
			bad = append(bad, fmt.Sprintf("%s %d missing or not positive", f.name, f.v))
		}
	}
	if len(bad) > 0 {
		return bad, true
	}
	if b.Low > b.High {
		bad = append(bad, fmt.Sprintf("low %d above high %d", b.Low, b.High))
	}
	if b.Open < b.Low || b.Open > b.High {
		bad = append(bad, fmt.Sprintf("open %d outside low..high %d..%d", b.Open, b.Low, b.High))
	}
	if b.Close < b.Low || b.Close > b.High {
		bad = append(bad, fmt.Sprintf("close %d outside low..high %d..%d", b.Close, b.Low, b.High))
	}
	if b.Volume < 0 {
		bad = append(bad, fmt.Sprintf("volume %d negative", b.Volume))
	}
	if b.Value < 0 {
		bad = append(bad, fmt.Sprintf("value %d negative", b.Value))
	}
	if !day.Before(tickTableSince) {
		for _, f := range []struct {
			name string
			v    int64
		}{{"open", b.Open}, {"high", b.High}, {"low", b.Low}, {"close", b.Close}} {
			if !krx.OnTick(f.v) {
				bad = append(bad, fmt.Sprintf("%s %d off the tick grid (tick %d)", f.name, f.v, krx.TickSize(f.v)))
			}
		}
	}
	return bad, false
}
