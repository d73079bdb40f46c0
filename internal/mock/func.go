package mock

import (
	"context"
	"errors"
	"time"

	"github.com/kisfeed/kisfeed"
)

// errNotSet is returned by a [FuncSource] method whose func field is nil, so
// a test that forgets a field fails with an error instead of a panic.
var errNotSet = errors.New("mock: func field not set")

// FuncSource is a [kisfeed.Source] whose methods call the matching func
// field. A nil field makes the method return an error (not panic), so tests
// set only what they exercise. The fields take codes as strings (the
// methods hand them code.String()), so tests write and compare literals.
type FuncSource struct {
	QuoteFn        func(ctx context.Context, code string) (*kisfeed.Quote, error)
	QuotesFn       func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error)
	OrderBookFn    func(ctx context.Context, code string) (*kisfeed.OrderBook, error)
	CandlesFn      func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error)
	StockInfoFn    func(ctx context.Context, code string) (*kisfeed.StockInfo, error)
	UniverseFn     func(ctx context.Context) ([]kisfeed.Stock, error)
	IsTradingDayFn func(ctx context.Context, date time.Time) (bool, error)
}

var _ kisfeed.Source = (*FuncSource)(nil)

// Quote calls QuoteFn.
func (s *FuncSource) Quote(ctx context.Context, code kisfeed.Code) (*kisfeed.Quote, error) {
	if s.QuoteFn == nil {
		return nil, errNotSet
	}
	return s.QuoteFn(ctx, code.String())
}

// Quotes calls QuotesFn; when it is nil and QuoteFn is set, it calls QuoteFn
// for each code and reports business errors in a *[kisfeed.BatchError].
func (s *FuncSource) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	if s.QuotesFn != nil {
		return s.QuotesFn(ctx, kisfeed.CodeStrings(codes))
	}
	if s.QuoteFn == nil {
		return nil, errNotSet
	}
	return quoteEach(codes, func(code kisfeed.Code) (*kisfeed.Quote, error) { return s.QuoteFn(ctx, code.String()) })
}

// OrderBook calls OrderBookFn.
func (s *FuncSource) OrderBook(ctx context.Context, code kisfeed.Code) (*kisfeed.OrderBook, error) {
	if s.OrderBookFn == nil {
		return nil, errNotSet
	}
	return s.OrderBookFn(ctx, code.String())
}

// Candles calls CandlesFn.
func (s *FuncSource) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	if s.CandlesFn == nil {
		return nil, errNotSet
	}
	return s.CandlesFn(ctx, q)
}

// StockInfo calls StockInfoFn.
func (s *FuncSource) StockInfo(ctx context.Context, code kisfeed.Code) (*kisfeed.StockInfo, error) {
	if s.StockInfoFn == nil {
		return nil, errNotSet
	}
	return s.StockInfoFn(ctx, code.String())
}

// Universe calls UniverseFn.
func (s *FuncSource) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	if s.UniverseFn == nil {
		return nil, errNotSet
	}
	return s.UniverseFn(ctx)
}

// IsTradingDay calls IsTradingDayFn.
func (s *FuncSource) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	if s.IsTradingDayFn == nil {
		return false, errNotSet
	}
	return s.IsTradingDayFn(ctx, date)
}
