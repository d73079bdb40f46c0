package wiring

import (
	"context"
	"fmt"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/krx"
)

// BuiltinCalendar reports whether the upstream cfg selects answers
// IsTradingDay from the built-in KRX holiday table rather than from a
// calendar of its own: the mock market and the embedded emulator always
// (the synthetic market follows the table), an emulator named by
// KIS_BASE_URL (a host other than KIS's), and KIS's mock-trading server,
// which refuses chk-holiday so the kis client falls back to the table
// (REFERENCE.md: "모의투자 TR 이 아닙니다."). Only KIS's real server has a
// calendar of its own. A recording proxy in front of it, named by
// KIS_BASE_URL, counts as an emulator: the safer reading, since refusing
// a day loses an answer while judging it by weekday could be wrong.
func BuiltinCalendar(cfg config.Config) bool {
	if cfg.Mode() != config.ModeKIS {
		return true
	}
	return !cfg.UseRealServer || (cfg.BaseURL != "" && !isKISHost(cfg.BaseURL))
}

// tableCalendar is a Source whose calendar is the built-in KRX table: for
// a day outside the table's years it answers kisfeed.ErrNoCalendar, where
// the source underneath would judge by weekday alone and call unknown
// holidays trading days.
type tableCalendar struct{ kisfeed.Source }

var _ kisfeed.Source = tableCalendar{}

// IsTradingDay implements [kisfeed.Source].
func (s tableCalendar) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	d := kisfeed.Day(date)
	if y := d.Year(); y < krx.FirstYear || y > krx.LastYear {
		return false, fmt.Errorf("%w for %s: the built-in KRX calendar covers %d–%d",
			kisfeed.ErrNoCalendar, d.Format(time.DateOnly), krx.FirstYear, krx.LastYear)
	}
	return s.Source.IsTradingDay(ctx, date)
}
