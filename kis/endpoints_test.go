package kis

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kisfeed/kisfeed"
)

func TestOrderBookFixture(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fixed(pathOrderBook, "inquire-asking-price-exp-ccn.json")
	now := time.Date(2022, 1, 5, 9, 30, 0, 0, kisfeed.KST) // before 16:00: the book is yesterday's
	c := testClient(t, f.url(), WithClock(func() time.Time { return now }))
	b, _, err := c.OrderBook(t.Context(), "000660")
	if err != nil {
		t.Fatal(err)
	}
	if b.Asks[0] != (kisfeed.Level{Price: 128000, Quantity: 69454}) || b.Bids[9] != (kisfeed.Level{Price: 123000, Quantity: 15773}) {
		t.Errorf("levels: got ask1 %+v bid10 %+v", b.Asks[0], b.Bids[9])
	}
	if b.TotalAskQty != 830005 || b.TotalBidQty != 250849 || b.ExpectedPrice != 128000 {
		t.Errorf("totals: got %d %d %d", b.TotalAskQty, b.TotalBidQty, b.ExpectedPrice)
	}
	if want := time.Date(2022, 1, 4, 16, 0, 0, 0, kisfeed.KST); !b.Meta.AsOf.Equal(want) {
		t.Errorf("as of: got %s, want %s", b.Meta.AsOf, want)
	}
	f.handle(pathOrderBook, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output1":{"askp1":"100","bidp1":"90","aspr_acpt_hour":"25x000"},"output2":{}}`))
	})
	if _, _, err := c.OrderBook(t.Context(), "000660"); err == nil || !strings.Contains(err.Error(), "output1.aspr_acpt_hour") {
		t.Errorf("got %v, want an aspr_acpt_hour error", err)
	}
	if _, _, err := c.OrderBook(t.Context(), "x"); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("got %v, want ErrInvalid", err)
	}
}

// dailyServer serves a synthetic series of n weekdays ending at end, at
// most 100 rows per call, newest first, honouring FID_INPUT_DATE_1/2.
func dailyServer(t testing.TB, end time.Time, n int, calls *atomic.Int64) http.HandlerFunc {
	var days []time.Time
	for d := end; len(days) < n; d = d.AddDate(0, 0, -1) {
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			days = append(days, d)
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		q := r.URL.Query()
		from, _ := parseDate(q.Get("FID_INPUT_DATE_1"))
		to, _ := parseDate(q.Get("FID_INPUT_DATE_2"))
		var rows []map[string]string
		for _, d := range days {
			if d.After(to) || d.Before(from) || len(rows) == 100 {
				continue
			}
			p := strconv.Itoa(1000 + d.YearDay())
			rows = append(rows, map[string]string{"stck_bsop_date": ymd(d), "stck_clpr": p, "stck_oprc": p,
				"stck_hgpr": p, "stck_lwpr": p, "acml_vol": "10", "acml_tr_pbmn": "100"})
		}
		rows = append(rows, map[string]string{}) // KIS pads with empty objects
		json.NewEncoder(w).Encode(map[string]any{"rt_cd": "0", "output1": map[string]string{"stck_prpr": "1"}, "output2": rows})
	}
}

func TestDailyCandlesPaging(t *testing.T) {
	t.Parallel()
	end := kisfeed.Date(2024, 10, 25)
	tests := []struct {
		name      string
		series    int
		from      time.Time
		wantBars  int
		wantCalls int64
	}{
		{"one short page", 50, kisfeed.Date(2024, 1, 1), 50, 1},
		{"three pages", 250, kisfeed.Date(2020, 1, 1), 250, 3},
		{"exactly 100 then empty", 100, kisfeed.Date(2020, 1, 1), 100, 2},
		{"range inside series", 500, end.AddDate(0, 0, -13), 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			var calls atomic.Int64
			f.handle(pathDailyChart, dailyServer(t, end, tt.series, &calls))
			c := testClient(t, f.url())
			bars, err := c.DailyCandles(t.Context(), "005930", PeriodDay, tt.from, end, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(bars) != tt.wantBars || calls.Load() != tt.wantCalls {
				t.Fatalf("got %d bars in %d calls, want %d in %d", len(bars), calls.Load(), tt.wantBars, tt.wantCalls)
			}
			for i := 1; i < len(bars); i++ {
				if !bars[i].Time.After(bars[i-1].Time) {
					t.Fatalf("bars not strictly oldest first at %d: %s after %s", i, bars[i].Time, bars[i-1].Time)
				}
			}
			if !bars[len(bars)-1].Time.Equal(end) {
				t.Errorf("last bar: got %s, want %s", bars[len(bars)-1].Time, end)
			}
		})
	}
}

func TestDailyCandlesErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := testClient(t, f.url())
	ctx := t.Context()
	d := kisfeed.Date(2024, 1, 1)
	if _, err := c.DailyCandles(ctx, "005930", "Y", d, d, true); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("period Y: got %v, want ErrInvalid", err)
	}
	if _, err := c.DailyCandles(ctx, "005930", PeriodDay, d, d.AddDate(0, 0, -1), true); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("to < from: got %v, want ErrInvalid", err)
	}
	if _, err := c.DailyCandles(ctx, "0059", PeriodDay, d, d, true); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("bad code: got %v, want ErrInvalid", err)
	}
	f.handle(pathDailyChart, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output1":{"stck_prpr":"0"},"output2":[]}`))
	})
	if _, err := c.DailyCandles(ctx, "999999", PeriodDay, d, d, true); !errors.Is(err, kisfeed.ErrNotFound) {
		t.Errorf("unknown: got %v, want ErrNotFound", err)
	}
	f.handle(pathDailyChart, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output1":{"stck_prpr":"5"},"output2":[{"stck_bsop_date":"20240101","stck_clpr":"x"}]}`))
	})
	_, err := c.DailyCandles(ctx, "005930", PeriodDay, d, d, false)
	var me *MalformedError
	if !errors.As(err, &me) || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), `kis FHKST03010100 stock 005930: output2[0].stck_clpr: "x"`) ||
		me.Code != "005930" || me.Field != "output2[0].stck_clpr" || string(me.Raw) != `{"stck_bsop_date":"20240101","stck_clpr":"x"}` {
		t.Errorf("bad close: got %v (%+v), want a *MalformedError naming output2[0].stck_clpr with the row", err, me)
	}
	f.handle(pathDailyChart, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output1":{"stck_prpr":"5"},"output2":[{"stck_bsop_date":"20240102","stck_clpr":"1"},{"stck_bsop_date":20240101}]}`))
	})
	_, err = c.DailyCandles(ctx, "005930", PeriodDay, d, d, false)
	if !errors.As(err, &me) || me.Field != "output2[1].stck_bsop_date" || me.Value != "20240101" || me.Code != "005930" {
		t.Errorf("number for a string: got %v, want a *MalformedError for output2[1].stck_bsop_date", err)
	}
	f.handle(pathDailyChart, func(w http.ResponseWriter, r *http.Request) {
		w.Write(fixture(t, "inquire-daily-itemchartprice.json"))
	})
	bars, err := c.DailyCandles(ctx, "005930", PeriodDay, kisfeed.Date(2024, 10, 1), kisfeed.Date(2024, 10, 25), false)
	if err != nil || len(bars) != 5 || bars[4].Close != 55900 || bars[0].Volume != 14903110 {
		t.Errorf("fixture: got %+v %v", bars, err)
	}
	f.mu.Lock()
	adj := f.lastQuery["FID_ORG_ADJ_PRC"]
	f.mu.Unlock()
	if len(adj) != 1 || adj[0] != "1" {
		t.Errorf("unadjusted: got FID_ORG_ADJ_PRC %v, want 1", adj)
	}
}

// minuteServer serves minute bars 09:00..15:19 + 15:30 for day, newest
// first, at most rows per call ending at FID_INPUT_HOUR_1 (inclusive).
func minuteServer(day time.Time, rows int, calls *atomic.Int64) http.HandlerFunc {
	var times []time.Duration
	for m := 9 * 60; m < 15*60+20; m++ {
		times = append(times, time.Duration(m)*time.Minute)
	}
	times = append(times, 15*time.Hour+30*time.Minute)
	return func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		hour, err := parseClock(r.URL.Query().Get("FID_INPUT_HOUR_1"))
		if err != nil {
			w.WriteHeader(500)
			return
		}
		var out []map[string]string
		for i := len(times) - 1; i >= 0 && len(out) < rows; i-- {
			if times[i] > hour {
				continue
			}
			p := strconv.Itoa(1000 + i)
			out = append(out, map[string]string{"stck_bsop_date": ymd(day), "stck_cntg_hour": clockString(times[i]),
				"stck_prpr": p, "stck_oprc": p, "stck_hgpr": p, "stck_lwpr": p, "cntg_vol": "1",
				"acml_tr_pbmn": strconv.Itoa((i + 1) * 100)})
		}
		json.NewEncoder(w).Encode(map[string]any{"rt_cd": "0", "output1": map[string]string{"stck_prpr": "1"}, "output2": out})
	}
}

