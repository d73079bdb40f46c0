package synthetic

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/krx"
)

// SourceName is the Meta.Source (and stored DailyBar.Source) every value
// of [Source] carries. It says "mock", the synthetic market's old name:
// it is stored in price databases and served in JSON, so it stays (the one
// legacy use of the word; see ARCHITECTURE.md, Words).
const SourceName = "mock"

// Source serves the synthetic market in-process. Every value is what the
// market shows at the instant its market clock reads, so a Source and the
// emulator built on the same seed agree for the same clock. It is safe
// for concurrent use.
type Source struct {
	m     *sim.Market
	clock kisfeed.Clock
}

var _ kisfeed.Source = (*Source)(nil)

// NewSource returns a Source over m, reading the market at clk's market
// time (the zero Clock: time.Now); tests pin an instant.
func NewSource(m *sim.Market, clk kisfeed.Clock) *Source {
	return &Source{m: m, clock: clk}
}

// now is the market clock's time: the instant every value shows.
func (s *Source) now() time.Time { return s.clock.MarketNow() }

func (s *Source) meta(asOf time.Time) kisfeed.Meta {
	if asOf.IsZero() {
		asOf = s.now()
	}
	return kisfeed.Meta{AsOf: asOf.In(kisfeed.KST), Source: SourceName, Origin: kisfeed.OriginSource}
}

// lookup checks that code is listed.
func (s *Source) lookup(code kisfeed.Code) error {
	if _, ok := s.m.Stock(code.String()); !ok {
		return fmt.Errorf("%w: stock code %q is not listed", kisfeed.ErrNotFound, code)
	}
	return nil
}

func (s *Source) quote(code kisfeed.Code) (*kisfeed.Quote, error) {
	if err := s.lookup(code); err != nil {
		return nil, err
	}
	q, ok := s.m.QuoteAt(code.String(), s.now())
	if !ok {
		return nil, fmt.Errorf("%w: no quote for %s", kisfeed.ErrNotFound, code)
	}
	q.Meta = s.meta(q.Meta.AsOf)
	return &q, nil
}

// Quote returns the synthetic quote of code at now().
func (s *Source) Quote(ctx context.Context, code kisfeed.Code) (*kisfeed.Quote, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.quote(code)
}

// Quotes returns the quotes of codes in order; unknown codes are reported in a *[kisfeed.BatchError] with nil at their position.
func (s *Source) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return kisfeed.QuoteEach(codes, s.quote)
}

// OrderBook returns the synthetic 10-level book of code at now().
func (s *Source) OrderBook(ctx context.Context, code kisfeed.Code) (*kisfeed.OrderBook, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.lookup(code); err != nil {
		return nil, err
	}
	now := s.now()
	b, ok := s.m.OrderBookAt(code.String(), now)
	if !ok {
		return nil, fmt.Errorf("%w: no order book for %s", kisfeed.ErrNotFound, code)
	}
	asOf := b.Meta.AsOf
	if asOf.IsZero() {
		asOf = now
	}
	b.Meta = s.meta(asOf)
	return &b, nil
}

