package sim

import (
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// The simulated period: every KRX trading day from FirstDay to LastDay.
var (
	// FirstDay is the first simulated trading day, 2020-01-02.
	FirstDay = kisfeed.Date(2020, time.January, 2)
	// LastDay is the last simulated trading day, 2027-12-30.
	LastDay = kisfeed.Date(2027, time.December, 30)
	// BaseDay is the trading day whose close is the Stock.BasePrice that
	// Universe and Stock report (the master file's stck_sdpr as of the
	// market's nominal "today", 2026-11-27): 2026-11-26.
	BaseDay = kisfeed.Date(2026, time.November, 26)
)

const (
	// epochUnix is 2020-01-01 00:00 KST. Korea has used a fixed +09:00
	// offset since 1988, so calendar days are plain 86,400 s steps and
	// day arithmetic on Unix seconds is exact (and much cheaper than
	// time.In on a loaded location).
	epochUnix = 1577804400
	// calDays covers 2020-01-01 … 2027-12-31.
	calDays = 2922
	daySecs = 86400
)

// calendar is the immutable trading calendar of the simulated period.
type calendar struct {
	days   []time.Time    // trading days, midnight KST, oldest first
	offs   []int32        // calendar offset (days since epoch) of each trading day
	idx    [calDays]int16 // trading-day index of a calendar offset, -1 if closed
	lastLE [calDays]int16 // index of the last trading day <= offset, -1 if none
}

// cal is built once; it never changes afterwards, so sharing it between
// Markets is safe.
var cal = sync.OnceValue(func() *calendar {
	c := &calendar{}
	last := int16(-1)
	for off := 0; off < calDays; off++ {
		d := kisfeed.Date(2020, time.January, 1+off)
		c.idx[off] = -1
		if krx.IsTradingDay(d) {
			last = int16(len(c.days))
			c.idx[off] = last
			c.days = append(c.days, d)
			c.offs = append(c.offs, int32(off))
		}
		c.lastLE[off] = last
	}
	return c
})

// split returns t's calendar offset from 2020-01-01 KST and its second of
// the KST day.
func split(t time.Time) (off, sec int64) {
	u := t.Unix() - epochUnix
	off = u / daySecs
	sec = u - off*daySecs
	if sec < 0 {
		off--
		sec += daySecs
	}
	return off, sec
}

// tradingIndex returns the trading-day index of day's KST calendar day, or
// -1 when it is not a simulated trading day.
func (c *calendar) tradingIndex(day time.Time) int {
	off, _ := split(day)
	if off < 0 || off >= calDays {
		return -1
	}
	return int(c.idx[off])
}