func TestMinuteCandlesPaging(t *testing.T) {
	t.Parallel()
	today := time.Date(2024, 10, 25, 16, 0, 0, 0, kisfeed.KST)
	tests := []struct {
		name string
		day  time.Time
		path string
		rows int
	}{
		{"today 30 rows a page", today, pathTodayMin, 30},
		{"past day 120 rows a page", kisfeed.Date(2024, 10, 24), pathPastMin, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			var calls atomic.Int64
			f.handle(tt.path, minuteServer(kisfeed.Day(tt.day), tt.rows, &calls))
			c := testClient(t, f.url(), WithClock(func() time.Time { return today }))
			bars, err := c.MinuteCandles(t.Context(), "005930", tt.day)
			if err != nil {
				t.Fatal(err)
			}
			if len(bars) != 381 {
				t.Fatalf("got %d bars, want 381", len(bars))
			}
			for i, b := range bars {
				if b.Value != 100 {
					t.Fatalf("bar %d value: got %d, want 100 (from cumulative)", i, b.Value)
				}
			}
			if first := bars[0].Time; first.Hour() != 9 || first.Minute() != 0 {
				t.Errorf("first bar: got %s", first)
			}
			if maxCalls := int64(381/(tt.rows-1) + 2); calls.Load() > maxCalls {
				t.Errorf("calls: got %d, want at most %d", calls.Load(), maxCalls)
			}
		})
	}
	f := newFake(t)
	c := testClient(t, f.url(), WithClock(func() time.Time { return today }))
	if _, err := c.MinuteCandles(t.Context(), "005930", today.AddDate(0, 0, 1)); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("future day: got %v, want ErrInvalid", err)
	}
	f.handle(pathPastMin, errBody(500, "EGW00213", "모의투자 TR 이 아닙니다."))
	if _, err := c.MinuteCandles(t.Context(), "005930", today.AddDate(0, 0, -1)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unsupported: got %v, want ErrUnsupported", err)
	}
	if _, err := c.MinuteCandles(t.Context(), "005930", today.AddDate(0, 0, -2)); !errors.Is(err, ErrUnsupported) || f.count(pathPastMin) != 1 {
		t.Errorf("remembered unsupported: got %v after %d calls", err, f.count(pathPastMin))
	}
	f.handle(pathTodayMin, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output1":{"stck_prpr":"0"},"output2":[]}`))
	})
	if _, err := c.MinuteCandles(t.Context(), "999999", today); !errors.Is(err, kisfeed.ErrNotFound) {
		t.Errorf("unknown: got %v, want ErrNotFound", err)
	}
	f.handle(pathTodayMin, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output2":[{"stck_bsop_date":"20241025","stck_cntg_hour":"9999","stck_prpr":"1"}]}`))
	})
	if _, err := c.MinuteCandles(t.Context(), "005930", today); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "output2[0].stck_cntg_hour") {
		t.Errorf("bad hour: got %v", err)
	}
	f.handle(pathTodayMin, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output2":[{"stck_bsop_date":"20241025","stck_cntg_hour":153000,"stck_prpr":"1"}]}`))
	})
	if _, err := c.MinuteCandles(t.Context(), "005930", today); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "stock 005930: output2[0].stck_cntg_hour") {
		t.Errorf("number hour: got %v", err)
	}
	if _, err := c.MinuteCandles(t.Context(), "00", today); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("bad code: got %v", err)
	}
}

