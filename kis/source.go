package kis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Source serves the domain [kisfeed.Source] from a [Client]: codes arrive
// parsed ([kisfeed.Code]) and go to the client's unexported methods
// without a second check, other input is validated before any request,
// KIS's answers map to
// [kisfeed.ErrNotFound] and [kisfeed.ErrInvalid], and every value carries
// Meta{Source: "kis", Origin: source}.
type Source struct {
	c *Client

	mu         sync.Mutex
	namesTried time.Time // guarded by mu: last failed universe load
}

var _ kisfeed.Source = (*Source)(nil)

// NewSource wraps c.
func NewSource(c *Client) *Source { return &Source{c: c} }

// Client returns the client underneath.
func (s *Source) Client() *Client { return s.c }

// Quote implements [kisfeed.Source]. Name and market come from the master
// files (inquire-price has neither), loaded once a day; when they cannot
// be loaded the quote is served without them.
func (s *Source) Quote(ctx context.Context, code kisfeed.Code) (*kisfeed.Quote, error) {
	q, err := byCode(ctx, "quote", code, dropResp(s.c.price))
	if err != nil {
		return nil, err
	}
	s.describe(ctx, q)
	return q, nil
}

// describe fills name and market from the cached universe.
func (s *Source) describe(ctx context.Context, q *kisfeed.Quote) {
	if q.Name != "" && q.Market != "" {
		return
	}
	s.mu.Lock()
	skip := !s.namesTried.IsZero() && s.c.now().Sub(s.namesTried) < 5*time.Minute
	s.mu.Unlock()
	if skip {
		return
	}
	e, ok, err := s.c.lookupStock(ctx, q.Code)
	if err != nil {
		s.mu.Lock()
		s.namesTried = s.c.now()
		s.mu.Unlock()
		s.c.log.Debug("kis: no master files for stock names", "err", err)
		return
	}
	if ok {
		if q.Name == "" {
			q.Name = e.Name
		}
		if q.Market == "" {
			q.Market = e.Market
		}
	}
}

// Quotes implements [kisfeed.Source] with [Client.Prices].
func (s *Source) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	all := make([]int, len(codes))
	for i := range all {
		all[i] = i
	}
	qs, err := s.c.prices(ctx, codes, all, map[string]error{})
	var be *kisfeed.BatchError
	if err != nil && !errors.As(err, &be) {
		return nil, fmt.Errorf("quotes: %w", err)
	}
	for _, q := range qs {
		if q != nil {
			s.describe(ctx, q)
		}
	}
	return qs, err
}

// OrderBook implements [kisfeed.Source].
func (s *Source) OrderBook(ctx context.Context, code kisfeed.Code) (*kisfeed.OrderBook, error) {
	return byCode(ctx, "order book", code, dropResp(s.c.orderBook))
}

// Candles implements [kisfeed.Source]. A zero To means today; a zero From
// means a recent window (3 months of days, a year of weeks, 5 years of
// months); minute candles read the KST day of From (today when zero).
func (s *Source) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	code := q.Code.String()
	now := s.c.market()
	var (
		bars []kisfeed.Candle
		err  error
	)
	switch q.Interval {
	case kisfeed.IntervalMinute:
		day := q.From
		if day.IsZero() {
			day = now
		}
		bars, err = s.c.minuteCandles(ctx, q.Code, day)
	case kisfeed.IntervalDay, kisfeed.IntervalWeek, kisfeed.IntervalMonth:
		to := q.To
		if to.IsZero() {
			to = now
		}
		from := q.From
		period := map[kisfeed.Interval]Period{kisfeed.IntervalDay: PeriodDay, kisfeed.IntervalWeek: PeriodWeek, kisfeed.IntervalMonth: PeriodMonth}[q.Interval]
		if from.IsZero() {
			switch q.Interval {
			case kisfeed.IntervalDay:
				from = to.AddDate(0, -3, 0)
			case kisfeed.IntervalWeek:
				from = to.AddDate(-1, 0, 0)
			default:
				from = to.AddDate(-5, 0, 0)
			}
		}
		if kisfeed.Day(to).Before(kisfeed.Day(from)) {
			return nil, fmt.Errorf("%w: candles %s: from %s is after to %s", kisfeed.ErrInvalid, code, ymd(from), ymd(to))
		}
		bars, err = s.c.dailyCandles(ctx, q.Code, period, from, to, !q.Unadjusted)
	default:
		return nil, fmt.Errorf("%w: interval %q: want minute, day, week or month", kisfeed.ErrInvalid, q.Interval)
	}
	if err != nil {
		return nil, fmt.Errorf("candles %s: %w", code, err)
	}
	if bars == nil {
		bars = []kisfeed.Candle{}
	}
	asOf := now.In(kisfeed.KST)
	if q.Interval == kisfeed.IntervalMinute && len(bars) > 0 {
		asOf = bars[len(bars)-1].Time
	}
	return &kisfeed.Candles{Code: code, Interval: q.Interval, Bars: bars,
		Meta: kisfeed.Meta{Source: "kis", Origin: kisfeed.OriginSource, AsOf: asOf}}, nil
}

// StockInfo implements [kisfeed.Source].
func (s *Source) StockInfo(ctx context.Context, code kisfeed.Code) (*kisfeed.StockInfo, error) {
	return byCode(ctx, "stock info", code, s.c.stockInfo)
}

// Universe implements [kisfeed.Source] from the KOSPI and KOSDAQ master
// files, cached for the KST day.
func (s *Source) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	u, err := s.c.universe(ctx)
	if err != nil {
		return nil, fmt.Errorf("universe: %w", err)
	}
	return stocksOf(u, nil)
}

// IsTradingDay implements [kisfeed.Source].
func (s *Source) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	if date.IsZero() {
		return false, fmt.Errorf("%w: trading day: want a date", kisfeed.ErrInvalid)
	}
	return s.c.IsTradingDay(ctx, date)
}

// byCode runs get for one stock code; a failure names the call (what)
// and the code.
func byCode[T any](ctx context.Context, what string, code kisfeed.Code, get func(context.Context, kisfeed.Code) (*T, error)) (*T, error) {
	v, err := get(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, code, err)
	}
	return v, nil
}

// dropResp adapts a Client endpoint to byCode, dropping the *Response.
func dropResp[T any](f func(context.Context, kisfeed.Code) (*T, *Response, error)) func(context.Context, kisfeed.Code) (*T, error) {
	return func(ctx context.Context, code kisfeed.Code) (*T, error) {
		v, _, err := f(ctx, code)
		return v, err
	}
}
