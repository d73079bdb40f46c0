package sim

import (
	"fmt"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Period is the span one aggregated bar covers.
type Period int

// The periods [Aggregate] folds daily bars into. Weeks are ISO weeks
// (Monday to Sunday) and every period is read on the KST calendar, as KRX
// and KIS read it.
const (
	PeriodDay Period = iota
	PeriodWeek
	PeriodMonth
	PeriodYear
)

// String returns "day", "week", "month" or "year".
func (p Period) String() string {
	switch p {
	case PeriodDay:
		return "day"
	case PeriodWeek:
		return "week"
	case PeriodMonth:
		return "month"
	case PeriodYear:
		return "year"
	}
	return fmt.Sprintf("Period(%d)", int(p))
}

// key names the period of p that day falls in; two days share a key
// exactly when they fall in the same period.
func (p Period) key(day time.Time) int {
	d := day.In(kisfeed.KST)
	switch p {
	case PeriodWeek:
		y, w := d.ISOWeek()
		return y*100 + w
	case PeriodMonth:
		return d.Year()*100 + int(d.Month())
	case PeriodYear:
		return d.Year()
	}
	return d.Year()*10000 + int(d.Month())*100 + d.Day()
}

// Aggregate folds daily bars (oldest first, at most one per day) into
// bars of period p: the first bar's open, the highest high, the lowest
// low, the last close, and summed volume and value. Each bar is labelled
// with the KST day of its first daily bar, which is the kisfeed.Candle
// convention and what both the emulator and the mock Source serve: paging
// back by "oldest date − 1 day" then never splits or repeats a bar.
//
// Aggregate folds in place: the result shares days' backing array and
// overwrites it, so callers pass a slice they own (DailyBars returns a
// fresh one). That keeps the emulator's chart endpoints free of an extra
// allocation per request. PeriodDay returns days with labels normalised
// to the KST day.
func Aggregate(days []kisfeed.Candle, p Period) []kisfeed.Candle {
	out := days[:0]
	cur := 0
	for _, d := range days {
		k := p.key(d.Time)
		if len(out) > 0 && k == cur {
			b := &out[len(out)-1]
			b.High = max(b.High, d.High)
			b.Low = min(b.Low, d.Low)
			b.Close = d.Close
			b.Volume += d.Volume
			b.Value += d.Value
			continue
		}
		cur = k
		d.Time = kisfeed.Day(d.Time)
		out = append(out, d)
	}
	return out
}