func TestPricesFixtureAndBatching(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var sizes []int
	f.handle(pathMultPrice, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var out []map[string]string
		for n := 1; ; n++ {
			code := q.Get("FID_INPUT_ISCD_" + strconv.Itoa(n))
			if code == "" {
				break
			}
			if q.Get("FID_COND_MRKT_DIV_CODE_"+strconv.Itoa(n)) != "J" {
				w.WriteHeader(400)
				return
			}
			price := "0"
			if code != "999999" {
				price = strconv.Itoa(1000 + n)
			}
			out = append(out, map[string]string{"inter_shrn_iscd": code, "inter2_prpr": price, "inter_kor_isnm": "n" + code,
				"kospi_kosdaq_cls_name": "코스닥", "inter2_prdy_vrss": "-1", "prdy_ctrt": "-0.10"})
		}
		sizes = append(sizes, len(out))
		json.NewEncoder(w).Encode(map[string]any{"rt_cd": "0", "output": out})
	})
	c := testClient(t, f.url())
	var codes []string
	for i := range 65 {
		codes = append(codes, fmt.Sprintf("%06d", 100000+i))
	}
	codes[40] = "999999"
	qs, err := c.Prices(t.Context(), codes)
	var be *kisfeed.BatchError
	if !errors.As(err, &be) || len(be.Errs) != 1 {
		t.Fatalf("got %v, want a BatchError for 999999", err)
	}
	if fmt.Sprint(sizes) != "[30 30 5]" {
		t.Errorf("batch sizes: got %v, want [30 30 5]", sizes)
	}
	for i, q := range qs {
		if i == 40 {
			if q != nil {
				t.Errorf("unknown code: got %+v", q)
			}
			continue
		}
		if q == nil || q.Code != codes[i] || q.Name != "n"+codes[i] || q.Market != kisfeed.MarketKOSDAQ || q.PrevClose != q.Price+1 {
			t.Fatalf("position %d: got %+v", i, q)
		}
	}
	// The fixture decodes.
	f.fixed(pathMultPrice, "intstock-multprice.json")
	qs, err = c.Prices(t.Context(), []string{"035720", "005930"})
	if err != nil || qs[0].Price != 35150 || qs[1].Name != "삼성전자" || qs[1].PrevClose != 57600 || qs[1].Market != kisfeed.MarketKOSPI {
		t.Errorf("fixture: got %+v %+v %v", qs[0], qs[1], err)
	}
	// An unreadable row fails only its own code: the others of the batch
	// are returned, and the code's error is a *MalformedError with the
	// field (by row index), the value and the raw row.
	f.handle(pathMultPrice, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output":[` +
			`{"inter_shrn_iscd":"000660","inter2_prpr":"2"},` +
			`{"inter_shrn_iscd":"005930","inter2_prpr":"1","acml_vol":"1e5"},` +
			`{"inter_shrn_iscd":"035720","inter2_prpr":"3","inter2_hgpr":12},` +
			`{"inter_shrn_iscd":"051910","inter2_prpr":"4x"}]}`))
	})
	batch := []string{"000660", "005930", "035720", "051910"}
	qs, err = c.Prices(t.Context(), batch)
	if !errors.As(err, &be) {
		t.Fatalf("malformed rows: got %v, want a *BatchError", err)
	}
	if len(qs) != 4 || qs[0] == nil || qs[0].Price != 2 || qs[1] != nil || qs[2] != nil || qs[3] != nil {
		t.Errorf("malformed rows: got quotes %v, want only 000660", qs)
	}
	wantBad := map[string]struct{ field, value, raw string }{
		"005930": {"output[1].acml_vol", "1e5", `{"inter_shrn_iscd":"005930","inter2_prpr":"1","acml_vol":"1e5"}`},
		"035720": {"output[2].inter2_hgpr", "12", `{"inter_shrn_iscd":"035720","inter2_prpr":"3","inter2_hgpr":12}`},
		"051910": {"output[3].inter2_prpr", "4x", `{"inter_shrn_iscd":"051910","inter2_prpr":"4x"}`},
	}
	if len(be.Errs) != len(wantBad) {
		t.Errorf("malformed rows: got errors %v, want %d", be.Errs, len(wantBad))
	}
	for code, w := range wantBad {
		var me *MalformedError
		err := be.Errs[code]
		if !errors.As(err, &me) || !errors.Is(err, ErrMalformed) || errors.Is(err, kisfeed.ErrNotFound) {
			t.Errorf("%s: got %v, want a *MalformedError", code, err)
			continue
		}
		if me.Code != code || me.Field != w.field || me.Value != w.value || string(me.Raw) != w.raw || me.Op != TrMultPrice {
			t.Errorf("%s: got %+v (raw %s), want field %s value %s raw %s", code, me, me.Raw, w.field, w.value, w.raw)
		}
		if want := "kis " + TrMultPrice + " stock " + code + ": " + w.field; !strings.Contains(me.Error(), want) {
			t.Errorf("%s: got %q, want it to name %q", code, me.Error(), want)
		}
	}
	// A row whose code cannot be read either fails the codes left
	// without a row (it may be theirs), not as unknown.
	f.handle(pathMultPrice, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output":[{"inter_shrn_iscd":"000660","inter2_prpr":"2"},{"inter_shrn_iscd":5930,"inter2_prpr":"1"},7]}`))
	})
	qs, err = c.Prices(t.Context(), []string{"000660", "005930"})
	var orphan *MalformedError
	if !errors.As(err, &be) || qs[0] == nil || !errors.As(be.Errs["005930"], &orphan) || errors.Is(be.Errs["005930"], kisfeed.ErrNotFound) {
		t.Errorf("orphan row: got %v %v, want 005930 malformed", qs, err)
	} else if orphan.Code != "005930" || orphan.Field != "output[1].inter_shrn_iscd" || orphan.Value != "5930" {
		t.Errorf("orphan row: got %+v, want code 005930, field output[1].inter_shrn_iscd, value 5930", orphan)
	}
	// Upstream failure fails the whole call.
	f.handle(pathMultPrice, errBody(500, "EGW00105", "x"))
	if _, err := c.Prices(t.Context(), []string{"005930"}); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("got %v, want ErrInvalidCredentials", err)
	}
	if got := marketFromName("코넥스"); got != kisfeed.MarketKONEX {
		t.Errorf("konex: got %s", got)
	}
}

