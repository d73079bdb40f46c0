// Package kisfeed holds the domain of the kisfeed market-data gateway: the
// plain types every other package exchanges (stocks, quotes, order books,
// candles, stock info), the [Source] interface they are served through, and
// the error values callers branch on.
//
// Adapters live in subpackages, one per technology: [kis] talks to the
// Korea Investment & Securities Open API, [emulator] imitates it, and the
// internal packages add caching, circuit breaking, storage and HTTP. Only
// cmd/kisfeed imports them all.
//
// Conventions: prices, volumes and amounts are int64 (won, shares); rates
// are float64 percent values (2.81 means 2.81 %); every time carries the
// Asia/Seoul location ([KST]).
package kisfeed

import (
	"fmt"
	"time"
)

// KST is the Asia/Seoul location. KRX trades on Korean time and KIS reports
// every date and time in it; a fixed +09:00 zone is used as a fallback when
// the system has no tz database, which is exact because Korea has no DST.
var KST = loadKST()

func loadKST() *time.Location {
	if loc, err := time.LoadLocation("Asia/Seoul"); err == nil {
		return loc
	}
	return time.FixedZone("KST", 9*60*60)
}

// Date returns midnight KST of the given calendar day.
func Date(year int, month time.Month, day int) time.Time {
	return time.Date(year, month, day, 0, 0, 0, 0, KST)
}

// Day truncates t to midnight of its KST calendar day.
func Day(t time.Time) time.Time {
	t = t.In(KST)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, KST)
}

// Market is a KRX market segment.
type Market string

// The KRX markets kisfeed knows.
const (
	MarketKOSPI  Market = "KOSPI"
	MarketKOSDAQ Market = "KOSDAQ"
	MarketKONEX  Market = "KONEX"
)

