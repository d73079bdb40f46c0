package emulator

import (
	"testing"
	"time"
)

// BenchmarkTradeFrames measures how fast the emulator renders H0STCNT0
// records (the feed's CPU cost per record), over 10 minutes of 005930.
func BenchmarkTradeFrames(b *testing.B) {
	s, err := New(WithMarket(sharedMarket()))
	if err != nil {
		b.Fatal(err)
	}
	ex := sharedMarket().Executions("005930", marketTime, marketTime.Add(10*time.Minute))
	r := &wsReg{key: regKey{TrTrade, "005930"}}
	b.ResetTimer()
	records := 0
	for b.Loop() {
		for i := 0; i < len(ex); i += maxRecords {
			batch := ex[i:min(i+maxRecords, len(ex))]
			s.tradeFrame(r, batch, 0)
			records += len(batch)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
}
