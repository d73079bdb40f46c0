package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

func TestValidatorCheck(t *testing.T) {
	t.Parallel()
	v := &validator{universe: map[string]kisfeed.Stock{"005930": {Code: "005930", Group: "ST"}}}
	day := kisfeed.Date(2025, 6, 4)
	good := kisfeed.DailyBar{Code: "005930", Date: day, Open: 59000, High: 60000, Low: 58500, Close: 59800, Volume: 100, Value: 5_950_000}
	tests := []struct {
		name      string
		edit      func(b *kisfeed.DailyBar)
		prevClose int64
		want      string // substring of the reason; "" = accepted
	}{
		{"sound", func(*kisfeed.DailyBar) {}, 59000, ""},
		{"sound without reference", func(*kisfeed.DailyBar) {}, 0, ""},
		{"zero volume day", func(b *kisfeed.DailyBar) { b.Volume, b.Value = 0, 0 }, 0, ""},
		{"malformed code", func(b *kisfeed.DailyBar) { b.Code = "59 30" }, 0, "malformed"},
		{"not in universe", func(b *kisfeed.DailyBar) { b.Code = "000660" }, 0, "not in the universe"},
		{"no date", func(b *kisfeed.DailyBar) { b.Date = time.Time{} }, 0, "date missing"},
		{"holiday", func(b *kisfeed.DailyBar) { b.Date = kisfeed.Date(2025, 6, 3) }, 0, "not a trading day"},
		{"weekend", func(b *kisfeed.DailyBar) { b.Date = kisfeed.Date(2025, 6, 7) }, 0, "not a trading day"},
		{"open missing", func(b *kisfeed.DailyBar) { b.Open = 0 }, 0, "open 0 missing"},
		{"negative close", func(b *kisfeed.DailyBar) { b.Close = -59800 }, 0, "close -59800 missing or not positive"},
		{"high below low", func(b *kisfeed.DailyBar) { b.High, b.Low = 58500, 60000 }, 0, "low 60000 above high 58500"},
		{"open above high", func(b *kisfeed.DailyBar) { b.Open = 60100 }, 0, "open 60100 outside"},
		{"close below low", func(b *kisfeed.DailyBar) { b.Close = 58400 }, 0, "close 58400 outside"},
		{"negative volume", func(b *kisfeed.DailyBar) { b.Volume = -1 }, 0, "volume -1 negative"},
		{"negative value", func(b *kisfeed.DailyBar) { b.Value = -1 }, 0, "value -1 negative"},
		{"off tick", func(b *kisfeed.DailyBar) { b.Close = 59810 }, 0, "close 59810 off the tick grid (tick 100)"},
		{"off tick before the 2023 table is not checked", func(b *kisfeed.DailyBar) {
			b.Date = kisfeed.Date(2022, 6, 2)
			b.Close = 59810
		}, 0, ""},
		{"above upper limit", func(b *kisfeed.DailyBar) { b.High = 80000 }, 59000, "above the upper limit 76700"},
		{"below lower limit", func(b *kisfeed.DailyBar) { b.Low, b.Open = 41000, 41000 }, 59000, "below the lower limit 41300"},
		{"at the limits", func(b *kisfeed.DailyBar) { b.High, b.Low = 76700, 41300 }, 59000, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := good
			tt.edit(&b)
			got := v.check(b, tt.prevClose)
			if tt.want == "" && got != "" {
				t.Errorf("check = %q, want accepted", got)
			}
			if tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("check = %q, want a reason containing %q", got, tt.want)
			}
		})
	}
}
