// Package sim is a deterministic synthetic KRX market: a universe of about
// 2,600 listed stocks (plus some ETFs), daily bars for every trading day
// 2020–2027, minute bars whose aggregate equals the day's bar, the price at
// any instant consistent with the minute bars so far, and a 10-level book
// around it. The emulator serves it over the KIS wire protocol and the mock
// Source serves it in-process, so both agree number for number.
//
// Same seed, same numbers: on any machine, in any order of queries, from
// any number of goroutines. A *Market is safe for concurrent use.
//
// Every price respects the KRX tick table and the ±30 % daily limit of the
// day's base price (the previous close), see package krx.
package sim

import (
	"time"

	"github.com/kisfeed/kisfeed"
)

// Market is the synthetic market for one seed.
type Market struct {
	// implementation-defined fields
}

// New builds the market for seed. It is cheap (well under 100 ms): series
// are computed lazily on first use and memoised.
func New(seed int64) *Market { panic("TODO") }

// Seed returns the seed the market was built with.
func (m *Market) Seed() int64 { panic("TODO") }

// Universe returns every listed security, sorted by code: ~950 KOSPI and
// ~1,650 KOSDAQ ordinary/preferred shares (Group "ST"), a few real large
// caps among them (005930 삼성전자, 000660 SK하이닉스, 035420 NAVER,
// 005380 현대차, 035720 카카오, 373220 LG에너지솔루션, 207940
// 삼성바이오로직스, 068270 셀트리온, 005935 삼성전자우, ...), plus ~100
// ETFs (Group "EF") on KOSPI. The slice is shared: do not modify it.
func (m *Market) Universe() []kisfeed.Stock { panic("TODO") }

// Stock returns one security of the universe.
func (m *Market) Stock(code string) (kisfeed.Stock, bool) { panic("TODO") }

// Info returns the descriptive data of one security.
func (m *Market) Info(code string) (kisfeed.StockInfo, bool) { panic("TODO") }

// DailyBar returns the complete bar of code on trading day day (its KST
// calendar day). ok is false for an unknown code, a non-trading day, or a
// day outside 2020-01-02 … 2027-12-30 or before the stock's listing.
func (m *Market) DailyBar(code string, day time.Time) (bar kisfeed.Candle, ok bool) { panic("TODO") }

// DailyBars returns the complete daily bars of code for every trading day
// in [from, to], oldest first.
func (m *Market) DailyBars(code string, from, to time.Time) []kisfeed.Candle { panic("TODO") }

// PrevClose returns the close of the trading day before day (the base
// price for day's limits).
func (m *Market) PrevClose(code string, day time.Time) (int64, bool) { panic("TODO") }

// MinuteBars returns the complete minute bars of code on trading day day,
// oldest first: one bar per minute 09:00 … 15:19 of continuous trading and
// one 15:30 bar for the closing auction (381 bars). Their aggregate (first
// open, max high, min low, last close, summed volume and value) equals
// DailyBar. Minutes with no trade carry volume 0 and O=H=L=C = last price.
func (m *Market) MinuteBars(code string, day time.Time) []kisfeed.Candle { panic("TODO") }

// QuoteAt returns the quote of code at instant t. Before 09:00 on a trading
// day it shows the previous close with zero volume; during the session it
// aggregates the minute bars completed up to t (open/high/low/volume/value
// so far, price = last close so far); after 15:30 it equals the day's bar.
// On a non-trading day it is the last trading day's closing quote. Meta.AsOf
// is the time of the last included bar; Meta.Source is "mock".
func (m *Market) QuoteAt(code string, t time.Time) (kisfeed.Quote, bool) { panic("TODO") }

// OrderBookAt returns the 10-level book of code at instant t, centred on
// QuoteAt(code, t).Price: asks from one tick above, bids from the price
// down, every level on the tick grid and within the day's limits,
// quantities deterministic.
func (m *Market) OrderBookAt(code string, t time.Time) (kisfeed.OrderBook, bool) { panic("TODO") }
