package kisfeed

import "time"

// Side says who started an execution: a buyer lifting the ask, a seller
// hitting the bid, or the opening auction (KIS's CCLD_DVSN 1, 5 and 3).
type Side string

// The sides a [Trade] can carry.
const (
	SideUnknown Side = ""         // a value KIS has not documented
	SideBuy     Side = "buy"      // buy-initiated (CCLD_DVSN 1, "+")
	SideSell    Side = "sell"     // sell-initiated (CCLD_DVSN 5, "−")
	SidePreOpen Side = "pre_open" // auction / pre-open (CCLD_DVSN 3)
)

// Trade is one execution of a stock as a real-time feed reports it (KIS
// H0STCNT0 and its kin). Prices and quantities are won and shares; rates
// are percent values. Every cumulative field is the day's total as of this
// execution, so a consumer that misses trades still holds a correct
// running state after the next one.
type Trade struct {
	Code string
	// Time is the execution time in KST, from the business date and the
	// execution's HHMMSS (second resolution).
	Time       time.Time
	Price      int64   // execution price
	Change     int64   // Price − previous close, signed
	ChangeRate float64 // Change as a percent of the previous close, signed
	Volume     int64   // shares in this execution
	CumVolume  int64   // shares traded today, this execution included
	CumValue   int64   // won traded today, this execution included
	Open       int64
	High       int64
	Low        int64
	Ask        int64 // best ask after this execution
	Bid        int64 // best bid after this execution
	AskQty     int64 // quantity at the best ask
	BidQty     int64 // quantity at the best bid
	Side       Side
	VWAP       float64 // today's volume-weighted average price
	// Strength is KIS's 체결강도: buy-initiated volume over sell-initiated
	// volume × 100.
	Strength    float64
	TotalAskQty int64 // total quantity on the ask side of the book
	TotalBidQty int64 // total quantity on the bid side of the book
	// Expected is true when the record is an auction's expected price
	// (KIS HOUR_CLS_CODE other than "0"), not an execution.
	Expected bool
	// Halted is true while trading in the stock is suspended (TRHT_YN).
	Halted bool
}

// PrevClose is the previous session's close the change is measured from.
func (t Trade) PrevClose() int64 { return t.Price - t.Change }

// Book is one update of a stock's 10-level order book as a real-time feed
// reports it (KIS H0STASP0 and its kin). Asks[0] is the best (lowest) ask,
// Bids[0] the best (highest) bid; a level with Price 0 is empty.
type Book struct {
	Code string
	// Time is the book's time in KST. KIS sends only HHMMSS; the date is the
	// receiver's market day.
	Time        time.Time
	Asks        [BookDepth]Level
	Bids        [BookDepth]Level
	TotalAskQty int64
	TotalBidQty int64
	// ExpectedPrice, ExpectedQty and ExpectedVolume describe the auction's
	// expected execution (ANTC_CNPR, ANTC_CNQN, ANTC_VOL); 0 outside auctions.
	ExpectedPrice  int64
	ExpectedQty    int64
	ExpectedVolume int64
	CumVolume      int64 // shares traded today
}

// OrderBook returns b as the snapshot type the REST path serves, with
// meta as its provenance: what a stream writes through into a cache.
func (b Book) OrderBook(meta Meta) OrderBook {
	return OrderBook{Code: b.Code, Asks: b.Asks, Bids: b.Bids, TotalAskQty: b.TotalAskQty,
		TotalBidQty: b.TotalBidQty, ExpectedPrice: b.ExpectedPrice, Meta: meta}
}

// Gap says that a stream's data for Code may be missing between From and
// To: the feed dropped (or went silent) and was restored. A consumer that
// keeps state from the stream re-reads a snapshot for Code (the stream
// clients call a resync hook at the same moment). It lives in the domain,
// not in the KIS client, because any stream (a relay, a replay) has the
// same notion and consumers should not import a wire client to handle it.
type Gap struct {
	Code string
	// From is the last moment data for Code is known to be complete: the
	// last frame received for it before the drop, or the drop itself when
	// none was received.
	From time.Time
	// To is when the stream for Code was restored (the re-registration was
	// acknowledged); data after To flows again.
	To time.Time
	// Reason names why the stream dropped ("closed", "watchdog", ...).
	Reason string
}
