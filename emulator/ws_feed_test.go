package emulator

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// TestWSAgreesWithREST: at several instants of simulated market hours,
// the last trade record's price, cumulative volume and OHLC equal
// inquire-price's at that instant, and the book frame equals
// inquire-asking-price-exp-ccn's.
func TestWSAgreesWithREST(t *testing.T) {
	t.Parallel()
	const code = "005930"
	day := marketTime.Truncate(24 * time.Hour).Add(-9 * time.Hour) // midnight KST
	for _, at := range []time.Duration{
		9*time.Hour + 30*time.Second, // busy: the open
		10*time.Hour + 17*time.Minute,
		13*time.Hour + 2*time.Minute,
		15*time.Hour + 19*time.Minute,
	} {
		start := day.Add(at)
		ex := sharedMarket().Executions(code, start, start.Add(2*time.Minute))
		if len(ex) < 2 {
			t.Fatalf("%s: %d executions, want some", start, len(ex))
		}
		target := ex[len(ex)/2]
		t.Run(target.Time.Format("150405.000"), func(t *testing.T) {
			t.Parallel()
			h := newWSHarness(t)
			h.clock.Set(start)
			key := h.approval("APPKEY-AGREE")
			c := h.dial("/tryitout")
			if code := c.subscribe(key, "1", TrTrade, code); code != opspSubscribed {
				t.Fatal(code)
			}
			h.clock.Set(target.Time)
			var last []string
			for last == nil || last[1] != hms(target.Time) || last[13] != itoa(target.CumVolume) {
				recs := c.frame(TrTrade)
				last = recs[len(recs)-1]
			}
			rest := restOutput(t, h, "inquire-price", "FHKST01010100")
			for _, f := range []struct {
				name string
				ws   int
			}{{"stck_prpr", 2}, {"acml_vol", 13}, {"stck_oprc", 7}, {"stck_hgpr", 8}, {"stck_lwpr", 9},
				{"prdy_vrss", 4}, {"prdy_ctrt", 5}, {"acml_tr_pbmn", 14}, {"wghn_avrg_stck_prc", 6}} {
				if rest["output"][f.name] != last[f.ws] {
					t.Errorf("%s: WebSocket %q, inquire-price %q", f.name, last[f.ws], rest["output"][f.name])
				}
			}
			if code := c.subscribe(key, "1", TrBook, code); code != opspSubscribed {
				t.Fatal(code)
			}
			book := c.frame(TrBook)[0]
			ob := restOutput(t, h, "inquire-asking-price-exp-ccn", "FHKST01010200")["output1"]
			for k := 1; k <= 10; k++ {
				n := strconv.Itoa(k)
				for _, f := range []struct {
					name string
					ws   int
				}{{"askp" + n, 2 + k}, {"bidp" + n, 12 + k}, {"askp_rsqn" + n, 22 + k}, {"bidp_rsqn" + n, 32 + k}} {
					if ob[f.name] != book[f.ws] {
						t.Errorf("%s: WebSocket %q, inquire-asking-price %q", f.name, book[f.ws], ob[f.name])
					}
				}
			}
			if ob["total_askp_rsqn"] != book[43] || ob["total_bidp_rsqn"] != book[44] || ob["aspr_acpt_hour"] != book[1] {
				t.Errorf("totals/time: WebSocket %s/%s/%s, REST %s/%s/%s", book[43], book[44], book[1],
					ob["total_askp_rsqn"], ob["total_bidp_rsqn"], ob["aspr_acpt_hour"])
			}
		})
	}
}

// restOutput calls a quotation on the emulator's own HTTP listener and
// returns its output blocks as string maps.
func restOutput(t *testing.T, h *wsHarness, name, trID string) map[string]map[string]string {
	t.Helper()
	rh := &harness{t: t, s: h.s, clock: h.clock}
	rh.login()
	rec := rh.get(name, trID, "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out := map[string]map[string]string{}
	for k, v := range raw {
		m := map[string]string{}
		if json.Unmarshal(v, &m) == nil {
			out[k] = m
		}
	}
	return out
}

func TestWSFrameFields(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t) // real server: the 통합 TRs too
	key := h.approval("APPKEY-F")
	c := h.dial("/tryitout")
	for _, tr := range []string{TrTrade, TrBook, TrTradeUnif, TrBookUnif} {
		if code := c.subscribe(key, "1", tr, "000660"); code != opspSubscribed {
			t.Fatalf("%s: %s", tr, code)
		}
	}
	h.clock.Advance(3 * time.Minute)
	for _, tr := range []string{TrTrade, TrBook, TrTradeUnif, TrBookUnif} {
		recs := c.frame(tr) // splitFrame checks count × fields
		if recs[0][0] != "000660" {
			t.Errorf("%s: code %q", tr, recs[0][0])
		}
	}
}
