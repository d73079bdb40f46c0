// Package jsonview is the one JSON representation of kisfeed's domain
// values: the HTTP API's response bodies and the CLI's --json output are
// built from the same types here, so a quote, order book, candle series or
// stock info reads the same wherever it comes from.
//
// The representation: snake_case names; times as RFC 3339 on Korean time
// to the second (2026-05-20T15:40:00+09:00; [KST]); prices and amounts as integers in won; rates as percent;
// every market-data value flattened together with its provenance
// ([Meta]: as_of, source, origin, stale). The HTTP API's OpenAPI document
// (internal/httpapi/openapi.json) describes these types, and its sync test
// keeps the two equal.
//
// Each view is a plain struct built by a New function from the domain
// value; encoding is left to the caller (the API pools its encoders).
//
// The real-time events ([Trade], [Book], [Gap]; stream.go) follow the same
// rules and add a "type" field, for NDJSON lines and server-sent events.
package jsonview

import (
	"time"

	"github.com/kisfeed/kisfeed"
)

// KST shows t on Korean time to the whole second, so it marshals as
// 2026-05-20T15:40:00+09:00: KIS reports times to the second, and a
// fetch time's nanoseconds would only be noise. The zero time stays zero
// (for omitzero).
func KST(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Second).In(kisfeed.KST)
}

// Meta is the provenance every market-data value carries, flattened into
// its view by embedding.
type Meta struct {
	AsOf   time.Time `json:"as_of"`
	Source string    `json:"source"`
	Origin string    `json:"origin"`
	Stale  bool      `json:"stale"`
}

// NewMeta is the view of m. An empty origin reads "source" (a value
// fetched just now), and a stale origin always sets stale.
func NewMeta(m kisfeed.Meta) Meta {
	origin := m.Origin
	if origin == "" {
		origin = kisfeed.OriginSource
	}
	return Meta{AsOf: KST(m.AsOf), Source: m.Source, Origin: string(origin), Stale: m.Stale || origin == kisfeed.OriginStale}
}

// Quote is the view of a [kisfeed.Quote].
type Quote struct {
	Code         string  `json:"code"`
	Name         string  `json:"name"`
	Market       string  `json:"market"`
	Price        int64   `json:"price"`
	Open         int64   `json:"open"`
	High         int64   `json:"high"`
	Low          int64   `json:"low"`
	PrevClose    int64   `json:"prev_close"`
	BasePrice    int64   `json:"base_price"`
	Change       int64   `json:"change"`
	ChangeRate   float64 `json:"change_rate"`
	Volume       int64   `json:"volume"`
	TradingValue int64   `json:"trading_value"`
	UpperLimit   int64   `json:"upper_limit"`
	LowerLimit   int64   `json:"lower_limit"`
	TickSize     int64   `json:"tick_size"`
	Meta
}

// NewQuote is the view of q.
func NewQuote(q *kisfeed.Quote) Quote {
	return Quote{
		Code: q.Code, Name: q.Name, Market: string(q.Market),
		Price: q.Price, Open: q.Open, High: q.High, Low: q.Low,
		PrevClose: q.PrevClose, BasePrice: q.BasePrice, Change: q.Change, ChangeRate: q.ChangeRate,
		Volume: q.Volume, TradingValue: q.TradingValue,
		UpperLimit: q.UpperLimit, LowerLimit: q.LowerLimit, TickSize: q.TickSize,
		Meta: NewMeta(q.Meta),
	}
}

// Level is the view of one order-book level.
type Level struct {
	Price    int64 `json:"price"`
	Quantity int64 `json:"quantity"`
}

// OrderBook is the view of a [kisfeed.OrderBook]: asks best (lowest)
// first, bids best (highest) first, all ten levels of each.
type OrderBook struct {
	Code          string  `json:"code"`
	Asks          []Level `json:"asks"`
	Bids          []Level `json:"bids"`
	TotalAskQty   int64   `json:"total_ask_qty"`
	TotalBidQty   int64   `json:"total_bid_qty"`
	ExpectedPrice int64   `json:"expected_price"`
	Meta
}

// NewOrderBook is the view of b.
func NewOrderBook(b *kisfeed.OrderBook) OrderBook {
	out := OrderBook{
		Code: b.Code, Asks: make([]Level, len(b.Asks)), Bids: make([]Level, len(b.Bids)),
		TotalAskQty: b.TotalAskQty, TotalBidQty: b.TotalBidQty, ExpectedPrice: b.ExpectedPrice,
		Meta: NewMeta(b.Meta),
	}
	for i, l := range b.Asks {
		out.Asks[i] = Level(l)
	}
	for i, l := range b.Bids {
		out.Bids[i] = Level(l)
	}
	return out
}

