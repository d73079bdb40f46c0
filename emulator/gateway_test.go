package emulator

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const priceQuery = "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930"

func TestRateLimitBurst(t *testing.T) {
	h := newHarness(t, WithRate(20))
	h.login()
	rejected := 0
	for range 40 {
		rec := h.get("inquire-price", "FHKST01010100", priceQuery)
		if rec.Code == 500 {
			rejected++
			if got, want := compactJSON(t, rec.Body.Bytes()), compactJSON(t, fixture(t, "error_EGW00201.json")); got != want {
				t.Fatalf("rejection body: got %s, want %s", got, want)
			}
		}
	}
	if rejected != 20 {
		t.Errorf("burst of 40 at rate 20: got %d rejected, want 20", rejected)
	}
	st := h.s.Stats()
	if st.RateLimitRejections != 20 || st.MaxRequestsPerSecondWindow != 20 {
		t.Errorf("stats: got rejections %d max window %d, want 20 20", st.RateLimitRejections, st.MaxRequestsPerSecondWindow)
	}
	if k := st.PerAppKey[testKey]; k.Accepted != 20 || k.RateLimitRejections != 20 || k.TokenRequests != 1 {
		t.Errorf("per key: got %+v", k)
	}
	if st.ResponsesByMsgCd["EGW00201"] != 20 {
		t.Errorf("responses_by_msg_cd[EGW00201]: got %d, want 20", st.ResponsesByMsgCd["EGW00201"])
	}
}

// TestRateLimitSliding: the window slides over accepted requests, so the
// strict reading holds at every instant, not per calendar second.
func TestRateLimitSliding(t *testing.T) {
	h := newHarness(t, WithRate(10))
	h.login()
	accept := func(n int) int {
		ok := 0
		for range n {
			if h.get("inquire-price", "FHKST01010100", priceQuery).Code == 200 {
				ok++
			}
		}
		return ok
	}
	steps := []struct {
		advance time.Duration
		send    int
		want    int
	}{
		{0, 5, 5},                       // t=0
		{600 * time.Millisecond, 10, 5}, // t=0.6: 5 still in window
		{400 * time.Millisecond, 10, 5}, // t=1.0: the t=0 five left
		{599 * time.Millisecond, 3, 0},  // t=1.599: window full
		{1 * time.Millisecond, 3, 3},    // t=1.6
		{10 * time.Second, 20, 10},      // long idle: full burst
	}
	for i, st := range steps {
		h.clock.Advance(st.advance)
		if got := accept(st.send); got != st.want {
			t.Errorf("step %d: got %d accepted, want %d", i, got, st.want)
		}
	}
	if m := h.s.Stats().MaxRequestsPerSecondWindow; m > 10 {
		t.Errorf("max window: got %d, want <= 10", m)
	}
}

func TestRateLimitPerKeyAndExempt(t *testing.T) {
	h := newHarness(t, WithRate(1), WithTokenIssueInterval(0))
	h.login()
	if c := h.get("inquire-price", "FHKST01010100", priceQuery).Code; c != 200 {
		t.Fatalf("first: HTTP %d", c)
	}
	if c := h.get("inquire-price", "FHKST01010100", priceQuery).Code; c != 500 {
		t.Errorf("second in the same second: got HTTP %d, want 500", c)
	}
	// tokenP is not counted against the REST limit.
	for range 3 {
		if rec := h.issue(testKey, testSecret); rec.Code != 200 {
			t.Errorf("tokenP under a full window: got HTTP %d", rec.Code)
		}
	}
	// Another key has its own window.
	rec := h.issue("key-b", "secret-b")
	tok := tokenOf(t, rec.Body.Bytes()).AccessToken
	hdr := map[string]string{"authorization": "Bearer " + tok, "appkey": "key-b", "appsecret": "secret-b", "tr_id": "FHKST01010100"}
	if c := h.do(http.MethodGet, quotationsPrefix+"inquire-price?"+priceQuery, hdr, "").Code; c != 200 {
		t.Errorf("other key: got HTTP %d, want 200", c)
	}
}

