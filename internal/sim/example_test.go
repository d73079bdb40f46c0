package sim_test

import (
	"fmt"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sim"
)

func ExampleMarket() {
	m := sim.New(1)
	s, _ := m.Stock("005930")
	fmt.Println(s.Name, s.Market, s.Group, s.ISIN)

	day := kisfeed.Date(2024, time.March, 5)
	bar, _ := m.DailyBar("005930", day)
	minutes := m.MinuteBars("005930", day)
	fmt.Println(len(minutes), minutes[0].Open == bar.Open, minutes[380].Close == bar.Close)

	// After the close the quote is the day's bar.
	q, _ := m.QuoteAt("005930", day.Add(16*time.Hour))
	fmt.Println(q.Price == bar.Close, q.Volume == bar.Volume, q.TradingValue == bar.Value)
	// Output:
	// 삼성전자 KOSPI ST KR7005930003
	// 381 true true
	// true true true
}
