package jsonview_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/jsonview"
)

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestViews(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 20, 6, 40, 0, 123456789, time.UTC) // 15:40:00.123 KST
	day := kisfeed.Date(2026, 5, 20)
	meta := kisfeed.Meta{AsOf: at, Source: "kis", Origin: kisfeed.OriginCache, Expires: at.Add(time.Minute)}
	var book kisfeed.OrderBook
	book.Code, book.Meta = "005930", meta
	book.Asks[0], book.Bids[0] = kisfeed.Level{Price: 71100, Quantity: 3}, kisfeed.Level{Price: 71000, Quantity: 4}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"meta without origin reads source", jsonview.NewMeta(kisfeed.Meta{AsOf: at, Source: "mock"}),
			`{"as_of":"2026-05-20T15:40:00+09:00","source":"mock","origin":"source","stale":false}`},
		{"stale origin sets stale", jsonview.NewMeta(kisfeed.Meta{AsOf: at, Source: "kis", Origin: kisfeed.OriginStale}),
			`{"as_of":"2026-05-20T15:40:00+09:00","source":"kis","origin":"stale","stale":true}`},
		{"quote keeps empty market and zero tick size", jsonview.NewQuote(&kisfeed.Quote{Code: "005930", Price: 71000, Meta: meta}),
			`{"code":"005930","name":"","market":"","price":71000,"open":0,"high":0,"low":0,"prev_close":0,"base_price":0,` +
				`"change":0,"change_rate":0,"volume":0,"trading_value":0,"upper_limit":0,"lower_limit":0,"tick_size":0,` +
				`"as_of":"2026-05-20T15:40:00+09:00","source":"kis","origin":"cache","stale":false}`},
		{"candles with an open window", jsonview.NewCandles(&kisfeed.Candles{Code: "005930", Interval: kisfeed.IntervalDay, Meta: meta,
			Bars: []kisfeed.Candle{{Time: day.AddDate(0, 0, -1), Close: 1}, {Time: day, Close: 2}}},
			kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalDay, Unadjusted: true}),
			`{"code":"005930","interval":"day","from":"2026-05-19","to":"2026-05-20","adjusted":false,"bars":[` +
				`{"time":"2026-05-19T00:00:00+09:00","open":0,"high":0,"low":0,"close":1,"volume":0,"value":0},` +
				`{"time":"2026-05-20T00:00:00+09:00","open":0,"high":0,"low":0,"close":2,"volume":0,"value":0}],` +
				`"as_of":"2026-05-20T15:40:00+09:00","source":"kis","origin":"cache","stale":false}`},
		{"candles keep the asked window", jsonview.NewCandles(&kisfeed.Candles{Meta: meta},
			kisfeed.CandleQuery{Code: kisfeed.MustParseCode("005930"), Interval: kisfeed.IntervalWeek, From: day.AddDate(0, -1, 0), To: day}),
			`{"code":"005930","interval":"week","from":"2026-04-20","to":"2026-05-20","adjusted":true,"bars":[],` +
				`"as_of":"2026-05-20T15:40:00+09:00","source":"kis","origin":"cache","stale":false}`},
		{"info without listing date", jsonview.NewStockInfo(&kisfeed.StockInfo{Code: "005930", Market: kisfeed.MarketKOSPI, Meta: meta}),
			`{"code":"005930","isin":"","name":"","full_name":"","english_name":"","market":"KOSPI","group":"","sector":"",` +
				`"listed_shares":0,"par_value":0,"capital":0,"halted":false,"administrative":false,"nxt_tradable":false,` +
				`"as_of":"2026-05-20T15:40:00+09:00","source":"kis","origin":"cache","stale":false}`},
		{"stock", jsonview.NewStock(kisfeed.Stock{Code: "005935", Name: "삼성전자우", Market: kisfeed.MarketKOSPI, Group: "ST", Preferred: true}),
			`{"code":"005935","isin":"","name":"삼성전자우","market":"KOSPI","group":"ST","preferred":true,"halted":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := marshal(t, tt.v); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("order book levels", func(t *testing.T) {
		t.Parallel()
		v := jsonview.NewOrderBook(&book)
		if len(v.Asks) != kisfeed.BookDepth || len(v.Bids) != kisfeed.BookDepth ||
			v.Asks[0] != (jsonview.Level{Price: 71100, Quantity: 3}) || v.Bids[0] != (jsonview.Level{Price: 71000, Quantity: 4}) {
			t.Errorf("got asks %v bids %v, want 10 levels each, best first", v.Asks, v.Bids)
		}
	})
}
