package breaker

import (
	"context"
	"time"

	"github.com/kisfeed/kisfeed"
)

// call runs fn through the circuit.
func call[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	gen, ok := b.acquire()
	if !ok {
		var zero T
		return zero, b.unavailable()
	}
	v, err := fn(context.WithValue(ctx, genKey{}, gen))
	b.record(ctx, gen, err)
	return v, err
}

// Quote calls the upstream through the circuit. Codes arrive parsed
// ([kisfeed.Code]); an upstream's [kisfeed.ErrInvalid] (a bad interval or
// date range) counts for nothing.
func (b *Breaker) Quote(ctx context.Context, code kisfeed.Code) (*kisfeed.Quote, error) {
	return call(ctx, b, func(ctx context.Context) (*kisfeed.Quote, error) { return b.up.Quote(ctx, code) })
}

// Quotes calls the upstream through the circuit; a *BatchError counts as
// success (the upstream answered).
func (b *Breaker) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	return call(ctx, b, func(ctx context.Context) ([]*kisfeed.Quote, error) { return b.up.Quotes(ctx, codes) })
}

// OrderBook calls the upstream through the circuit.
func (b *Breaker) OrderBook(ctx context.Context, code kisfeed.Code) (*kisfeed.OrderBook, error) {
	return call(ctx, b, func(ctx context.Context) (*kisfeed.OrderBook, error) { return b.up.OrderBook(ctx, code) })
}

// Candles calls the upstream through the circuit.
func (b *Breaker) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	return call(ctx, b, func(ctx context.Context) (*kisfeed.Candles, error) { return b.up.Candles(ctx, q) })
}

// StockInfo calls the upstream through the circuit.
func (b *Breaker) StockInfo(ctx context.Context, code kisfeed.Code) (*kisfeed.StockInfo, error) {
	return call(ctx, b, func(ctx context.Context) (*kisfeed.StockInfo, error) { return b.up.StockInfo(ctx, code) })
}

// Universe calls the upstream through the circuit.
func (b *Breaker) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	return call(ctx, b, func(ctx context.Context) ([]kisfeed.Stock, error) { return b.up.Universe(ctx) })
}

// IsTradingDay calls the upstream through the circuit.
func (b *Breaker) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	return call(ctx, b, func(ctx context.Context) (bool, error) { return b.up.IsTradingDay(ctx, date) })
}