// ParseMarket accepts a market name in any case ("kospi", "KOSDAQ").
func ParseMarket(s string) (Market, error) {
	switch m := Market(upper(s)); m {
	case MarketKOSPI, MarketKOSDAQ, MarketKONEX:
		return m, nil
	}
	return "", fmt.Errorf("%w: market %q: want kospi, kosdaq or konex", ErrInvalid, s)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Stock is one entry of the listed universe, as the KIS master files
// describe it.
type Stock struct {
	Code   string // 6-digit short code, e.g. "005930"
	ISIN   string // standard code, e.g. "KR7005930003"
	Name   string // Korean short name, e.g. "삼성전자"
	Market Market
	// Group is the security group code of the master file
	// (scrt_grp_cls_code): "ST" shares, "EF" ETF, "EN" ETN, "RT" REIT, ...
	Group string
	// Preferred is true for preferred shares (prst_cls_code != "0").
	Preferred bool
	// Halted is true when trading is suspended (trht_yn).
	Halted bool
	// BasePrice is the master file's base price (stck_sdpr), in won.
	BasePrice int64
	// ListedShares is the number of listed shares.
	ListedShares int64
	// ListingDate is the first listing day (zero when unknown).
	ListingDate time.Time
}

// IsCommonStock reports whether s is an ordinary or preferred share
// ("ST" group): the universe ingest loads by default. ETFs, ETNs, REITs,
// warrants and other groups are left out because their tick table and
// price rules differ from ordinary shares.
func (s Stock) IsCommonStock() bool { return s.Group == "ST" }

// Origin says where a served value came from.
type Origin string

// The origins a [Meta] can carry.
const (
	// OriginSource is a value fetched from the upstream just now.
	OriginSource Origin = "source"
	// OriginCache is a value served from the cache within its TTL while
	// the upstream is available.
	OriginCache Origin = "cache"
	// OriginStale is a cached value served while the upstream is
	// unavailable: either past its TTL after the upstream call failed
	// (circuit open, refused, failing), or still within its TTL while the
	// upstream is known to be down (circuit open, or the host refuses
	// connections), so nothing can refresh it. The value is the cached one
	// either way.
	OriginStale Origin = "stale"
)

// Meta is the provenance every served value carries.
type Meta struct {
	// AsOf is the time the value describes (the server's quote time where
	// KIS gives one, else the fetch time).
	AsOf time.Time `json:"as_of"`
	// Source names the upstream: "kis", "emulator" or "mock".
	Source string `json:"source"`
	// Origin is "source", "cache" or "stale".
	Origin Origin `json:"origin"`
	// Stale is true when Origin is OriginStale: the upstream is
	// unavailable and this is the last value kisfeed has.
	Stale bool `json:"stale"`
	// Expires is when a cached value's TTL ends; zero when not cached.
	Expires time.Time `json:"-"`
}

// Quote is a stock's current price snapshot.
type Quote struct {
	Code         string
	Name         string
	Market       Market
	Price        int64 // last traded price (stck_prpr)
	Open         int64
	High         int64
	Low          int64
	PrevClose    int64
	BasePrice    int64 // base price the daily limits derive from (stck_sdpr)
	Change       int64 // Price - PrevClose, signed
	ChangeRate   float64
	Volume       int64 // cumulative shares today
	TradingValue int64 // cumulative won today
	UpperLimit   int64
	LowerLimit   int64
	TickSize     int64
	Meta         Meta
}

// Level is one price level of an order book.
type Level struct {
	Price    int64
	Quantity int64
}

// BookDepth is the number of levels KIS reports on each side.
const BookDepth = 10

// OrderBook is the 10-level book of one stock. Asks[0] is the best
// (lowest) ask, Bids[0] the best (highest) bid.
type OrderBook struct {
	Code          string
	Asks          [BookDepth]Level
	Bids          [BookDepth]Level
	TotalAskQty   int64
	TotalBidQty   int64
	ExpectedPrice int64 // auction expected price (antc_cnpr), 0 when none
	Meta          Meta
}

// Interval is the period one candle covers.
type Interval string

// The candle intervals kisfeed serves.
const (
	IntervalMinute Interval = "minute"
	IntervalDay    Interval = "day"
	IntervalWeek   Interval = "week"
	IntervalMonth  Interval = "month"
)

// ParseInterval accepts "minute", "day", "week" or "month" (any case; "1m",
// "d", "w", "m" are accepted as short forms).
func ParseInterval(s string) (Interval, error) {
	switch upper(s) {
	case "MINUTE", "1M", "MIN":
		return IntervalMinute, nil
	case "DAY", "D", "DAILY":
		return IntervalDay, nil
	case "WEEK", "W", "WEEKLY":
		return IntervalWeek, nil
	case "MONTH", "M", "MONTHLY":
		return IntervalMonth, nil
	}
	return "", fmt.Errorf("%w: interval %q: want minute, day, week or month", ErrInvalid, s)
}

// Candle is one OHLCV bar. Time is the start of the period in KST: midnight
// of the trading day for daily bars, the first day of the period for weekly
// and monthly bars (as KIS labels them: the period's first trading day), and
// the minute for minute bars.
type Candle struct {
	Time   time.Time
	Open   int64
	High   int64
	Low    int64
	Close  int64
	Volume int64
	Value  int64 // traded value in won
}

// CandleQuery selects a candle series.
type CandleQuery struct {
	Code     Code
	Interval Interval
	// From and To bound the series by KST calendar day, inclusive. For
	// minute candles only From is used: the trading day to read.
	From, To time.Time
	// Unadjusted asks for original prices instead of split-adjusted ones.
	Unadjusted bool
}

// Candles is a candle series, oldest first.
type Candles struct {
	Code     string
	Interval Interval
	Bars     []Candle
	Meta     Meta
}

// StockInfo is descriptive data about one stock.
type StockInfo struct {
	Code           string
	ISIN           string
	Name           string // short Korean name
	FullName       string // full Korean name (prdt_name)
	EnglishName    string
	Market         Market
	Group          string // security group: ST, EF, EN, ...
	Sector         string // index sector name where known
	ListedShares   int64
	ParValue       int64
	Capital        int64 // won
	ListingDate    time.Time
	Halted         bool
	Administrative bool
	NXTTradable    bool
	Meta           Meta
}