// Candle is the view of one [kisfeed.Candle].
type Candle struct {
	Time   time.Time `json:"time"`
	Open   int64     `json:"open"`
	High   int64     `json:"high"`
	Low    int64     `json:"low"`
	Close  int64     `json:"close"`
	Volume int64     `json:"volume"`
	Value  int64     `json:"value"`
}

// Candles is the view of a [kisfeed.Candles] series with the window it
// was asked for.
type Candles struct {
	Code     string   `json:"code"`
	Interval string   `json:"interval"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Adjusted bool     `json:"adjusted"`
	Bars     []Candle `json:"bars"`
	Meta
}

// NewCandles is the view of c, the answer to q. From and To are q's
// window (YYYY-MM-DD); an end q leaves open (zero, for the source's
// default) is the day of the series' first or last bar, so the view
// still says what it covers ("" when there are no bars).
func NewCandles(c *kisfeed.Candles, q kisfeed.CandleQuery) Candles {
	out := Candles{
		Code: c.Code, Interval: string(c.Interval), From: day(q.From), To: day(q.To), Adjusted: !q.Unadjusted,
		Bars: make([]Candle, len(c.Bars)), Meta: NewMeta(c.Meta),
	}
	if out.Code == "" {
		out.Code = q.Code.String()
	}
	if out.Interval == "" {
		out.Interval = string(q.Interval)
	}
	if n := len(c.Bars); n > 0 {
		if out.From == "" {
			out.From = day(c.Bars[0].Time)
		}
		if out.To == "" {
			out.To = day(c.Bars[n-1].Time)
		}
	}
	for i, b := range c.Bars {
		out.Bars[i] = Candle{Time: KST(b.Time), Open: b.Open, High: b.High, Low: b.Low,
			Close: b.Close, Volume: b.Volume, Value: b.Value}
	}
	return out
}

// day is t's KST calendar day as YYYY-MM-DD, or "" for the zero time.
func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kisfeed.KST).Format(time.DateOnly)
}

// StockInfo is the view of a [kisfeed.StockInfo]; listing_date is left
// out when unknown.
type StockInfo struct {
	Code           string    `json:"code"`
	ISIN           string    `json:"isin"`
	Name           string    `json:"name"`
	FullName       string    `json:"full_name"`
	EnglishName    string    `json:"english_name"`
	Market         string    `json:"market"`
	Group          string    `json:"group"`
	Sector         string    `json:"sector"`
	ListedShares   int64     `json:"listed_shares"`
	ParValue       int64     `json:"par_value"`
	Capital        int64     `json:"capital"`
	ListingDate    time.Time `json:"listing_date,omitzero"`
	Halted         bool      `json:"halted"`
	Administrative bool      `json:"administrative"`
	NXTTradable    bool      `json:"nxt_tradable"`
	Meta
}

// NewStockInfo is the view of i.
func NewStockInfo(i *kisfeed.StockInfo) StockInfo {
	return StockInfo{
		Code: i.Code, ISIN: i.ISIN, Name: i.Name, FullName: i.FullName, EnglishName: i.EnglishName,
		Market: string(i.Market), Group: i.Group, Sector: i.Sector,
		ListedShares: i.ListedShares, ParValue: i.ParValue, Capital: i.Capital,
		ListingDate: KST(i.ListingDate), Halted: i.Halted, Administrative: i.Administrative,
		NXTTradable: i.NXTTradable, Meta: NewMeta(i.Meta),
	}
}

// Stock is the view of one [kisfeed.Stock] of the universe.
type Stock struct {
	Code      string `json:"code"`
	ISIN      string `json:"isin"`
	Name      string `json:"name"`
	Market    string `json:"market"`
	Group     string `json:"group"`
	Preferred bool   `json:"preferred"`
	Halted    bool   `json:"halted"`
}

// NewStock is the view of s.
func NewStock(s kisfeed.Stock) Stock {
	return Stock{Code: s.Code, ISIN: s.ISIN, Name: s.Name, Market: string(s.Market), Group: s.Group,
		Preferred: s.Preferred, Halted: s.Halted}
}
