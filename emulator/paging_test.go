package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

type chartReply struct {
	Output1 map[string]string   `json:"output1"`
	Output2 []map[string]string `json:"output2"`
	envelope
}

func decodeChart(t *testing.T, b []byte) chartReply {
	t.Helper()
	var c chartReply
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return c
}

// TestDailyChartPaging pages a year of daily bars back in 100-row pages
// the way clients do (DATE_2 = oldest − 1 day) and checks the walk is
// complete: every trading day once, newest first, the session day's
// partial bar first.
func TestDailyChartPaging(t *testing.T) {
	h := newHarness(t)
	h.login()
	from := "20241001"
	to := marketTime
	var dates []string
	for page := 0; page < 10; page++ {
		q := "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_DATE_1=" + from +
			"&FID_INPUT_DATE_2=" + to.Format("20060102") + "&FID_PERIOD_DIV_CODE=D&FID_ORG_ADJ_PRC=0"
		c := decodeChart(t, h.get("inquire-daily-itemchartprice", "FHKST03010100", q).Body.Bytes())
		if len(c.Output2) > dailyChartRows {
			t.Fatalf("page %d: got %d rows, want <= %d", page, len(c.Output2), dailyChartRows)
		}
		for _, r := range c.Output2 {
			dates = append(dates, r["stck_bsop_date"])
		}
		if len(c.Output2) < dailyChartRows {
			break
		}
		oldest, _ := parseYMD(c.Output2[len(c.Output2)-1]["stck_bsop_date"])
		to = oldest.AddDate(0, 0, -1)
	}
	fromT, _ := parseYMD(from)
	want := krx.TradingDays(fromT, marketTime)
	if len(dates) != len(want) {
		t.Fatalf("got %d rows, want %d trading days", len(dates), len(want))
	}
	for i, d := range dates {
		if w := want[len(want)-1-i].Format("20060102"); d != w {
			t.Fatalf("row %d: got %s, want %s", i, d, w)
		}
	}
	// The first row is today's partial bar and equals the quote.
	c := decodeChart(t, h.get("inquire-daily-itemchartprice", "FHKST03010100",
		"FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_DATE_1=20251001&FID_INPUT_DATE_2=20251231&FID_PERIOD_DIV_CODE=D&FID_ORG_ADJ_PRC=0").Body.Bytes())
	q, _ := sharedMarket().QuoteAt("005930", marketTime)
	if r := c.Output2[0]; r["stck_bsop_date"] != "20251024" || r["stck_clpr"] != itoa(q.Price) || r["acml_vol"] != itoa(q.Volume) {
		t.Errorf("today's row: got %v, want close %d volume %d", r, q.Price, q.Volume)
	}
	if c.Output1["stck_prpr"] != itoa(q.Price) {
		t.Errorf("output1 price: got %s, want %d", c.Output1["stck_prpr"], q.Price)
	}
}

func TestPeriodBars(t *testing.T) {
	h := newHarness(t)
	h.login()
	for _, tc := range []struct {
		period string
		rows   int
	}{{"W", 5}, {"M", 3}, {"Y", 2}} {
		t.Run(tc.period, func(t *testing.T) {
			q := "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_DATE_1=20240901&FID_INPUT_DATE_2=20250930&FID_PERIOD_DIV_CODE=" + tc.period + "&FID_ORG_ADJ_PRC=0"
			c := decodeChart(t, h.get("inquire-daily-itemchartprice", "FHKST03010100", q).Body.Bytes())
			if len(c.Output2) < tc.rows {
				t.Fatalf("got %d rows, want >= %d", len(c.Output2), tc.rows)
			}
			// Volumes add up to the daily bars of each period.
			for _, r := range c.Output2[:tc.rows] {
				start, _ := parseYMD(r["stck_bsop_date"])
				if !krx.IsTradingDay(start) {
					t.Errorf("label %s is not a trading day", r["stck_bsop_date"])
				}
			}
		})
	}
}

