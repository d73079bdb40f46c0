package krx

import (
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

func TestTickSize(t *testing.T) {
	tests := []struct {
		price, want int64
	}{
		{1, 1}, {1_999, 1}, {2_000, 5}, {4_995, 5}, {5_000, 10}, {19_990, 10},
		{20_000, 50}, {49_950, 50}, {50_000, 100}, {199_900, 100}, {200_000, 500},
		{499_500, 500}, {500_000, 1_000}, {1_234_000, 1_000},
	}
	for _, tt := range tests {
		if got := TickSize(tt.price); got != tt.want {
			t.Errorf("TickSize(%d) = %d, want %d", tt.price, got, tt.want)
		}
	}
}

func TestRounding(t *testing.T) {
	tests := []struct {
		p, down, up int64
	}{
		{1_999, 1_999, 1_999},
		{2_001, 2_000, 2_005},
		{19_995, 19_990, 20_000},
		{49_999, 49_950, 50_000},
		{199_950, 199_900, 200_000},
		{499_999, 499_500, 500_000},
		{0, 1, 1},
	}
	for _, tt := range tests {
		if got := RoundDown(tt.p); got != tt.down {
			t.Errorf("RoundDown(%d) = %d, want %d", tt.p, got, tt.down)
		}
		if got := RoundUp(tt.p); got != tt.up {
			t.Errorf("RoundUp(%d) = %d, want %d", tt.p, got, tt.up)
		}
		if !OnTick(RoundDown(tt.p)) || !OnTick(RoundUp(tt.p)) {
			t.Errorf("rounding %d left the tick grid", tt.p)
		}
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		base, upper, lower int64
	}{
		{55_900, 72_600, 39_150},   // 72,670 → 72,600 (tick 100); 39,130 → 39,150 (tick 50)
		{128_500, 167_000, 90_000}, // the portal example: 167,050 → 167,000; 89,950 → 90,000
		{1_000, 1_300, 700},
		{2, 2, 2},
	}
	for _, tt := range tests {
		up, lo := Limits(tt.base)
		if up != tt.upper || lo != tt.lower {
			t.Errorf("Limits(%d) = %d, %d; want %d, %d", tt.base, up, lo, tt.upper, tt.lower)
		}
	}
	// Property: limits are on tick and within ±30 % for every base.
	for base := int64(1); base < 2_000_000; base += 997 {
		up, lo := Limits(base)
		if !OnTick(up) || !OnTick(lo) {
			t.Fatalf("Limits(%d) = %d, %d: off tick", base, up, lo)
		}
		if float64(up) > float64(base)*1.3+0.5 || float64(lo) < float64(base)*0.7-0.5 {
			t.Fatalf("Limits(%d) = %d, %d: outside ±30%%", base, up, lo)
		}
	}
}

func TestCalendar(t *testing.T) {
	tests := []struct {
		date string
		want bool
	}{
		{"2026-11-27", true},  // Friday
		{"2026-11-28", false}, // Saturday
		{"2026-11-29", false}, // Sunday
		{"2025-10-06", false}, // Chuseok
		{"2025-10-10", true},
		{"2025-12-31", false}, // year-end closing
		{"2024-04-10", false}, // election day
		{"2026-05-01", false}, // Labor Day
		{"2020-01-02", true},
		{"2027-12-31", false},
	}
	for _, tt := range tests {
		d, err := time.ParseInLocation("2006-01-02", tt.date, kisfeed.KST)
		if err != nil {
			t.Fatal(err)
		}
		if got := IsTradingDay(d); got != tt.want {
			t.Errorf("IsTradingDay(%s) = %v, want %v (%s)", tt.date, got, tt.want, HolidayName(d))
		}
	}
	// Every listed holiday is a weekday: a weekend entry would be a typo.
	for ymd, name := range holidays {
		d := kisfeed.Date(ymd/10000, time.Month(ymd/100%100), ymd%100)
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
			t.Errorf("holiday %d (%s) falls on %s", ymd, name, wd)
		}
		if y := d.Year(); y < FirstYear || y > LastYear {
			t.Errorf("holiday %d outside %d–%d", ymd, FirstYear, LastYear)
		}
	}
}

func TestSessions(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, kisfeed.KST)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		now      string
		lastDone string
		open     bool
	}{
		{"2026-11-27 08:59", "2026-11-26", false},
		{"2026-11-27 09:00", "2026-11-26", true},
		{"2026-11-27 15:29", "2026-11-26", true},
		{"2026-11-27 15:30", "2026-11-27", false},
		{"2026-11-28 12:00", "2026-11-27", false}, // Saturday
		{"2025-10-08 16:00", "2025-10-02", false}, // Chuseok break
	}
	for _, tt := range tests {
		now := at(tt.now)
		if got := LastCompletedSession(now).Format("2006-01-02"); got != tt.lastDone {
			t.Errorf("LastCompletedSession(%s) = %s, want %s", tt.now, got, tt.lastDone)
		}
		if got := IsOpen(now); got != tt.open {
			t.Errorf("IsOpen(%s) = %v, want %v", tt.now, got, tt.open)
		}
	}
	days := TradingDays(kisfeed.Date(2026, 11, 23), kisfeed.Date(2026, 11, 29))
	if len(days) != 5 {
		t.Errorf("TradingDays(week of 2026-11-23) = %d days, want 5", len(days))
	}
	if got := NextTradingDay(kisfeed.Date(2026, 11, 27)); !got.Equal(kisfeed.Date(2026, 11, 30)) {
		t.Errorf("NextTradingDay(Fri) = %s, want Monday 2026-11-30", got)
	}
	if got := PrevTradingDay(kisfeed.Date(2026, 11, 30)); !got.Equal(kisfeed.Date(2026, 11, 27)) {
		t.Errorf("PrevTradingDay(Mon) = %s, want 2026-11-27", got)
	}
	if got := OpenTime(at("2026-11-27 12:00")); got.Hour() != 9 || got.Minute() != 0 {
		t.Errorf("OpenTime = %s, want 09:00", got)
	}
}

func TestNextBoundary(t *testing.T) {
	at := func(y int, m time.Month, d, hh, mm int) time.Time {
		return time.Date(y, m, d, hh, mm, 0, 0, kisfeed.KST)
	}
	tests := []struct {
		name    string
		t, want time.Time
	}{
		{"before the open", at(2026, time.March, 10, 8, 0), at(2026, time.March, 10, 9, 0)},
		{"at the open: the close is next", at(2026, time.March, 10, 9, 0), at(2026, time.March, 10, 15, 30)},
		{"a minute before the close", at(2026, time.March, 10, 15, 29), at(2026, time.March, 10, 15, 30)},
		{"after the close: the next open", at(2026, time.March, 10, 15, 31), at(2026, time.March, 11, 9, 0)},
		{"friday evening: monday's open", at(2026, time.March, 6, 16, 0), at(2026, time.March, 9, 9, 0)},
		{"year-end holiday and new year", at(2025, time.December, 30, 15, 30), at(2026, time.January, 2, 9, 0)},
		{"UTC input is read in KST", at(2026, time.March, 10, 15, 29).UTC(), at(2026, time.March, 10, 15, 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextBoundary(tt.t); !got.Equal(tt.want) {
				t.Errorf("NextBoundary(%s): got %s, want %s", tt.t, got, tt.want)
			}
		})
	}
}
