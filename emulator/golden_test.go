package emulator

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// goldenCases are one successful request per endpoint and the fixture
// whose field names, order and JSON types the response must match.
var goldenCases = []struct {
	name, path, trID, query, fixture, trCont string
}{
	{"price", "inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930", "inquire-price.json", ""},
	{"asking", "inquire-asking-price-exp-ccn", "FHKST01010200", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=000660", "inquire-asking-price-exp-ccn.json", ""},
	{"daily chart", "inquire-daily-itemchartprice", "FHKST03010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_DATE_1=20241001&FID_INPUT_DATE_2=20241025&FID_PERIOD_DIV_CODE=D&FID_ORG_ADJ_PRC=0", "inquire-daily-itemchartprice.json", ""},
	{"daily price", "inquire-daily-price", "FHKST01010400", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_PERIOD_DIV_CODE=D&FID_ORG_ADJ_PRC=1", "inquire-daily-price.json", ""},
	{"minute chart", "inquire-time-itemchartprice", "FHKST03010200", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_HOUR_1=100000&FID_PW_DATA_INCU_YN=N&FID_ETC_CLS_CODE=", "inquire-time-itemchartprice.json", ""},
	{"past minute chart", "inquire-time-dailychartprice", "FHKST03010230", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930&FID_INPUT_HOUR_1=130000&FID_INPUT_DATE_1=20251023&FID_PW_DATA_INCU_YN=Y&FID_FAKE_TICK_INCU_YN=", "inquire-time-dailychartprice.json", ""},
	{"multprice", "intstock-multprice", "FHKST11300006", "FID_COND_MRKT_DIV_CODE_1=J&FID_INPUT_ISCD_1=005930&FID_COND_MRKT_DIV_CODE_2=J&FID_INPUT_ISCD_2=000660&FID_COND_MRKT_DIV_CODE_3=J&FID_INPUT_ISCD_3=035720", "intstock-multprice.json", ""},
	{"stock info", "search-stock-info", "CTPF1002R", "PRDT_TYPE_CD=300&PDNO=005930", "search-stock-info.json", ""},
	{"product info", "search-info", "CTPF1604R", "PDNO=005930&PRDT_TYPE_CD=300", "search-info.json", ""},
	{"holidays", "chk-holiday", "CTCA0903R", "BASS_DT=20250929&CTX_AREA_NK=&CTX_AREA_FK=", "chk-holiday.json", "M"},
}

func TestGoldenShapes(t *testing.T) {
	h := newHarness(t)
	h.login()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.get(tc.path, tc.trID, tc.query)
			if rec.Code != 200 {
				t.Fatalf("HTTP %d %s", rec.Code, rec.Body)
			}
			if e := decodeEnv(t, rec); e.RtCd != "0" {
				t.Fatalf("rt_cd: got %q (%s %s), want 0", e.RtCd, e.MsgCd, e.Msg1)
			}
			want := shapeOf(t, fixture(t, tc.fixture))
			got := shapeOf(t, rec.Body.Bytes())
			if d := diffShape("$", want, got); d != "" {
				t.Errorf("shape differs from %s: %s", tc.fixture, d)
			}
			// Every output value is a string (REFERENCE §c.3).
			for _, k := range got.keys {
				if got.kids[k].kind == "number" {
					t.Errorf("%s: got a JSON number, want a string", k)
				}
			}
			for hdr, want := range map[string]string{"tr_id": tc.trID, "tr_cont": tc.trCont, "Content-Type": "application/json; charset=utf-8"} {
				if got := wireHeader(rec.Header(), hdr); len(got) != 1 || got[0] != want {
					t.Errorf("header %s: got %q, want %q", hdr, got, want)
				}
			}
			if g := wireHeader(rec.Header(), "gt_uid"); len(g) != 1 || g[0] == "" {
				t.Errorf("header gt_uid: got %q, want a value", g)
			}
		})
	}
}

// TestGoldenSuccessTexts checks msg_cd/msg1 per endpoint against the
// fixtures (the quotation backend's texts differ by endpoint).
func TestGoldenSuccessTexts(t *testing.T) {
	h := newHarness(t)
	h.login()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeEnv(t, h.get(tc.path, tc.trID, tc.query))
			var want envelope
			if err := jsonUnmarshal(fixture(t, tc.fixture), &want); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("envelope: got %+v, want %+v", got, want)
			}
		})
	}
}

// TestFixtureCopies checks testdata/fixtures against ../shared/kis/fixtures
// when that directory sits beside the module (as in CI).
func TestFixtureCopies(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	shared := filepath.Join(filepath.Dir(file), "..", "..", "shared", "kis", "fixtures")
	entries, err := os.ReadDir(filepath.Join("testdata", "fixtures"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("no shared fixtures at %s", shared)
	}
	for _, e := range entries {
		want, err := os.ReadFile(filepath.Join(shared, e.Name()))
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		if got := fixture(t, e.Name()); !bytes.Equal(got, want) {
			t.Errorf("%s: testdata copy differs from %s", e.Name(), shared)
		}
	}
}
