package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
	"github.com/kisfeed/kisfeed/krx"
)

// tableCalendar answers as the sources relying on the built-in KRX table
// do: from krx inside its years, kisfeed.ErrNoCalendar outside them.
func tableCalendar(ctx context.Context, date time.Time) (bool, error) {
	if y := date.Year(); y < krx.FirstYear || y > krx.LastYear {
		return false, fmt.Errorf("%w for %s: the built-in KRX calendar covers %d–%d",
			kisfeed.ErrNoCalendar, date.Format(time.DateOnly), krx.FirstYear, krx.LastYear)
	}
	return krx.IsTradingDay(date), nil
}

// knownCalendar answers every year, as KIS's own calendar does: weekdays
// trade except 31 December and 1 January.
func knownCalendar(ctx context.Context, date time.Time) (bool, error) {
	if wd := date.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false, nil
	}
	_, m, d := date.Date()
	return !(m == time.December && d == 31) && !(m == time.January && d == 1), nil
}

func TestCalendarBeyondTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		src      func(context.Context, time.Time) (bool, error)
		target   string
		status   int
		want     map[string]any // fields of the body; nil value = absent
		wantType string         // problem type, for errors
	}{
		{"table source, after the table", tableCalendar, "/v1/calendar/2031-01-01", 422,
			map[string]any{"detail": "no trading calendar for 2031-01-01: the built-in KRX calendar covers 2020–2027", "status": 422.0},
			"/problems/no-calendar"},
		{"table source, before the table", tableCalendar, "/v1/calendar/2019-12-31", 422,
			map[string]any{"detail": "no trading calendar for 2019-12-31: the built-in KRX calendar covers 2020–2027"},
			"/problems/no-calendar"},
		{"table source, last day of the table", tableCalendar, "/v1/calendar/2027-12-31", 200,
			map[string]any{"trading_day": false, "holiday": "연말 휴장일", "prev_trading_day": "2027-12-30", "next_trading_day": nil}, ""},
		{"table source, first trading day", tableCalendar, "/v1/calendar/2020-01-02", 200,
			map[string]any{"trading_day": true, "prev_trading_day": nil, "next_trading_day": "2020-01-03"}, ""},
		{"source that knows the year", knownCalendar, "/v1/calendar/2031-01-01", 200,
			map[string]any{"trading_day": false, "prev_trading_day": "2030-12-30", "next_trading_day": "2031-01-02", "holiday": nil}, ""},
		{"source that knows the year, trading day", knownCalendar, "/v1/calendar/2031-01-03", 200,
			map[string]any{"trading_day": true, "open": "2031-01-03T09:00:00+09:00", "prev_trading_day": "2031-01-02", "next_trading_day": "2031-01-06"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newFixture(t, &sourcetest.Func{IsTradingDayFn: tt.src}).get(t, tt.target)
			if rec.Code != tt.status {
				t.Fatalf("status: got %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			body := decode[map[string]any](t, rec)
			if tt.wantType != "" {
				if body["type"] != tt.wantType || rec.Header().Get("Content-Type") != "application/problem+json" {
					t.Errorf("problem: got type %v, Content-Type %q; want %s, application/problem+json",
						body["type"], rec.Header().Get("Content-Type"), tt.wantType)
				}
			}
			for k, v := range tt.want {
				got, ok := body[k]
				switch {
				case v == nil && ok:
					t.Errorf("%s: got %v, want it absent (unknown)", k, got)
				case v != nil && got != v:
					t.Errorf("%s: got %v, want %v", k, got, v)
				}
			}
		})
	}
}

// TestCalendarNoCalendarIsNotBadRequest checks ErrNoCalendar, which also
// matches ErrInvalid, gets its own status rather than 400.
func TestCalendarNoCalendarIsNotBadRequest(t *testing.T) {
	t.Parallel()
	if k := classify(fmt.Errorf("x: %w", kisfeed.ErrNoCalendar)); k.status != http.StatusUnprocessableEntity {
		t.Errorf("status: got %d, want 422", k.status)
	}
}
