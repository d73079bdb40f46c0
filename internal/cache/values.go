package cache

import (
	"context"
	"slices"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Quote returns the cached quote of code, or fetches it.
func (c *Cache) Quote(ctx context.Context, code kisfeed.Code) (*kisfeed.Quote, error) {
	if c.ref != nil {
		c.ref.heat.add(code)
	}
	return stockGet(ctx, c, priceKind, code, c.ttl.Price, kisfeed.Source.Quote,
		func(q *kisfeed.Quote) *kisfeed.Meta { return &q.Meta })
}

// OrderBook returns the cached book of code, or fetches it.
func (c *Cache) OrderBook(ctx context.Context, code kisfeed.Code) (*kisfeed.OrderBook, error) {
	return stockGet(ctx, c, bookKind, code, c.ttl.OrderBook, kisfeed.Source.OrderBook,
		func(b *kisfeed.OrderBook) *kisfeed.Meta { return &b.Meta })
}

// coversToday reports whether a candle query's answer can still change
// today: minute bars of today, or a day/week/month range reaching today.
func coversToday(q kisfeed.CandleQuery, now time.Time) bool {
	today := kisfeed.Day(now)
	if q.Interval == kisfeed.IntervalMinute {
		return q.From.IsZero() || !kisfeed.Day(q.From).Before(today)
	}
	return q.To.IsZero() || !kisfeed.Day(q.To).Before(today)
}

// Candles returns the cached series of q, or fetches it. Series that reach
// today follow the intraday freshness rule; older ones the candles TTL.
func (c *Cache) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	iv, err := kisfeed.ParseInterval(string(q.Interval))
	if err != nil {
		return nil, err
	}
	q.Interval = iv // one key per series: "d" and "day" share it
	r, err := lookup(ctx, c, KindCandles, c.prefix+CandlesKey(q), candlesSubject(q), c.ttl.Candles, coversToday(q, c.marketNow()),
		func(ctx context.Context) (kisfeed.Candles, error) { return deref(c.up.Candles(ctx, q)) })
	if err != nil {
		return nil, err
	}
	cs := r.val
	cs.Bars = slices.Clone(cs.Bars) // the flight's callers share r.val
	for i := range cs.Bars {
		cs.Bars[i].Time = cs.Bars[i].Time.In(kisfeed.KST)
	}
	stamp(&cs.Meta, r.origin, r.expires)
	return &cs, nil
}

// candlesSubject names a candle series in errors:
// "candles 005930 day 2026-03-03..2026-03-10".
func candlesSubject(q kisfeed.CandleQuery) subject {
	arg := q.Code.String() + " " + string(q.Interval)
	if !q.From.IsZero() || !q.To.IsZero() {
		arg += " " + dateOrOpen(q.From) + ".." + dateOrOpen(q.To)
	}
	return subject{what: "candles", arg: arg}
}

// dateOrOpen is t's day, or "" for an open end.
func dateOrOpen(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kisfeed.KST).Format(time.DateOnly)
}

// StockInfo returns the cached info of code, or fetches it.
func (c *Cache) StockInfo(ctx context.Context, code kisfeed.Code) (*kisfeed.StockInfo, error) {
	s, err := stockGet(ctx, c, infoKind, code, c.ttl.Info, kisfeed.Source.StockInfo,
		func(s *kisfeed.StockInfo) *kisfeed.Meta { return &s.Meta })
	if err == nil && !s.ListingDate.IsZero() {
		s.ListingDate = s.ListingDate.In(kisfeed.KST)
	}
	return s, err
}

// Universe returns the cached universe, or fetches it (info TTL). The
// returned slice is the caller's.
func (c *Cache) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	r, err := lookup(ctx, c, KindUniverse, c.prefix+"universe", subject{what: "universe"}, c.ttl.Info, false,
		func(ctx context.Context) ([]kisfeed.Stock, error) { return c.up.Universe(ctx) })
	if err != nil {
		return nil, err
	}
	out := make([]kisfeed.Stock, len(r.val))
	copy(out, r.val)
	for i := range out {
		if !out[i].ListingDate.IsZero() {
			out[i].ListingDate = out[i].ListingDate.In(kisfeed.KST)
		}
	}
	return out, nil
}

// IsTradingDay returns the cached answer for date's KST day, or asks the
// upstream (info TTL).
func (c *Cache) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	day := kisfeed.Day(date)
	r, err := lookup(ctx, c, KindCalendar, c.prefix+"calendar:"+ymd(day), subject{what: "calendar", arg: day.Format(time.DateOnly)}, c.ttl.Info, false,
		func(ctx context.Context) (bool, error) { return c.up.IsTradingDay(ctx, day) })
	if err != nil {
		return false, err
	}
	return r.val, nil
}
