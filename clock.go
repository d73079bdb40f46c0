package kisfeed

import "time"

// Clock is the gateway's pair of clocks, built once where the parts are
// wired (internal/wiring, cmd/kisfeed) and handed down, so no part derives
// a market clock of its own and the market and the cache agree on what
// time it is.
//
// Wall is real time. It drives what is measured against the real world:
// KIS tokens (issuance and expiry), rate windows, cache TTLs and stale
// ages, store expiry, leases, breaker delays and reachability observations.
//
// Market is the time of the market being served. It drives what is read
// off the market: a quote's or book's AsOf, "today" (minute bars, ingest's
// latest session) and the KRX session boundaries that end intraday
// freshness. Against KIS it is the wall clock; against the synthetic
// market (mock and embedded modes) it starts at KISFEED_MARKET_TIME and
// runs at real speed.
//
// The zero value uses time.Now for both; a nil Market follows Wall.
type Clock struct {
	Wall   func() time.Time
	Market func() time.Time
}

// NewClock returns the Clock of wall and market with the defaults filled
// in: a nil wall is time.Now, a nil market is the wall clock. Its fields
// are then never nil, so they can be handed as they are to the packages'
// clock options (cache.WithClock, kis.WithMarketClock, ...).
func NewClock(wall, market func() time.Time) Clock {
	if wall == nil {
		wall = time.Now
	}
	if market == nil {
		market = wall
	}
	return Clock{Wall: wall, Market: market}
}

// Now is the wall clock's time.
func (c Clock) Now() time.Time {
	if c.Wall == nil {
		return time.Now()
	}
	return c.Wall()
}

// MarketNow is the market clock's time.
func (c Clock) MarketNow() time.Time {
	if c.Market == nil {
		return c.Now()
	}
	return c.Market()
}
