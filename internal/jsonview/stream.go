package jsonview

import (
	"time"

	"github.com/kisfeed/kisfeed"
)

// The stream views: one JSON object per real-time event, the shape of a
// `kisfeed watch --json` line and of the API's streamed events. Each
// carries "type" first ([TypeTrade], [TypeBook], [TypeGap]) so a reader
// of mixed NDJSON lines (or an SSE consumer, where the same word is the
// event name) can tell them apart before decoding the rest. These shapes
// are a contract: add fields, never rename or drop one.

// The "type" values of the stream views.
const (
	TypeTrade = "trade"
	TypeBook  = "book"
	TypeGap   = "gap"
)

// Trade is the view of a [kisfeed.Trade], one execution:
//
//	{"type":"trade","code":"005930","time":"2026-11-27T10:00:01+09:00",
//	 "price":71000,"change":500,"change_rate":0.71,"volume":12,
//	 "cum_volume":1234567,"cum_value":87654321000,"open":70500,
//	 "high":71200,"low":70400,"ask":71100,"bid":71000,"ask_qty":300,
//	 "bid_qty":120,"side":"buy","vwap":70912.35,"strength":101.2,
//	 "total_ask_qty":53000,"total_bid_qty":61000,"expected":false,
//	 "halted":false}
//
// time is the execution time (KIS stamps whole seconds); cum_volume and
// cum_value are the day's totals including this execution; side is
// "buy", "sell", "pre_open" or "" (unknown); expected marks an auction's
// expected price rather than an execution.
type Trade struct {
	Type        string    `json:"type"`
	Code        string    `json:"code"`
	Time        time.Time `json:"time"`
	Price       int64     `json:"price"`
	Change      int64     `json:"change"`
	ChangeRate  float64   `json:"change_rate"`
	Volume      int64     `json:"volume"`
	CumVolume   int64     `json:"cum_volume"`
	CumValue    int64     `json:"cum_value"`
	Open        int64     `json:"open"`
	High        int64     `json:"high"`
	Low         int64     `json:"low"`
	Ask         int64     `json:"ask"`
	Bid         int64     `json:"bid"`
	AskQty      int64     `json:"ask_qty"`
	BidQty      int64     `json:"bid_qty"`
	Side        string    `json:"side"`
	VWAP        float64   `json:"vwap"`
	Strength    float64   `json:"strength"`
	TotalAskQty int64     `json:"total_ask_qty"`
	TotalBidQty int64     `json:"total_bid_qty"`
	Expected    bool      `json:"expected"`
	Halted      bool      `json:"halted"`
}

// NewTrade is the view of t.
func NewTrade(t kisfeed.Trade) Trade {
	return Trade{Type: TypeTrade, Code: t.Code, Time: KST(t.Time),
		Price: t.Price, Change: t.Change, ChangeRate: t.ChangeRate, Volume: t.Volume,
		CumVolume: t.CumVolume, CumValue: t.CumValue, Open: t.Open, High: t.High, Low: t.Low,
		Ask: t.Ask, Bid: t.Bid, AskQty: t.AskQty, BidQty: t.BidQty, Side: string(t.Side),
		VWAP: t.VWAP, Strength: t.Strength, TotalAskQty: t.TotalAskQty, TotalBidQty: t.TotalBidQty,
		Expected: t.Expected, Halted: t.Halted}
}

// Book is the view of a [kisfeed.Book], one update of the 10-level book:
//
//	{"type":"book","code":"005930","time":"2026-11-27T10:00:01+09:00",
//	 "asks":[{"price":71100,"quantity":300},…10],"bids":[…10],
//	 "total_ask_qty":53000,"total_bid_qty":61000,"expected_price":0,
//	 "expected_qty":0,"expected_volume":0,"cum_volume":1234567}
//
// asks are best (lowest) first, bids best (highest) first, always ten
// each; a level with price 0 is empty. The expected_* fields describe an
// auction's expected execution (0 outside auctions).
type Book struct {
	Type           string    `json:"type"`
	Code           string    `json:"code"`
	Time           time.Time `json:"time"`
	Asks           []Level   `json:"asks"`
	Bids           []Level   `json:"bids"`
	TotalAskQty    int64     `json:"total_ask_qty"`
	TotalBidQty    int64     `json:"total_bid_qty"`
	ExpectedPrice  int64     `json:"expected_price"`
	ExpectedQty    int64     `json:"expected_qty"`
	ExpectedVolume int64     `json:"expected_volume"`
	CumVolume      int64     `json:"cum_volume"`
}

// NewBook is the view of b.
func NewBook(b kisfeed.Book) Book {
	out := Book{Type: TypeBook, Code: b.Code, Time: KST(b.Time),
		Asks: make([]Level, len(b.Asks)), Bids: make([]Level, len(b.Bids)),
		TotalAskQty: b.TotalAskQty, TotalBidQty: b.TotalBidQty, ExpectedPrice: b.ExpectedPrice,
		ExpectedQty: b.ExpectedQty, ExpectedVolume: b.ExpectedVolume, CumVolume: b.CumVolume}
	for i, l := range b.Asks {
		out.Asks[i] = Level(l)
	}
	for i, l := range b.Bids {
		out.Bids[i] = Level(l)
	}
	return out
}

// Gap is the view of a [kisfeed.Gap]: the stream for code dropped and was
// restored, and trades or books between from and to may be missing:
//
//	{"type":"gap","code":"005930","from":"2026-11-27T10:00:31+09:00",
//	 "to":"2026-11-27T10:00:33+09:00","reason":"dropped"}
//
// A consumer keeping state from the stream re-reads a snapshot (quote,
// order book) of code. reason names why the stream dropped ("dropped",
// "closed", "watchdog", …).
type Gap struct {
	Type   string    `json:"type"`
	Code   string    `json:"code"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason"`
}

// NewGap is the view of g.
func NewGap(g kisfeed.Gap) Gap {
	return Gap{Type: TypeGap, Code: g.Code, From: KST(g.From), To: KST(g.To), Reason: g.Reason}
}