func TestMockServerRefusals(t *testing.T) {
	h := newHarness(t, WithServerKind(KindMock), WithRate(0))
	h.login()
	want := compactJSON(t, fixture(t, "error_mock_unsupported_tr.json"))
	for _, tc := range goldenCases {
		rec := h.get(tc.path, tc.trID, tc.query)
		realOnly := endpoints[tc.path].realOnly
		switch {
		case realOnly && (rec.Code != 500 || compactJSON(t, rec.Body.Bytes()) != want):
			t.Errorf("%s on mock: got HTTP %d %s, want 500 %s", tc.path, rec.Code, rec.Body, want)
		case !realOnly && rec.Code != 200:
			t.Errorf("%s on mock: got HTTP %d, want 200", tc.path, rec.Code)
		}
	}
	if s, _ := New(WithMarket(sharedMarket()), WithServerKind("mock")); s.Rate() != 1 {
		t.Errorf("mock default rate: got %v, want 1", s.Rate())
	}
	if s, _ := New(WithMarket(sharedMarket())); s.Rate() != 18 {
		t.Errorf("real default rate: got %v, want 18", s.Rate())
	}
}

func TestHeaderErrors(t *testing.T) {
	h := newHarness(t)
	tok := h.login()
	good := func() map[string]string { return h.authHeaders("FHKST01010100") }
	tests := []struct {
		name   string
		edit   func(map[string]string)
		status int
		code   string
	}{
		{"ok", func(map[string]string) {}, 200, "MCA00000"},
		{"no appkey", func(m map[string]string) { delete(m, "appkey") }, 500, "EGW00102"},
		{"no appsecret", func(m map[string]string) { delete(m, "appsecret") }, 500, "EGW00104"},
		{"no authorization", func(m map[string]string) { delete(m, "authorization") }, 500, "EGW00205"},
		{"basic scheme", func(m map[string]string) { m["authorization"] = "Basic " + tok }, 500, "EGW00205"},
		{"unknown token", func(m map[string]string) { m["authorization"] = "Bearer nope" }, 500, "EGW00121"},
		{"token of another key", func(m map[string]string) { m["appkey"] = "someone-else" }, 500, "EGW00121"},
		{"wrong secret", func(m map[string]string) { m["appsecret"] = "other" }, 500, "EGW00105"},
		{"bad custtype", func(m map[string]string) { m["custtype"] = "X" }, 500, "EGW00208"},
		{"no custtype", func(m map[string]string) { delete(m, "custtype") }, 200, "MCA00000"},
		{"corporate custtype", func(m map[string]string) { m["custtype"] = "B" }, 200, "MCA00000"},
		{"no tr_id", func(m map[string]string) { delete(m, "tr_id") }, 200, "OPSQ9999"},
		{"wrong tr_id", func(m map[string]string) { m["tr_id"] = "FHKST01010200" }, 200, "OPSQ0002"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := good()
			tc.edit(hdr)
			rec := h.do(http.MethodGet, quotationsPrefix+"inquire-price?"+priceQuery, hdr, "")
			e := decodeEnv(t, rec)
			if rec.Code != tc.status || e.MsgCd != tc.code {
				t.Errorf("got HTTP %d %s %q, want %d %s", rec.Code, e.MsgCd, e.Msg1, tc.status, tc.code)
			}
			if tc.status != 200 && e.RtCd != "1" {
				t.Errorf("rt_cd: got %q, want 1", e.RtCd)
			}
		})
	}
}

