package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"
)

// FuzzRequestParams sends arbitrary query strings and headers to every
// quotation path: the server must never panic and must always answer a
// KIS-shaped JSON envelope (rt_cd, msg_cd, msg1 strings).
func FuzzRequestParams(f *testing.F) {
	h := newHarnessF(f)
	paths := make([]string, 0, len(endpoints))
	for p := range endpoints {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	// A seed's path index must be its own path's, or the seed only tests
	// the tr_id mismatch answer.
	pathIndex := func(p string) uint8 { return uint8(slices.Index(paths, p)) }
	for _, tc := range goldenCases {
		f.Add(pathIndex(tc.path), tc.query, tc.trID, "", "P")
	}
	f.Add(pathIndex("inquire-daily-itemchartprice"), "FID_INPUT_DATE_1=00000101&FID_INPUT_DATE_2=99991231&FID_PERIOD_DIV_CODE=Y&FID_ORG_ADJ_PRC=0&FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=Q500001", "FHKST03010100", "", "B")
	f.Add(pathIndex("chk-holiday"), "BASS_DT=20271225&CTX_AREA_NK=%ZZ&CTX_AREA_FK=20271225", "CTCA0903R", "N", "")
	f.Add(pathIndex("inquire-price"), "FID_INPUT_HOUR_1=999999&FID_INPUT_ISCD=\x00\xff", "", "", "?")
	f.Fuzz(func(t *testing.T, pi uint8, query, trID, trCont, custtype string) {
		path := paths[int(pi)%len(paths)]
		if trID == "" {
			trID = endpoints[path].trID
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = quotationsPrefix + path
		req.URL.RawQuery = query
		req.Header.Set("authorization", "Bearer "+h.token)
		req.Header.Set("appkey", testKey)
		req.Header.Set("appsecret", testSecret)
		// Set, not a raw map entry: the server reads canonical keys
		// ("Tr_id"), as net/http delivers them off the wire; a raw
		// "tr_id" entry is never seen and every call stopped at OPSQ9999.
		req.Header.Set("tr_id", trID)
		req.Header.Set("tr_cont", trCont)
		if custtype != "" {
			req.Header.Set("custtype", custtype)
		}
		rec := httptest.NewRecorder()
		h.s.ServeHTTP(rec, req)
		var env map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s?%s: body is not JSON: %v\n%s", path, query, err, rec.Body)
		}
		for _, k := range []string{"rt_cd", "msg_cd", "msg1"} {
			if _, ok := env[k].(string); !ok {
				t.Fatalf("%s?%s: %s missing or not a string: %s", path, query, k, rec.Body)
			}
		}
		if env["rt_cd"] == "0" && rec.Code != 200 {
			t.Fatalf("success with HTTP %d", rec.Code)
		}
	})
}

// newHarnessF is newHarness for fuzz targets.
func newHarnessF(f *testing.F) *harness {
	clock := newClock(marketTime)
	s, err := New(WithMarket(sharedMarket()), WithClock(clock.Now), WithRate(0), WithTokenIssueInterval(0))
	if err != nil {
		f.Fatal(err)
	}
	h := &harness{s: s, clock: clock}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/oauth2/tokenP",
		jsonBody(map[string]string{"grant_type": "client_credentials", "appkey": testKey, "appsecret": testSecret})))
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		f.Fatal(err)
	}
	h.token = tr.AccessToken
	return h
}
