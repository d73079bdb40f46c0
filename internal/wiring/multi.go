package wiring

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Multi spreads calls over several sources, one per KIS app key, each with
// its own client, rate budget and token. Every call goes to the member
// with the fewest calls in flight; ties rotate (round-robin among the
// equally busy), so an idle pool rotates evenly and a busy
// pool steers work away from a key whose limiter queue is backing up —
// which is what a slow or rate-limited key looks like from here.
//
// A whole batch ([Multi.Quotes]) goes to one member: it is one upstream
// request (or a few), and splitting it would only multiply requests.
type Multi struct {
	members []*member
	next    atomic.Uint64
}

type member struct {
	src      kisfeed.Source
	inflight atomic.Int64
}

var _ kisfeed.Source = (*Multi)(nil)

// NewMulti returns a Multi over srcs (at least one).
func NewMulti(srcs ...kisfeed.Source) (*Multi, error) {
	if len(srcs) == 0 {
		return nil, errors.New("source: multi: want at least one source")
	}
	m := &Multi{}
	for _, s := range srcs {
		m.members = append(m.members, &member{src: s})
	}
	return m, nil
}

// pick returns the least-busy member, rotating among equally busy ones;
// the caller must call done.
func (m *Multi) pick() (kisfeed.Source, func()) {
	least := int64(-1)
	var cands []*member
	for _, c := range m.members {
		switch n := c.inflight.Load(); {
		case least < 0 || n < least:
			least, cands = n, append(cands[:0], c)
		case n == least:
			cands = append(cands, c)
		}
	}
	best := cands[m.next.Add(1)%uint64(len(cands))]
	best.inflight.Add(1)
	return best.src, func() { best.inflight.Add(-1) }
}

// Quote implements [kisfeed.Source].
func (m *Multi) Quote(ctx context.Context, code kisfeed.Code) (*kisfeed.Quote, error) {
	s, done := m.pick()
	defer done()
	return s.Quote(ctx, code)
}

// Quotes implements [kisfeed.Source].
func (m *Multi) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	s, done := m.pick()
	defer done()
	return s.Quotes(ctx, codes)
}

// OrderBook implements [kisfeed.Source].
func (m *Multi) OrderBook(ctx context.Context, code kisfeed.Code) (*kisfeed.OrderBook, error) {
	s, done := m.pick()
	defer done()
	return s.OrderBook(ctx, code)
}

// Candles implements [kisfeed.Source].
func (m *Multi) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	s, done := m.pick()
	defer done()
	return s.Candles(ctx, q)
}

// StockInfo implements [kisfeed.Source].
func (m *Multi) StockInfo(ctx context.Context, code kisfeed.Code) (*kisfeed.StockInfo, error) {
	s, done := m.pick()
	defer done()
	return s.StockInfo(ctx, code)
}

// Universe implements [kisfeed.Source].
func (m *Multi) Universe(ctx context.Context) ([]kisfeed.Stock, error) {
	s, done := m.pick()
	defer done()
	return s.Universe(ctx)
}

// IsTradingDay implements [kisfeed.Source].
func (m *Multi) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	s, done := m.pick()
	defer done()
	return s.IsTradingDay(ctx, date)
}
