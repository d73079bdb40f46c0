package kisfeed_test

import (
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

func TestClock(t *testing.T) {
	wall := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	market := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	wallFn := func() time.Time { return wall }
	marketFn := func() time.Time { return market }
	tests := []struct {
		name                 string
		clock                kisfeed.Clock
		wantWall, wantMarket time.Time
	}{
		{"both", kisfeed.NewClock(wallFn, marketFn), wall, market},
		{"market follows wall", kisfeed.NewClock(wallFn, nil), wall, wall},
		{"literal, market follows wall", kisfeed.Clock{Wall: wallFn}, wall, wall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.clock.Now(); !got.Equal(tt.wantWall) {
				t.Errorf("Now() = %v, want %v", got, tt.wantWall)
			}
			if got := tt.clock.MarketNow(); !got.Equal(tt.wantMarket) {
				t.Errorf("MarketNow() = %v, want %v", got, tt.wantMarket)
			}
		})
	}
	// The zero value and NewClock(nil, nil) run on real time.
	for name, c := range map[string]kisfeed.Clock{"zero": {}, "NewClock(nil, nil)": kisfeed.NewClock(nil, nil)} {
		before := time.Now()
		w, m := c.Now(), c.MarketNow()
		after := time.Now()
		if w.Before(before) || w.After(after) || m.Before(before) || m.After(after) {
			t.Errorf("%s: Now %v, MarketNow %v, want both within [%v, %v]", name, w, m, before, after)
		}
	}
}