// Candles returns a candle series as of now(): complete bars for past days,
// today's bar built from the minutes completed so far, nothing in the
// future. Weekly and monthly bars aggregate the daily bars of the range
// per ISO week or calendar month and carry the period's first trading day
// in the range as Time. A zero From means the start of the synthetic
// history, a zero To means today; for minute bars a zero From means today.
func (s *Source) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.lookup(q.Code); err != nil {
		return nil, err
	}
	now := s.now().In(kisfeed.KST)
	today := kisfeed.Day(now)
	code := q.Code.String()
	out := &kisfeed.Candles{Code: code, Interval: q.Interval}
	switch q.Interval {
	case kisfeed.IntervalMinute:
		day := today
		if !q.From.IsZero() {
			day = kisfeed.Day(q.From)
		}
		if day.After(today) {
			return nil, fmt.Errorf("%w: minute candles: day %s is in the future", kisfeed.ErrInvalid, day.Format(time.DateOnly))
		}
		for _, b := range s.m.MinuteBars(code, day) {
			if minuteDone(b.Time, now) {
				out.Bars = append(out.Bars, b)
			}
		}
	case kisfeed.IntervalDay, kisfeed.IntervalWeek, kisfeed.IntervalMonth:
		from, to := q.From, q.To
		if from.IsZero() {
			from = kisfeed.Date(krx.FirstYear, time.January, 1)
		}
		if to.IsZero() || kisfeed.Day(to).After(today) {
			to = today
		}
		from, to = kisfeed.Day(from), kisfeed.Day(to)
		if !q.To.IsZero() && !q.From.IsZero() && q.From.After(q.To) {
			return nil, fmt.Errorf("%w: candles: from %s is after to %s", kisfeed.ErrInvalid,
				q.From.Format(time.DateOnly), q.To.Format(time.DateOnly))
		}
		out.Bars = sim.Aggregate(s.dailyBars(code, from, to, now), periods[q.Interval])
	default:
		return nil, fmt.Errorf("%w: candles: interval %q: want minute, day, week or month", kisfeed.ErrInvalid, q.Interval)
	}
	out.Meta = s.meta(now)
	return out, nil
}

// dailyBars returns the daily bars in [from, to] as seen at now: today's
// bar is partial while the session runs and absent before the open.
func (s *Source) dailyBars(code string, from, to, now time.Time) []kisfeed.Candle {
	if from.After(to) {
		return nil
	}
	today := kisfeed.Day(now)
	if to.Before(today) || !krx.IsTradingDay(today) || !now.Before(krx.CloseTime(now)) {
		return s.m.DailyBars(code, from, to)
	}
	// to is today and today's session has not closed yet.
	var bars []kisfeed.Candle
	if y := today.AddDate(0, 0, -1); !from.After(y) {
		bars = s.m.DailyBars(code, from, y)
	}
	if now.Before(krx.OpenTime(now)) {
		return bars
	}
	q, ok := s.m.QuoteAt(code, now)
	if !ok || q.Volume == 0 && q.Open == 0 {
		return bars
	}
	return append(bars, kisfeed.Candle{
		Time: today, Open: q.Open, High: q.High, Low: q.Low, Close: q.Price,
		Volume: q.Volume, Value: q.TradingValue,
	})
}

// minuteDone reports whether the minute bar starting at start has completed
// at now. The 15:30 closing-auction bar completes at 15:30 itself, when the
// auction prints.
func minuteDone(start, now time.Time) bool {
	end := start.Add(time.Minute)
	if h, m, _ := start.In(kisfeed.KST).Clock(); h == krx.CloseHour && m == krx.CloseMinute {
		end = start
	}
	return !now.Before(end)
}

// periods maps the intervals served from daily bars to the sim period
// they aggregate to.
var periods = map[kisfeed.Interval]sim.Period{
	kisfeed.IntervalDay:   sim.PeriodDay,
	kisfeed.IntervalWeek:  sim.PeriodWeek,
	kisfeed.IntervalMonth: sim.PeriodMonth,
}

// StockInfo returns the synthetic descriptive data of code.
func (s *Source) StockInfo(ctx context.Context, code kisfeed.Code) (*kisfeed.StockInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.lookup(code); err != nil {
		return nil, err
	}
	info, ok := s.m.Info(code.String())
	if !ok {
		return nil, fmt.Errorf("%w: no info for %s", kisfeed.ErrNotFound, code)
	}
	info.Meta = s.meta(s.now())
	return &info, nil
}

// Universe returns a copy of the synthetic universe, sorted by code.
func (s *Source) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return slices.Clone(s.m.Universe()), nil
}

// IsTradingDay answers from the krx calendar, which the synthetic market
// follows.
func (s *Source) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return krx.IsTradingDay(date), nil
}
