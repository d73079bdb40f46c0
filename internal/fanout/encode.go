package fanout

import (
	"encoding/json"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// The JSON shapes of the events, with the field names of stream-spec.md
// and of jsonview's stream views (type first, then the value's fields).
//
// TODO(lead): switch to jsonview.Trade/Book/Gap (the watch helper's
// internal/jsonview/stream.go) once it is merged; these copies exist only
// to avoid a clash while both are written. The bodies here leave out
// "type" and "id", which encodeEvent puts in front (the id is known only
// under the hub's lock, the encoding is done before it).

type tradeJSON struct {
	ReceivedAt  string    `json:"received_at"`
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

type levelJSON struct {
	Price    int64 `json:"price"`
	Quantity int64 `json:"quantity"`
}

type bookJSON struct {
	ReceivedAt     string                       `json:"received_at"`
	Code           string                       `json:"code"`
	Time           time.Time                    `json:"time"`
	Asks           [kisfeed.BookDepth]levelJSON `json:"asks"`
	Bids           [kisfeed.BookDepth]levelJSON `json:"bids"`
	TotalAskQty    int64                        `json:"total_ask_qty"`
	TotalBidQty    int64                        `json:"total_bid_qty"`
	ExpectedPrice  int64                        `json:"expected_price"`
	ExpectedQty    int64                        `json:"expected_qty"`
	ExpectedVolume int64                        `json:"expected_volume"`
	CumVolume      int64                        `json:"cum_volume"`
}

type gapJSON struct {
	Type       string    `json:"type,omitempty"`
	ReceivedAt string    `json:"received_at,omitempty"`
	Code       string    `json:"code"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Reason     string    `json:"reason"`
}

// kst shows t on Korean time to the second, as jsonview.KST does.
func kst(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Second).In(kisfeed.KST)
}

// receivedLayout is received_at's format: RFC 3339 with milliseconds, so
// delivery latency can be measured to the millisecond.
const receivedLayout = "2006-01-02T15:04:05.000Z07:00"

// encodeBody is ev's JSON object without "type" and "id" (its first byte
// is '{'); the type is returned too.
func encodeBody(ev *Event) (typ string, body []byte) {
	recv := ev.ReceivedAt.In(kisfeed.KST).Format(receivedLayout)
	var v any
	switch ev.Kind {
	case stream.EventTrade:
		t := &ev.Trade
		typ, v = TypeTrade, tradeJSON{ReceivedAt: recv, Code: t.Code, Time: kst(t.Time),
			Price: t.Price, Change: t.Change, ChangeRate: t.ChangeRate, Volume: t.Volume,
			CumVolume: t.CumVolume, CumValue: t.CumValue, Open: t.Open, High: t.High, Low: t.Low,
			Ask: t.Ask, Bid: t.Bid, AskQty: t.AskQty, BidQty: t.BidQty, Side: string(t.Side),
			VWAP: t.VWAP, Strength: t.Strength, TotalAskQty: t.TotalAskQty, TotalBidQty: t.TotalBidQty,
			Expected: t.Expected, Halted: t.Halted}
	case stream.EventBook:
		b := &ev.Book
		bj := bookJSON{ReceivedAt: recv, Code: b.Code, Time: kst(b.Time),
			TotalAskQty: b.TotalAskQty, TotalBidQty: b.TotalBidQty, ExpectedPrice: b.ExpectedPrice,
			ExpectedQty: b.ExpectedQty, ExpectedVolume: b.ExpectedVolume, CumVolume: b.CumVolume}
		for i, l := range b.Asks {
			bj.Asks[i] = levelJSON(l)
		}
		for i, l := range b.Bids {
			bj.Bids[i] = levelJSON(l)
		}
		typ, v = TypeBook, bj
	default:
		g := &ev.Gap
		typ, v = TypeGap, gapJSON{ReceivedAt: recv, Code: g.Code, From: kst(g.From), To: kst(g.To), Reason: g.Reason}
	}
	body, err := json.Marshal(v)
	if err != nil {
		// Only a NaN or Inf float can fail; KIS never sends one, and a
		// malformed value must not stop the fan-out: send the code alone.
		body, _ = json.Marshal(struct {
			ReceivedAt string `json:"received_at"`
			Code       string `json:"code"`
		}{recv, ev.code()})
	}
	return typ, body
}

// withHead puts "type" and "id" in front of body (an object from
// encodeBody): {"type":"trade","id":"E-S",...}.
func withHead(typ, id string, body []byte) []byte {
	b := make([]byte, 0, len(body)+len(typ)+len(id)+20)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","id":"`...)
	b = append(b, id...)
	b = append(b, '"')
	if len(body) > 2 {
		b = append(b, ',')
	}
	return append(b, body[1:]...)
}