func TestStockInfoFixture(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fixed(pathStockInfo, "search-stock-info.json")
	c := testClient(t, f.url())
	info, err := c.StockInfo(t.Context(), "005930")
	if err != nil {
		t.Fatal(err)
	}
	want := kisfeed.StockInfo{Code: "005930", ISIN: "KR7005930003", Name: "삼성전자", FullName: "삼성전자보통주",
		EnglishName: "SamsungElectronics", Market: kisfeed.MarketKOSPI, Group: "ST", Sector: "전기,전자",
		ListedShares: 5969782550, ParValue: 100, Capital: 778046685000, ListingDate: kisfeed.Date(1975, 6, 11),
		NXTTradable: true, Meta: info.Meta}
	if *info != want {
		t.Errorf("got %+v\nwant %+v", *info, want)
	}
	for _, body := range []string{
		`{"rt_cd":"0","output":{"prdt_abrv_name":"x","mket_id_cd":"KSQ","kosdaq_mket_lstg_dt":"2024"}}`,
		`{"rt_cd":"0","output":{"prdt_abrv_name":"x","tr_stop_yn":"maybe"}}`,
	} {
		f.handle(pathStockInfo, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
		if _, err := c.StockInfo(t.Context(), "005930"); err == nil || !strings.Contains(err.Error(), "output.") {
			t.Errorf("%s: got %v, want a field error", body, err)
		}
	}
	f.handle(pathStockInfo, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output":{"prdt_abrv_name":"코넥스주","mket_id_cd":"KNX","frbd_mket_lstg_dt":"20200101","idx_bztp_mcls_cd_name":"","std_idst_clsf_cd_name":"제조"}}`))
	})
	info, err = c.StockInfo(t.Context(), "123450")
	if err != nil || info.Market != kisfeed.MarketKONEX || info.Sector != "제조" || info.ListingDate != kisfeed.Date(2020, 1, 1) {
		t.Errorf("konex: got %+v %v", info, err)
	}
	f.handle(pathStockInfo, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"rt_cd":"0","output":{}}`)) })
	if _, err := c.StockInfo(t.Context(), "123450"); !errors.Is(err, kisfeed.ErrNotFound) {
		t.Errorf("empty: got %v, want ErrNotFound", err)
	}
	if _, err := c.StockInfo(t.Context(), "1"); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("bad code: got %v", err)
	}
}

func TestCalendarFixturePaging(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	page1 := fixture(t, "chk-holiday.json")
	var gotCont []string
	var gotNK []string
	f.handle(pathHoliday, func(w http.ResponseWriter, r *http.Request) {
		gotCont = append(gotCont, r.Header.Get("tr_cont"))
		gotNK = append(gotNK, r.URL.Query().Get("CTX_AREA_NK"))
		if r.Header.Get("tr_cont") == "N" {
			w.Header().Set("tr_cont", "D")
			w.Write([]byte(`{"rt_cd":"0","ctx_area_nk":"","ctx_area_fk":"","output":[{"bass_dt":"20251011","opnd_yn":"N"},{"bass_dt":"20251012","opnd_yn":"N"},{"bass_dt":"20251013","opnd_yn":"Y","bzdy_yn":"Y","tr_day_yn":"Y","sttl_day_yn":"Y"}]}`))
			return
		}
		w.Header().Set("tr_cont", "M")
		w.Write(page1)
	})
	c := testClient(t, f.url())
	days, err := c.Calendar(t.Context(), kisfeed.Date(2025, 9, 29), kisfeed.Date(2025, 10, 13))
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 15 || days[4].Open || !days[0].Open || !days[14].Open || days[12].Open {
		t.Errorf("days: got %+v", days)
	}
	if fmt.Sprint(gotCont) != "[ N]" || strings.TrimSpace(gotNK[1]) != "20251011" {
		t.Errorf("paging: got tr_cont %q nk %q", gotCont, gotNK)
	}
	// Cached: a second question within the range sends nothing.
	if open, err := c.IsTradingDay(t.Context(), kisfeed.Date(2025, 10, 6)); err != nil || open {
		t.Errorf("2025-10-06: got %v %v", open, err)
	}
	if len(gotCont) != 2 {
		t.Errorf("calls: got %d, want 2 (cached)", len(gotCont))
	}
	if _, err := c.Calendar(t.Context(), kisfeed.Date(2025, 10, 2), kisfeed.Date(2025, 10, 1)); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("reversed: got %v", err)
	}
	if _, err := c.Calendar(t.Context(), kisfeed.Date(2015, 10, 2), kisfeed.Date(2025, 10, 1)); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("10 years: got %v", err)
	}
	f.handle(pathHoliday, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"rt_cd":"0","output":[{"bass_dt":"2025-01-01","opnd_yn":"N"}]}`))
	})
	if _, err := c.Calendar(t.Context(), kisfeed.Date(2024, 1, 1), kisfeed.Date(2024, 1, 2)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "output[0].bass_dt") {
		t.Errorf("bad date: got %v", err)
	}
	f.handle(pathHoliday, errBody(500, "EGW00105", "x"))
	if _, err := c.Holidays(t.Context(), kisfeed.Date(2023, 1, 1), kisfeed.Date(2023, 1, 2)); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("failure: got %v", err)
	}
	if _, err := c.IsTradingDay(t.Context(), kisfeed.Date(2023, 1, 1)); err == nil {
		t.Errorf("failure: want an error")
	}
}

func TestDecodeFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(f *fields)
		want string
	}{
		{"int ok", func(f *fields) { f.int("a", " -12 ") }, ""},
		{"int plus", func(f *fields) { f.int("a", "+12") }, ""},
		{"int sign only", func(f *fields) { f.int("a", "-") }, `x.a: "-" is not an integer`},
		{"int overflow", func(f *fields) { f.int("a", "99999999999999999999") }, "is not an integer"},
		{"req empty", func(f *fields) { f.req("a", "") }, `x.a: "" is not an integer (empty)`},
		{"float ok", func(f *fields) { f.float("a", "-0.12") }, ""},
		{"float inf", func(f *fields) { f.float("a", "inf") }, "is not a decimal number"},
		{"float exp", func(f *fields) { f.float("a", "1e3") }, "is not a decimal number"},
		{"float dot", func(f *fields) { f.float("a", ".") }, "is not a decimal number"},
		{"date ok", func(f *fields) { f.date("a", "20240229") }, ""},
		{"date feb 30", func(f *fields) { f.date("a", "20240230") }, "is not a date"},
		{"date month 13", func(f *fields) { f.date("a", "20241301") }, "is not a date"},
		{"date year 0100", func(f *fields) { f.date("a", "01000101") }, "is not a date"},
		{"req date empty", func(f *fields) { f.reqDate("a", " ") }, "(empty)"},
		{"clock ok", func(f *fields) { f.clock("a", "153000") }, ""},
		{"clock 61 minutes", func(f *fields) { f.clock("a", "096100") }, "is not a time"},
		{"clock negative", func(f *fields) { f.clock("a", "-10000") }, "is not a time"},
		{"yn lower", func(f *fields) { f.yn("a", "y") }, ""},
		{"yn bad", func(f *fields) { f.yn("a", "X") }, "is not Y or N"},
		{"long value shortened", func(f *fields) { f.int("a", strings.Repeat("9x", 40)) }, "…"},
		{"first error kept", func(f *fields) { f.int("a", "x"); f.int("b", "y") }, "x.a:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fields{prefix: "x"}
			tt.fn(&f)
			if tt.want == "" && f.err != nil {
				t.Errorf("got %v, want no error", f.err)
			}
			if tt.want != "" && (f.err == nil || !strings.Contains(f.err.Error(), tt.want)) {
				t.Errorf("got %v, want an error containing %q", f.err, tt.want)
			}
		})
	}
}

// FuzzDecodePrice feeds arbitrary bodies through the whole decode path:
// never a panic, a success always has a positive price, and a decode
// failure is a *MalformedError naming a field.
func FuzzDecodePrice(f *testing.F) {
	f.Add(fixture(f, "inquire-price.json"), 200)
	f.Add([]byte(`{"rt_cd":"0","output":{"stck_prpr":"12a"}}`), 200)
	f.Add([]byte(`{"rt_cd":"0","output":{"stck_prpr":12}}`), 200)
	f.Add([]byte(`{"rt_cd":"1","msg_cd":"EGW00201"}`), 500)
	f.Add([]byte(`<html>`), 502)
	f.Add([]byte(`{"error_code":"EGW00133","error_description":"x"}`), 403)
	c, err := NewClient(WithAppKey(testKey, testSecret), WithTokenStore(NewMemoryTokenStore()))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		var out priceResponse
		resp := &Response{}
		err := c.check(&Request{TrID: TrPrice}, status, body, &out, resp)
		var me *MalformedError
		if errors.As(err, &me) && (me.Op != TrPrice || !errors.Is(err, ErrMalformed)) {
			t.Fatalf("malformed error %+v: want tr_id %s and ErrMalformed", me, TrPrice)
		}
		if err != nil {
			return
		}
		var o *priceOutput
		if err := decodeObject(TrPrice, "output", out.Output, &o); err != nil {
			if !errors.As(err, &me) || !strings.HasPrefix(me.Field, "output") {
				t.Fatalf("decode: got %v, want a *MalformedError for output", err)
			}
			return
		}
		if o == nil {
			return
		}
		fl := fields{prefix: "output"}
		p := fl.req("stck_prpr", o.StckPrpr)
		fl.int("prdy_vrss", o.PrdyVrss)
		fl.float("prdy_ctrt", o.PrdyCtrt)
		if fl.err == nil && strings.TrimSpace(o.StckPrpr) == "" {
			t.Fatalf("empty price accepted as %d", p)
		}
		if err := fl.malformed(TrPrice, "005930", out.Output); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
}

