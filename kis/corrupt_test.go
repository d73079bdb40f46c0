package kis

import (
	"errors"
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed/emulator"
)

// TestEmulatorCorruptedDailyBars: the emulator's corrupt fault reaches the
// daily chart's output2 bars, and an unreadable bar is a *MalformedError
// naming the row's field, its value and the row, for the code asked.
func TestEmulatorCorruptedDailyBars(t *testing.T) {
	t.Parallel()
	srv, c := startEmulator(t, []emulator.Option{emulator.WithFaults(emulator.Faults{Corrupt: 1, Seed: 7})})
	from, to := marketDay.AddDate(0, 0, -30), marketDay
	const code = "005930"
	unreadable := 0
	for call := range 30 {
		_, err := c.DailyCandles(t.Context(), code, PeriodDay, from, to, false)
		st := srv.Stats()
		if len(st.Corrupted) != call+1 {
			t.Fatalf("call %d: the emulator lists %d corruptions, want %d", call, len(st.Corrupted), call+1)
		}
		cr := st.Corrupted[call]
		if !strings.HasPrefix(cr.Block, "output2[") || cr.Kind != "non_numeric" {
			continue
		}
		unreadable++
		var me *MalformedError
		if !errors.As(err, &me) || !errors.Is(err, ErrMalformed) || me.Code != code || me.Field != cr.Block+"."+cr.Field ||
			me.Value != cr.Value || !strings.Contains(string(me.Raw), `"`+cr.Value+`"`) {
			t.Errorf("call %d: got %v (%+v), want a *MalformedError for %s %s.%s = %q", call, err, me, code, cr.Block, cr.Field, cr.Value)
		}
	}
	if unreadable == 0 {
		t.Errorf("no unreadable output2 bar in 30 corrupted charts: pick another seed")
	}
	t.Logf("%d unreadable output2 bars in 30 corrupted charts", unreadable)
}
