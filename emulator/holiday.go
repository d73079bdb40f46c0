package emulator

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/kisfeed/kisfeed/krx"
)

// chk-holiday (REFERENCE §d.10).

// chk-holiday paging. KIS's page size and horizon are unconfirmed; the
// emulator answers a query for BASS_DT with the 30 calendar days from it,
// 12 per page (the fixture's page), so clients exercise the tr_cont
// continuation: tr_cont "M" while more follow, "D" on the last page. The
// cursor is ctx_area_fk = BASS_DT (first key) and ctx_area_nk = the next
// day to send (next key), each space-padded to 20 like the fixture.
const (
	holidayPageDays  = 12
	holidayQueryDays = 30
	ctxWidth         = 20
)

func padCtx(s string) string {
	if len(s) >= ctxWidth {
		return s
	}
	return s + strings.Repeat(" ", ctxWidth-len(s))
}

func (s *Server) chkHoliday(d *dataReq) *reply {
	origin := d.date("BASS_DT")
	start := origin
	// A continuation (tr_cont N) sends the cursor back: FK is the query's
	// first day, NK the next day to serve.
	if d.trCont == "N" {
		origin = d.cursor("CTX_AREA_FK", origin)
		start = d.cursor("CTX_AREA_NK", start)
	}
	if rep := d.failed(); rep != nil {
		return rep
	}
	end := origin.AddDate(0, 0, holidayQueryDays) // exclusive
	if start.Before(origin) || !start.Before(end) {
		return errField()
	}
	out := make([]obj, 0, holidayPageDays)
	day := start
	for ; day.Before(end) && len(out) < holidayPageDays; day = day.AddDate(0, 0, 1) {
		open := krx.IsTradingDay(day)
		// The year-end closing day: banks and securities firms work, the
		// exchange does not trade or settle.
		bank := open || krx.HolidayName(day) == "연말 휴장일"
		out = append(out, obj{
			{"bass_dt", ymd(day)},
			{"wday_dvsn_cd", "0" + strconv.Itoa(int(day.Weekday())+1)},
			{"bzdy_yn", yn(bank)},
			{"tr_day_yn", yn(bank)},
			{"opnd_yn", yn(open)},
			{"sttl_day_yn", yn(open)},
		})
	}
	more := day.Before(end)
	nk, cont := "", "D"
	if more {
		nk, cont = ymd(day), "M"
	}
	return (&reply{
		status: http.StatusOK, rtCd: "0", msgCd: msgCdKIOK, msg1: "조회되었습니다",
		head:   []field{{"ctx_area_nk", padCtx(nk)}, {"ctx_area_fk", padCtx(ymd(origin))}},
		blocks: []block{rows("output", out)},
	}).withTrCont(cont)
}