// FuzzDecodeMult feeds arbitrary intstock-multprice rows: never a panic,
// every code asked gets exactly one of a quote or an error, a quote has a
// positive price only when one was sent, and an unreadable row is a
// *MalformedError for that code.
func FuzzDecodeMult(f *testing.F) {
	f.Add(fixture(f, "intstock-multprice.json"))
	f.Add([]byte(`{"rt_cd":"0","output":[{"inter_shrn_iscd":"005930","inter2_prpr":"1","acml_vol":"1e5"}]}`))
	f.Add([]byte(`{"rt_cd":"0","output":[{"inter_shrn_iscd":"005930","inter2_prpr":"-5","inter2_hgpr":7},null,3]}`))
	f.Add([]byte(`{"rt_cd":"0","output":[{"inter_shrn_iscd":5930}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var res multResponse
		if json.Unmarshal(body, &res) != nil {
			return
		}
		codes := []string{"005930", "035720", "000660"}
		out := make([]*kisfeed.Quote, len(codes))
		bad := map[string]error{}
		decodeMult(res.Output, codes, []int{0, 1, 2}, time.Time{}, out, bad)
		for i, code := range codes {
			e, failed := bad[code]
			if (out[i] != nil) == failed {
				t.Fatalf("%s: quote %v and error %v; want exactly one", code, out[i], e)
			}
			var me *MalformedError
			if errors.As(e, &me) && (me.Code != code || me.Op != TrMultPrice || !strings.HasPrefix(me.Field, "output")) {
				t.Fatalf("%s: malformed error %+v", code, me)
			}
			if failed && !errors.Is(e, ErrMalformed) && !errors.Is(e, kisfeed.ErrNotFound) {
				t.Fatalf("%s: got %v, want ErrMalformed or ErrNotFound", code, e)
			}
			if out[i] != nil && (out[i].Code != code || out[i].Price == 0) {
				t.Fatalf("%s: got quote %+v", code, out[i])
			}
		}
	})
}

func FuzzParseNumbers(f *testing.F) {
	for _, s := range []string{"0", "-100", "+5", "0.00", "-0.12", "129097.23", "", "1e5", "0x1f", "1_000", "NaN", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl := fields{prefix: "f"}
		n := fl.int("i", s)
		if fl.err == nil && strings.TrimSpace(s) != "" && strconv.FormatInt(n, 10) != strings.TrimPrefix(strings.TrimSpace(s), "+") &&
			strings.TrimLeft(strings.TrimPrefix(strings.TrimSpace(s), "+"), "0") != strings.TrimLeft(strconv.FormatInt(n, 10), "0") {
			// Leading zeros and a plus sign are the only differences allowed.
			if !strings.HasPrefix(strings.TrimSpace(s), "-0") {
				t.Fatalf("%q parsed as %d", s, n)
			}
		}
		fl = fields{prefix: "f"}
		fl.float("x", s)
		fl.date("d", s)
		fl.clock("c", s)
		fl.yn("y", s)
	})
}

func TestMalformedHelpers(t *testing.T) {
	t.Parallel()
	t.Run("error text", func(t *testing.T) {
		e := malformedAt("", "output.x", strings.Repeat("가", 20), "")
		if got := e.Error(); !strings.HasPrefix(got, "kis: output.x: ") || !strings.HasSuffix(got, `…" is not readable`) || !utf8.ValidString(got) {
			t.Errorf("got %q, want a shortened valid value", got)
		}
		if !errors.Is(fmt.Errorf("wrapped: %w", e), ErrMalformed) || errors.Is(e, kisfeed.ErrNotFound) {
			t.Errorf("errors.Is: want ErrMalformed only")
		}
	})
	t.Run("root type", func(t *testing.T) {
		// Callers outside kis (ingest, the breaker's classifier) know only
		// the root type and sentinel: both must reach a wrapped kis error,
		// and the root value must be the kis error's own (a code set later
		// by withCode shows through).
		e := malformedAt(TrMultPrice, "output[1].stck_prpr", "12a", "an integer")
		err := withCode(fmt.Errorf("quotes: %w", e), "005930")
		var root *kisfeed.MalformedError
		if !errors.As(err, &root) || root != &e.MalformedError {
			t.Fatalf("errors.As(%v, *kisfeed.MalformedError) = %v, want the kis error's own value", err, root)
		}
		if root.Op != TrMultPrice || root.Code != "005930" || root.Field != "output[1].stck_prpr" || root.Value != "12a" {
			t.Errorf("root = %+v, want op %s, code 005930 and the field", root, TrMultPrice)
		}
		if !errors.Is(err, kisfeed.ErrMalformed) || ErrMalformed != kisfeed.ErrMalformed {
			t.Errorf("errors.Is(%v, kisfeed.ErrMalformed) = false, want true", err)
		}
		if want := `kis FHKST11300006 stock 005930: output[1].stck_prpr: "12a" is not an integer`; e.Error() != want {
			t.Errorf("Error() = %q, want %q (kis's message, unchanged)", e.Error(), want)
		}
	})
	t.Run("decode object", func(t *testing.T) {
		var v struct{ A string }
		err := decodeObject("T", "out[1]", json.RawMessage(`"str"`), &v)
		var me *MalformedError
		if !errors.As(err, &me) || me.Field != "out[1]" || me.Want != "a JSON object" || me.Value != `"str"` {
			t.Errorf("got %+v, want the whole row named", me)
		}
		if err := decodeObject("T", "out", json.RawMessage(`{"A":"x"}`), &v); err != nil || v.A != "x" {
			t.Errorf("got %v %+v", err, v)
		}
	})
	t.Run("type mismatch", func(t *testing.T) {
		if typeMismatch("T", nil, errors.New("other")) != nil {
			t.Errorf("a non-type error: want nil")
		}
		body := []byte(`{"a":{"b":1}}`)
		var v struct {
			A struct{ B string } `json:"a"`
		}
		err := json.Unmarshal(body, &v)
		me := typeMismatch("T", body, err)
		if me == nil || me.Field != "a.b" || me.Value != "1" || string(me.Raw) != `{"b":1}` || me.Want != "a JSON string" {
			t.Errorf("got %+v, want a.b = 1 in its object", me)
		}
		big := []byte(`[` + strings.Repeat(`1,`, 3000) + `1]`)
		me = typeMismatch("T", big, json.Unmarshal(big, &v))
		if me == nil || me.Field != "(body)" || me.Raw != nil {
			t.Errorf("got %+v, want the body named, too big to keep", me)
		}
	})
	t.Run("lookup path", func(t *testing.T) {
		if v, _, _ := lookupPath([]byte(`{"a":1}`), "x.y"); v != nil {
			t.Errorf("missing path: got %s", v)
		}
		if v, _, _ := lookupPath([]byte(`{"a":1}`), "a.b"); v != nil {
			t.Errorf("path through a number: got %s", v)
		}
		if v, _, _ := lookupPath([]byte(`[1]`), "a"); v != nil {
			t.Errorf("not an object: got %s", v)
		}
	})
	t.Run("raw of", func(t *testing.T) {
		if rawOf(func() {}) != nil || string(rawOf(map[string]string{"a": "1"})) != `{"a":"1"}` {
			t.Errorf("rawOf: want nil for an unencodable value, the JSON otherwise")
		}
	})
}

// TestPricesOneByOneMalformed: on a server without intstock-multprice an
// unreadable inquire-price answer fails only its code too.
func TestPricesOneByOneMalformed(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(pathPrice, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("FID_INPUT_ISCD") == "005930" {
			w.Write([]byte(`{"rt_cd":"0","output":{"stck_prpr":"7x"}}`))
			return
		}
		w.Write([]byte(`{"rt_cd":"0","output":{"stck_prpr":"5"}}`))
	})
	c := testClient(t, f.url(), WithServer(Mock))
	qs, err := c.Prices(t.Context(), []string{"000660", "005930"})
	var be *kisfeed.BatchError
	if !errors.As(err, &be) || qs[0] == nil || qs[1] != nil || !errors.Is(be.Errs["005930"], ErrMalformed) {
		t.Errorf("got %v %v, want 000660 and a malformed 005930", qs, err)
	}
}
