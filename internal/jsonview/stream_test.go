package jsonview_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/jsonview"
)

// TestStreamViews pins the stream events' JSON: the SSE fan-out reuses
// them, so a renamed or dropped field must fail here.
func TestStreamViews(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 1, 0, 1, 500_000_000, time.UTC) // 10:00:01.5 KST
	var book kisfeed.Book
	book.Code, book.Time, book.TotalAskQty, book.TotalBidQty, book.CumVolume = "005930", at, 53000, 61000, 1234567
	book.Asks[0], book.Bids[0] = kisfeed.Level{Price: 71100, Quantity: 300}, kisfeed.Level{Price: 71000, Quantity: 120}
	empty10 := strings.Repeat(`,{"price":0,"quantity":0}`, 9)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"trade", jsonview.NewTrade(kisfeed.Trade{Code: "005930", Time: at, Price: 71000, Change: 500, ChangeRate: 0.71,
			Volume: 12, CumVolume: 1234567, CumValue: 87654321000, Open: 70500, High: 71200, Low: 70400,
			Ask: 71100, Bid: 71000, AskQty: 300, BidQty: 120, Side: kisfeed.SideBuy, VWAP: 70912.35, Strength: 101.2,
			TotalAskQty: 53000, TotalBidQty: 61000}),
			`{"type":"trade","code":"005930","time":"2026-11-27T10:00:01+09:00","price":71000,"change":500,"change_rate":0.71,` +
				`"volume":12,"cum_volume":1234567,"cum_value":87654321000,"open":70500,"high":71200,"low":70400,"ask":71100,` +
				`"bid":71000,"ask_qty":300,"bid_qty":120,"side":"buy","vwap":70912.35,"strength":101.2,"total_ask_qty":53000,` +
				`"total_bid_qty":61000,"expected":false,"halted":false}`},
		{"book has ten levels a side", jsonview.NewBook(book),
			`{"type":"book","code":"005930","time":"2026-11-27T10:00:01+09:00","asks":[{"price":71100,"quantity":300}` + empty10 +
				`],"bids":[{"price":71000,"quantity":120}` + empty10 + `],"total_ask_qty":53000,"total_bid_qty":61000,` +
				`"expected_price":0,"expected_qty":0,"expected_volume":0,"cum_volume":1234567}`},
		{"gap", jsonview.NewGap(kisfeed.Gap{Code: "000660", From: at, To: at.Add(2 * time.Second), Reason: "dropped"}),
			`{"type":"gap","code":"000660","from":"2026-11-27T10:00:01+09:00","to":"2026-11-27T10:00:03+09:00","reason":"dropped"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}