func TestParamErrors(t *testing.T) {
	h := newHarness(t)
	h.login()
	tests := []struct {
		name, path, trID, query, code string
	}{
		{"no market", "inquire-price", "FHKST01010100", "FID_INPUT_ISCD=005930", "OPSQ2001"},
		{"bad market", "inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=Q&FID_INPUT_ISCD=005930", "OPSQ2001"},
		{"short code", "inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=12345", "OPSQ2002"},
		{"no code", "inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=J", "OPSQ2001"},
		{"lowercase keys", "inquire-price", "FHKST01010100", "fid_cond_mrkt_div_code=J&fid_input_iscd=005930", "MCA00000"},
		{"NX market", "inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=NX&FID_INPUT_ISCD=005930", "MCA00000"},
		{"bad date", "inquire-daily-itemchartprice", "FHKST03010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_DATE_1=20241301&FID_INPUT_DATE_2=20241025&FID_PERIOD_DIV_CODE=D&FID_ORG_ADJ_PRC=0", "OPSQ2002"},
		{"bad period", "inquire-daily-itemchartprice", "FHKST03010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_DATE_1=20241001&FID_INPUT_DATE_2=20241025&FID_PERIOD_DIV_CODE=X&FID_ORG_ADJ_PRC=0", "OPSQ2002"},
		{"no adj", "inquire-daily-itemchartprice", "FHKST03010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_DATE_1=20241001&FID_INPUT_DATE_2=20241025&FID_PERIOD_DIV_CODE=D", "OPSQ2001"},
		{"bad hour", "inquire-time-itemchartprice", "FHKST03010200", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_HOUR_1=256000&FID_PW_DATA_INCU_YN=N&FID_ETC_CLS_CODE=", "OPSQ2002"},
		{"no etc cls", "inquire-time-itemchartprice", "FHKST03010200", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_HOUR_1=100000&FID_PW_DATA_INCU_YN=N", "OPSQ2001"},
		{"multprice pair 31", "intstock-multprice", "FHKST11300006", "FID_COND_MRKT_DIV_CODE_1=J&FID_INPUT_ISCD_1=005930&FID_COND_MRKT_DIV_CODE_31=J&FID_INPUT_ISCD_31=005930", "OPSQ2002"},
		{"multprice no pair 1", "intstock-multprice", "FHKST11300006", "FID_COND_MRKT_DIV_CODE_2=J&FID_INPUT_ISCD_2=005930", "OPSQ2001"},
		{"holiday bad date", "chk-holiday", "CTCA0903R", "BASS_DT=2025&CTX_AREA_NK=&CTX_AREA_FK=", "OPSQ2002"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.get(tc.path, tc.trID, tc.query)
			e := decodeEnv(t, rec)
			if rec.Code != 200 || e.MsgCd != tc.code {
				t.Errorf("got HTTP %d %s %q, want 200 %s", rec.Code, e.MsgCd, e.Msg1, tc.code)
			}
			if tc.code != "MCA00000" && e.RtCd != "2" {
				t.Errorf("rt_cd: got %q, want 2", e.RtCd)
			}
		})
	}
}

// TestParamSpellingsDeterministic: two spellings of one key, neither
// exact, get the same answer every time (map order must not decide).
func TestParamSpellingsDeterministic(t *testing.T) {
	h := newHarness(t)
	h.login()
	const q = "FID_COND_MRKT_DIV_CODE=J&fid_input_iscd=12345&Fid_Input_Iscd=005930"
	want := decodeEnv(t, h.get("inquire-price", "FHKST01010100", q))
	if want.MsgCd != "MCA00000" {
		t.Errorf("got %s, want MCA00000 (Fid_Input_Iscd sorts first)", want.MsgCd)
	}
	for i := range 50 {
		if got := decodeEnv(t, h.get("inquire-price", "FHKST01010100", q)); got != want {
			t.Fatalf("call %d: got %+v, want %+v", i, got, want)
		}
	}
}

func TestUnknownCode(t *testing.T) {
	h := newHarness(t)
	h.login()
	rec := h.get("inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=999999")
	if !strings.Contains(rec.Body.String(), `"stck_prpr":"0"`) || decodeEnv(t, rec).RtCd != "0" {
		t.Errorf("unknown code price: got %s, want rt_cd 0 with stck_prpr 0", rec.Body)
	}
	if d := diffShape("$", shapeOf(t, fixture(t, "inquire-price.json")), shapeOf(t, rec.Body.Bytes())); d != "" {
		t.Errorf("unknown code keeps the shape: %s", d)
	}
	for _, p := range []struct{ path, tr string }{{"search-info", "CTPF1604R"}, {"search-stock-info", "CTPF1002R"}} {
		if e := decodeEnv(t, h.get(p.path, p.tr, "PRDT_TYPE_CD=300&PDNO=999999")); e.RtCd != "7" {
			t.Errorf("%s unknown code: got rt_cd %q, want 7", p.path, e.RtCd)
		}
	}
	rec = h.get("intstock-multprice", "FHKST11300006", "FID_COND_MRKT_DIV_CODE_1=J&FID_INPUT_ISCD_1=999999&FID_COND_MRKT_DIV_CODE_2=J&FID_INPUT_ISCD_2=005930")
	if s := shapeOf(t, rec.Body.Bytes()); s.kids["output"].n != 2 {
		t.Errorf("multprice with an unknown code: got %d rows, want 2", s.kids["output"].n)
	}
}
