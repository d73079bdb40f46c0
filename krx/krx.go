// Package krx holds the Korea Exchange's market rules that every part of
// kisfeed agrees on: the tick-size table, the daily price limits, the
// trading calendar (weekends and market holidays 2020–2027) and the regular
// session hours. It has no I/O and no state.
package krx

import (
	"time"

	"github.com/kisfeed/kisfeed"
)

// TickSize returns the KRX tick (호가가격단위) for an ordinary share at the
// given price, from the table unified for KOSPI and KOSDAQ in 2023
// (REFERENCE §i). ETFs and ETNs use smaller ticks; callers that know the
// instrument's aspr_unit should prefer it.
func TickSize(price int64) int64 {
	switch {
	case price < 2_000:
		return 1
	case price < 5_000:
		return 5
	case price < 20_000:
		return 10
	case price < 50_000:
		return 50
	case price < 200_000:
		return 100
	case price < 500_000:
		return 500
	default:
		return 1_000
	}
}

// OnTick reports whether price is a positive multiple of the tick that
// applies at that price.
func OnTick(price int64) bool {
	return price > 0 && price%TickSize(price) == 0
}

// RoundDown returns the largest on-tick price <= p (p >= 1).
func RoundDown(p int64) int64 {
	if p < 1 {
		return 1
	}
	return p - p%TickSize(p)
}

// RoundUp returns the smallest on-tick price >= p.
func RoundUp(p int64) int64 {
	if p < 1 {
		return 1
	}
	t := TickSize(p)
	if r := p % t; r != 0 {
		p += t - r
		// Crossing a table boundary can change the tick; the boundaries
		// are multiples of both ticks, so the result is still on tick.
	}
	return p
}

// LimitRate is the daily price-limit band: ±30 % of the base price.
const LimitRate = 0.30

// Limits returns the day's upper and lower price limits for a base price
// (stck_sdpr): base ± 30 %, the upper rounded down and the lower rounded up
// to the tick (REFERENCE §i: sdpr 128500 → mxpr 167000 under the old table).
func Limits(base int64) (upper, lower int64) {
	width := base * 30 / 100
	upper = RoundDown(base + width)
	lower = RoundUp(base - width)
	if lower < 1 {
		lower = 1
	}
	return upper, lower
}

// Regular session times in KST (REFERENCE §i): continuous trading from
// 09:00, closing auction 15:20–15:30, official close 15:30.
const (
	OpenHour, OpenMinute       = 9, 0
	AuctionHour, AuctionMinute = 15, 20
	CloseHour, CloseMinute     = 15, 30
)

// OpenTime returns 09:00 KST on day's calendar date.
func OpenTime(day time.Time) time.Time {
	d := kisfeed.Day(day)
	return d.Add(OpenHour*time.Hour + OpenMinute*time.Minute)
}

// CloseTime returns 15:30 KST on day's calendar date.
func CloseTime(day time.Time) time.Time {
	d := kisfeed.Day(day)
	return d.Add(CloseHour*time.Hour + CloseMinute*time.Minute)
}

// NextBoundary returns the first session boundary (the 09:00 open or the
// 15:30 close of a trading day) strictly after t: where an intraday value
// (a price, an order book) stops being what the market says.
func NextBoundary(t time.Time) time.Time {
	t = t.In(kisfeed.KST)
	d := kisfeed.Day(t)
	for range 30 { // no KRX break is longer than a couple of weeks
		if IsTradingDay(d) {
			if o := OpenTime(d); t.Before(o) {
				return o
			}
			if cl := CloseTime(d); t.Before(cl) {
				return cl
			}
		}
		d = d.AddDate(0, 0, 1)
	}
	return t.Add(24 * time.Hour)
}

// FirstYear and LastYear bound the built-in holiday table. Dates outside it
// are judged by weekday alone.
const (
	FirstYear = 2020
	LastYear  = 2027
)

// IsHoliday reports whether KRX is closed on a weekday because of a market
// holiday in the built-in table.
func IsHoliday(t time.Time) bool {
	t = t.In(kisfeed.KST)
	_, ok := holidays[ymd(t)]
	return ok
}

// HolidayName returns the holiday's name, or "" when day is not in the table.
func HolidayName(t time.Time) string {
	return holidays[ymd(t.In(kisfeed.KST))]
}

// IsTradingDay reports whether KRX trades on t's KST calendar day: a
// weekday that is not a market holiday.
func IsTradingDay(t time.Time) bool {
	t = t.In(kisfeed.KST)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !IsHoliday(t)
}

// NextTradingDay returns the first trading day strictly after t's day.
func NextTradingDay(t time.Time) time.Time {
	d := kisfeed.Day(t)
	for {
		d = d.AddDate(0, 0, 1)
		if IsTradingDay(d) {
			return d
		}
	}
}

// PrevTradingDay returns the last trading day strictly before t's day.
func PrevTradingDay(t time.Time) time.Time {
	d := kisfeed.Day(t)
	for {
		d = d.AddDate(0, 0, -1)
		if IsTradingDay(d) {
			return d
		}
	}
}

// TradingDays returns every trading day in [from, to] (KST calendar days),
// oldest first.
func TradingDays(from, to time.Time) []time.Time {
	var out []time.Time
	end := kisfeed.Day(to)
	for d := kisfeed.Day(from); !d.After(end); d = d.AddDate(0, 0, 1) {
		if IsTradingDay(d) {
			out = append(out, d)
		}
	}
	return out
}

// LastCompletedSession returns the most recent trading day whose regular
// session has closed at instant now: today after 15:30 on a trading day,
// otherwise the previous trading day.
func LastCompletedSession(now time.Time) time.Time {
	now = now.In(kisfeed.KST)
	if IsTradingDay(now) && !now.Before(CloseTime(now)) {
		return kisfeed.Day(now)
	}
	return PrevTradingDay(now)
}

// IsOpen reports whether the regular session (09:00–15:30 KST, auction
// included) is running at instant t.
func IsOpen(t time.Time) bool {
	t = t.In(kisfeed.KST)
	return IsTradingDay(t) && !t.Before(OpenTime(t)) && t.Before(CloseTime(t))
}

func ymd(t time.Time) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }
