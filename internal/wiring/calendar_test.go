package wiring_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/wiring"
)

// TestBuiltinCalendarBounds checks that an upstream whose calendar is the
// built-in KRX table (the mock market, an emulator) answers
// kisfeed.ErrNoCalendar outside the table's years instead of judging by
// weekday, and that asking does not open the breaker.
func TestBuiltinCalendarBounds(t *testing.T) {
	t.Parallel()
	mockCfg := config.Default()
	mockCfg.EnableKISAPI = "false"
	_, base := emulatortest.Start(t)
	for name, cfg := range map[string]config.Config{"mock": mockCfg, "kis against an emulator": kisConfig(t, base)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := newUpstream(t, cfg, wiring.Deps{})
			for _, day := range []struct {
				date string
				want string // "" for an answer
			}{
				{"2025-10-13", ""},
				{"2027-12-30", ""},
				{"2031-01-01", "no trading calendar for 2031-01-01: the built-in KRX calendar covers 2020–2027"},
				{"2019-12-31", "no trading calendar for 2019-12-31: the built-in KRX calendar covers 2020–2027"},
			} {
				d := parseDay(t, day.date)
				for range 10 { // more than the breaker's failure threshold
					open, err := u.Source.IsTradingDay(t.Context(), d)
					switch {
					case day.want == "" && (err != nil || !open):
						t.Fatalf("IsTradingDay(%s): got %v, %v; want true, nil", day.date, open, err)
					case day.want != "" && (!errors.Is(err, kisfeed.ErrNoCalendar) || err.Error() != day.want):
						t.Fatalf("IsTradingDay(%s): got %v, %v; want an ErrNoCalendar %q", day.date, open, err, day.want)
					}
				}
			}
			if err := u.CheckBreaker(t.Context()); err != nil {
				t.Errorf("breaker after asking about unknown years: %v; want closed", err)
			}
		})
	}
}

func TestBuiltinCalendarModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*config.Config)
		want bool
	}{
		{"mock", func(c *config.Config) { c.EnableKISAPI = "false" }, true},
		{"embedded", func(c *config.Config) {}, true},
		{"kis mock server (no chk-holiday)", func(c *config.Config) { c.EnableKISAPI, c.AppKey, c.AppSecret = "true", "k", "s" }, true},
		{"kis real server", func(c *config.Config) {
			c.EnableKISAPI, c.AppKey, c.AppSecret, c.UseRealServer = "true", "k", "s", true
		}, false},
		{"kis real server at its own host", func(c *config.Config) {
			c.EnableKISAPI, c.AppKey, c.AppSecret, c.UseRealServer = "true", "k", "s", true
			c.BaseURL = "https://openapi.koreainvestment.com:9443"
		}, false},
		{"emulator by KIS_BASE_URL", func(c *config.Config) {
			c.EnableKISAPI, c.AppKey, c.AppSecret, c.UseRealServer = "true", "k", "s", true
			c.BaseURL = "http://127.0.0.1:9443"
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			tt.edit(&cfg)
			if got := wiring.BuiltinCalendar(cfg); got != tt.want {
				t.Errorf("BuiltinCalendar: got %v, want %v (mode %s)", got, tt.want, cfg.Mode())
			}
		})
	}
}

func parseDay(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.ParseInLocation(time.DateOnly, s, kisfeed.KST)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
