package emulator

import (
	"encoding/json"
	"strconv"
	"strings"
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

// TestWSOpeningBurst: the opening minute's crowd of trades arrives as
// multi-record frames whose cumulative volume never decreases.
func TestWSOpeningBurst(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t)
	open := marketTime.Add(-time.Hour) // 09:00
	h.clock.Set(open)
	key := h.approval("K-OPEN")
	c := h.dial("/tryitout")
	if got := c.subscribe(key, "1", TrTrade, "005930"); got != opspSubscribed {
		t.Fatal(got)
	}
	h.clock.Set(open.Add(3 * time.Second))
	want := sharedMarket().Executions("005930", open, open.Add(3*time.Second))
	var got [][]string
	maxPerFrame := 0
	for len(got) < len(want) {
		recs := c.frame(TrTrade)
		maxPerFrame = max(maxPerFrame, len(recs))
		got = append(got, recs...)
	}
	if maxPerFrame < 2 {
		t.Errorf("largest frame had %d records, want several at the open", maxPerFrame)
	}
	var last int64
	for k, r := range got {
		vol, _ := strconv.ParseInt(r[13], 10, 64)
		if vol < last || r[13] != itoa(want[k].CumVolume) {
			t.Fatalf("record %d: ACML_VOL %s after %d, want %d", k, r[13], last, want[k].CumVolume)
		}
		last = vol
	}
}

// TestWSNothingOutsideHours: no trade or book frames before the open,
// after the close or on a holiday, though PINGPONG goes on.
func TestWSNothingOutsideHours(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		from, to time.Time
	}{
		{"pre-open", marketTime.Add(-2 * time.Hour), marketTime.Add(-time.Hour - time.Millisecond)},
		{"after close", marketTime.Add(5*time.Hour + 31*time.Minute), marketTime.Add(8 * time.Hour)},
		{"saturday", marketTime.Add(24 * time.Hour), marketTime.Add(30 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newWSHarness(t, WithPingInterval(20*time.Millisecond))
			h.clock.Set(tc.from)
			key := h.approval("K-HOURS")
			c := h.dial("/")
			for _, tr := range []string{TrTrade, TrBook} {
				if got := c.subscribe(key, "1", tr, "005930"); got != opspSubscribed {
					t.Fatal(got)
				}
			}
			h.clock.Set(tc.to)
			// Three pings mean many feed steps (2 ms each) have run.
			for pings := 0; pings < 3; {
				m := c.read()
				if m[0] == '0' || m[0] == '1' {
					t.Fatalf("data outside market hours: %.60s", m)
				}
				if strings.Contains(m, "PINGPONG") {
					c.send(m)
					pings++
				}
			}
		})
	}
}