func TestMinuteChartPaging(t *testing.T) {
	h := newHarness(t)
	h.login()
	hour := "153000" // a future hour means "now" (10:00)
	var times []string
	for page := 0; page < 10; page++ {
		c := decodeChart(t, h.get("inquire-time-itemchartprice", "FHKST03010200",
			"FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_HOUR_1="+hour+"&FID_PW_DATA_INCU_YN=N&FID_ETC_CLS_CODE=").Body.Bytes())
		if len(c.Output2) > minuteChartRows {
			t.Fatalf("page %d: got %d rows, want <= 30", page, len(c.Output2))
		}
		if len(c.Output2) == 0 {
			break
		}
		for _, r := range c.Output2 {
			times = append(times, r["stck_cntg_hour"])
		}
		oldest, _ := time.Parse("150405", c.Output2[len(c.Output2)-1]["stck_cntg_hour"])
		hour = oldest.Add(-time.Minute).Format("150405")
		if oldest.Hour() == 9 && oldest.Minute() == 0 {
			break
		}
	}
	// At 10:00 the bars 09:00 … 09:59 are complete: 60 rows.
	if len(times) != 60 || times[0] != "095900" || times[59] != "090000" {
		t.Fatalf("got %d rows %v…, want 60 from 095900 to 090000", len(times), times[:min(3, len(times))])
	}
	// The rows add up to the quote (volume).
	bars := sharedMarket().MinuteBars("005930", kisfeed.Day(marketTime))
	var vol int64
	for _, b := range bars[:60] {
		vol += b.Volume
	}
	q, _ := sharedMarket().QuoteAt("005930", marketTime)
	if vol != q.Volume {
		t.Errorf("sum of served minutes' volume %d, quote volume %d", vol, q.Volume)
	}
}

func TestPastMinuteChart(t *testing.T) {
	h := newHarness(t)
	h.login()
	get := func(day, hour string) chartReply {
		return decodeChart(t, h.get("inquire-time-dailychartprice", "FHKST03010230",
			"FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_HOUR_1="+hour+"&FID_INPUT_DATE_1="+day+"&FID_PW_DATA_INCU_YN=Y&FID_FAKE_TICK_INCU_YN=").Body.Bytes())
	}
	c := get("20251023", "153000")
	if len(c.Output2) != pastMinuteRows || c.Output2[0]["stck_cntg_hour"] != "153000" {
		t.Errorf("got %d rows starting %v, want 120 from 153000", len(c.Output2), c.Output2[0]["stck_cntg_hour"])
	}
	if c := get("20251025", "153000"); len(c.Output2) != 0 {
		t.Errorf("Saturday: got %d rows, want 0", len(c.Output2))
	}
	if c := get("20240101", "153000"); len(c.Output2) != 0 {
		t.Errorf("older than a year: got %d rows, want 0", len(c.Output2))
	}
}

func TestHolidayPaging(t *testing.T) {
	h := newHarness(t)
	h.login()
	hdr := h.authHeaders("CTCA0903R")
	var days []string
	var conts []string
	fk, nk := "", ""
	for page := 0; page < 5; page++ {
		q := "BASS_DT=20250929&CTX_AREA_FK=" + url.QueryEscape(fk) + "&CTX_AREA_NK=" + url.QueryEscape(nk)
		if page > 0 {
			hdr["tr_cont"] = "N"
		}
		rec := h.do(http.MethodGet, quotationsPrefix+"chk-holiday?"+q, hdr, "")
		var r struct {
			NK     string              `json:"ctx_area_nk"`
			FK     string              `json:"ctx_area_fk"`
			Output []map[string]string `json:"output"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		for _, o := range r.Output {
			days = append(days, o["bass_dt"]+o["opnd_yn"])
		}
		cont := wireHeader(rec.Header(), "tr_cont")[0]
		conts = append(conts, cont)
		if cont == "D" {
			break
		}
		fk, nk = r.FK, r.NK
	}
	if got := len(days); got != holidayQueryDays {
		t.Fatalf("got %d days, want %d", got, holidayQueryDays)
	}
	if got := conts; len(got) != 3 || got[0] != "M" || got[1] != "M" || got[2] != "D" {
		t.Errorf("tr_cont: got %v, want [M M D]", got)
	}
	start, _ := parseYMD("20250929")
	for i, d := range days {
		day := start.AddDate(0, 0, i)
		if want := day.Format("20060102") + yn(krx.IsTradingDay(day)); d != want {
			t.Errorf("day %d: got %s, want %s", i, d, want)
		}
	}
	// The first page matches the fixture exactly (Chuseok 2025).
	rec := h.get("chk-holiday", "CTCA0903R", "BASS_DT=20250929&CTX_AREA_NK=&CTX_AREA_FK=")
	var got, want struct {
		NK, FK string
		Output []map[string]string
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &got)
	_ = json.Unmarshal(fixture(t, "chk-holiday.json"), &want)
	if len(got.Output) != len(want.Output) {
		t.Fatalf("rows: got %d, want %d", len(got.Output), len(want.Output))
	}
	for i := range want.Output {
		for k, v := range want.Output[i] {
			if got.Output[i][k] != v {
				t.Errorf("row %d %s: got %q, want %q", i, k, got.Output[i][k], v)
			}
		}
	}
}
