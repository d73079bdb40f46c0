// Package sourcetest holds test doubles of [kisfeed.Source] for the tests
// of other packages: [Func], a struct of func fields. Only tests import it
// (architecture_test.go enforces it).
package sourcetest

import (
	"context"
	"errors"
	"time"

	"github.com/kisfeed/kisfeed"
)

// errNotSet is returned by a [Func] method whose func field is nil, so
// a test that forgets a field fails with an error instead of a panic.
var errNotSet = errors.New("sourcetest: func field not set")

// Func is a fake [kisfeed.Source] whose methods call the matching func
// field. A nil field makes the method return an error (not panic), so tests
// set only what they exercise. The fields take codes as strings (the
// methods hand them code.String()), so tests write and compare literals.
type Func struct {
	QuoteFn        func(ctx context.Context, code string) (*kisfeed.Quote, error)
	QuotesFn       func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error)
	OrderBookFn    func(ctx context.Context, code string) (*kisfeed.OrderBook, error)
	CandlesFn      func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error)
	StockInfoFn    func(ctx context.Context, code string) (*kisfeed.StockInfo, error)
	UniverseFn     func(ctx context.Context) ([]kisfeed.Stock, error)
	IsTradingDayFn func(ctx context.Context, date time.Time) (bool, error)
}

var _ kisfeed.Source = (*Func)(nil)

// Quote calls QuoteFn.
func (s *Func) Quote(ctx context.Context, code kisfeed.Code) (*kisfeed.Quote, error) {
	if s.QuoteFn == nil {
		return nil, errNotSet
	}
	return s.QuoteFn(ctx, code.String())
}

// Quotes calls QuotesFn; when it is nil and QuoteFn is set, it calls QuoteFn
// for each code and reports business errors in a *[kisfeed.BatchError].
func (s *Func) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	if s.QuotesFn != nil {
		return s.QuotesFn(ctx, kisfeed.CodeStrings(codes))
	}
	if s.QuoteFn == nil {
		return nil, errNotSet
	}
	return kisfeed.QuoteEach(codes, func(code kisfeed.Code) (*kisfeed.Quote, error) { return s.QuoteFn(ctx, code.String()) })
}

// OrderBook calls OrderBookFn.
func (s *Func) OrderBook(ctx context.Context, code kisfeed.Code) (*kisfeed.OrderBook, error) {
	if s.OrderBookFn == nil {
		return nil, errNotSet
	}
	return s.OrderBookFn(ctx, code.String())
}

// Candles calls CandlesFn.
func (s *Func) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	if s.CandlesFn == nil {
		return nil, errNotSet
	}
	return s.CandlesFn(ctx, q)
}

// StockInfo calls StockInfoFn.
func (s *Func) StockInfo(ctx context.Context, code kisfeed.Code) (*kisfeed.StockInfo, error) {
	if s.StockInfoFn == nil {
		return nil, errNotSet
	}
	return s.StockInfoFn(ctx, code.String())
}

// Universe calls UniverseFn.
func (s *Func) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	if s.UniverseFn == nil {
		return nil, errNotSet
	}
	return s.UniverseFn(ctx)
}

// IsTradingDay calls IsTradingDayFn.
func (s *Func) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	if s.IsTradingDayFn == nil {
		return false, errNotSet
	}
	return s.IsTradingDayFn(ctx, date)
}
