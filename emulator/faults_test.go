package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		spec    string
		want    Faults
		wantErr string
	}{
		{"", Faults{}, ""},
		{"none", Faults{}, ""},
		{"error=0.05,reset=1%", Faults{Error: 0.05, Reset: 0.01}, ""},
		{"latency=normal:20ms,5ms,rate-limit=0.5", Faults{Latency: Latency{"normal", 20 * time.Millisecond, 5 * time.Millisecond}, RateLimit: 0.5}, ""},
		{"latency=uniform:5ms-50ms", Faults{Latency: Latency{"uniform", 5 * time.Millisecond, 50 * time.Millisecond}}, ""},
		{"outage=30s,expire-tokens,corrupt=0.1,seed=7", Faults{Outage: 30 * time.Second, ExpireTokens: true, Corrupt: 0.1, Seed: 7}, ""},
		{"error=0.1,boom=1", Faults{}, `unknown fault "boom"`},
		{"error=2", Faults{}, `fault "error=2"`},
		{"reset=x", Faults{}, `fault "reset=x"`},
		{"outage=soon", Faults{}, `fault "outage=soon"`},
		{"latency=weird:1ms", Faults{}, `unknown distribution "weird"`},
		{"seed=abc", Faults{}, `fault "seed=abc"`},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseFaults(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			// The spec and JSON forms round-trip.
			back, err := ParseFaults(got.String())
			if err != nil || back != got {
				t.Errorf("String round trip: got %+v, %v from %q", back, err, got.String())
			}
			b, _ := json.Marshal(got)
			var fromJSON Faults
			if err := json.Unmarshal(b, &fromJSON); err != nil || fromJSON != got {
				t.Errorf("JSON round trip: got %+v, %v from %s", fromJSON, err, b)
			}
		})
	}
}

func TestParseLatency(t *testing.T) {
	tests := []struct {
		spec string
		want Latency
		ok   bool
	}{
		{"20ms", Latency{"fixed", 20 * time.Millisecond, 0}, true},
		{"fixed:1s", Latency{"fixed", time.Second, 0}, true},
		{"uniform:5ms-50ms", Latency{"uniform", 5 * time.Millisecond, 50 * time.Millisecond}, true},
		{"normal:20ms/5ms", Latency{"normal", 20 * time.Millisecond, 5 * time.Millisecond}, true},
		{"0", Latency{}, true},
		{"uniform:50ms-5ms", Latency{}, false},
		{"-5ms", Latency{}, false},
		{"normal:20ms", Latency{}, false},
		{"soon", Latency{}, false},
	}
	for _, tc := range tests {
		got, err := ParseLatency(tc.spec)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseLatency(%q): got %+v, %v; want %+v ok=%v", tc.spec, got, err, tc.want, tc.ok)
		}
	}
}

func TestFaultInjection(t *testing.T) {
	tests := []struct {
		name   string
		f      Faults
		status int
		code   string
		kind   string
	}{
		{"error", Faults{Error: 1}, 500, "EGW00001", FaultError},
		{"rate limit", Faults{RateLimit: 1}, 500, "EGW00201", FaultRateLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, WithFaults(tc.f))
			h.login()
			rec := h.get("inquire-price", "FHKST01010100", priceQuery)
			if e := decodeEnv(t, rec); rec.Code != tc.status || e.MsgCd != tc.code {
				t.Errorf("got HTTP %d %s, want %d %s", rec.Code, e.MsgCd, tc.status, tc.code)
			}
			st := h.s.Stats()
			if st.FaultsInjected[tc.kind] != 1 || st.RateLimitRejections != 0 || st.MaxRequestsPerSecondWindow != 0 {
				t.Errorf("stats: got faults %v rejections %d window %d", st.FaultsInjected, st.RateLimitRejections, st.MaxRequestsPerSecondWindow)
			}
		})
	}
}

// TestFaultFractionReproducible: the same seed injects the same faults.
func TestFaultFractionReproducible(t *testing.T) {
	run := func() string {
		h := newHarness(t, WithFaults(Faults{Error: 0.3, Seed: 42}))
		h.login()
		var b strings.Builder
		for range 50 {
			b.WriteString(map[bool]string{true: "x", false: "."}[h.get("inquire-price", "FHKST01010100", priceQuery).Code == 500])
		}
		return b.String()
	}
	a, b := run(), run()
	if a != b {
		t.Errorf("same seed, different faults:\n%s\n%s", a, b)
	}
	if n := strings.Count(a, "x"); n < 5 || n > 30 {
		t.Errorf("error=0.3 over 50 calls: got %d errors", n)
	}
}

func TestCorrupt(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		h := newHarness(t, WithFaults(Faults{Corrupt: 1, Seed: seed}))
		h.login()
		var gtUIDs []string
		for _, tc := range goldenCases[:5] {
			rec := h.get(tc.path, tc.trID, tc.query)
			if wireHeader(rec.Header(), "x-emulator-fault") == nil {
				t.Errorf("seed %d %s: no corruption header", seed, tc.path)
			}
			gtUIDs = append(gtUIDs, wireHeader(rec.Header(), "gt_uid")...)
		}
		st := h.s.Stats()
		if st.CorruptedResponses != 5 || len(st.Corrupted) != 5 {
			t.Fatalf("seed %d: got %d corrupted (%d listed), want 5", seed, st.CorruptedResponses, len(st.Corrupted))
		}
		for _, c := range st.Corrupted {
			switch c.Kind {
			case "high_below_low", "crossed_book", "negative", "non_numeric":
			default:
				t.Errorf("kind %q", c.Kind)
			}
			if c.Field == "" || c.Value == "" {
				t.Errorf("corruption without field/value: %+v", c)
			}
		}
		for i, c := range st.Corrupted {
			if i < len(gtUIDs) && c.GtUID != gtUIDs[i] {
				t.Errorf("seed %d corruption %d: got gt_uid %q, want the response's %q", seed, i, c.GtUID, gtUIDs[i])
			}
		}
	}
}

// TestResetAndOutage runs a real listener: resets need a connection.
func TestResetAndOutage(t *testing.T) {
	h := newHarness(t, WithFaults(Faults{Reset: 1}))
	ts := httptest.NewServer(h.s)
	t.Cleanup(ts.Close)
	client := ts.Client()
	if _, err := client.Post(ts.URL+"/oauth2/tokenP", "application/json", strings.NewReader(`{}`)); err == nil {
		t.Error("reset=1: got a response, want a connection error")
	}
	// Admin endpoints are never faulted: clear the faults, start an outage.
	req, _ := http.NewRequest(http.MethodDelete, ts.URL+"/_emulator/faults", nil)
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("DELETE faults: %v", err)
	}
	if resp, err := client.Post(ts.URL+"/_emulator/outage?for=30s", "", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("outage: %v", err)
	}
	if _, err := client.Get(ts.URL + "/common/master/kospi_code.mst.zip"); err == nil {
		t.Error("during outage: got a response, want a connection error")
	}
	h.clock.Advance(31 * time.Second)
	resp, err := client.Get(ts.URL + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.FaultsInjected[FaultReset] != 1 || st.FaultsInjected[FaultOutage] != 1 {
		t.Errorf("stats faults: got %v, want reset 1 outage 1", st.FaultsInjected)
	}
	// After the outage: served again, and faults can be set by spec.
	if resp, err := client.Post(ts.URL+"/_emulator/faults", "text/plain", strings.NewReader("error=0.5,seed=3")); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST faults: %v", err)
	}
	if f := h.s.Faults(); f.Error != 0.5 || f.Seed != 3 {
		t.Errorf("faults after POST: got %+v", f)
	}
	if resp, err := client.Post(ts.URL+"/_emulator/faults", "text/plain", strings.NewReader("bogus=1")); err != nil || resp.StatusCode != 400 {
		t.Errorf("bad spec: got %v %v, want HTTP 400", resp.StatusCode, err)
	}
}

// TestCorruptChartRows: on a chart the corrupt fault hits output2 bars as
// well as output1, in any row, and the same seed corrupts the same rows.
// (It once always took output1, so no daily bar was ever corrupted.)
func TestCorruptChartRows(t *testing.T) {
	charts := []struct{ name, path, trID, query string }{
		{"daily chart", goldenCases[2].path, goldenCases[2].trID, goldenCases[2].query},
		{"minute chart", goldenCases[4].path, goldenCases[4].trID, goldenCases[4].query},
	}
	for _, tc := range charts {
		t.Run(tc.name, func(t *testing.T) {
			run := func(seed int64) []Corruption {
				h := newHarness(t, WithFaults(Faults{Corrupt: 1, Seed: seed}))
				h.login()
				for range 40 {
					rec := h.get(tc.path, tc.trID, tc.query)
					if rec.Code != 200 {
						t.Fatalf("HTTP %d %s", rec.Code, rec.Body)
					}
					// The listed corruption is in the body sent.
					st := h.s.Stats()
					c := st.Corrupted[len(st.Corrupted)-1]
					if want := `"` + c.Field + `":"` + c.Value + `"`; !strings.Contains(rec.Body.String(), want) {
						t.Fatalf("corruption %+v: body lacks %s", c, want)
					}
				}
				return h.s.Stats().Corrupted
			}
			a := run(5)
			rows := map[string]bool{}
			output1 := 0
			for _, c := range a {
				switch {
				case c.Block == "output1":
					output1++
				case strings.HasPrefix(c.Block, "output2["):
					rows[c.Block] = true
				default:
					t.Errorf("corruption in block %q, want output1 or output2[i]", c.Block)
				}
			}
			if output1 == 0 || len(rows) < 2 {
				t.Errorf("40 corrupted responses: %d in output1, output2 rows %v; want both blocks and several rows", output1, rows)
			}
			b := run(5)
			for i := range a {
				if a[i].Block != b[i].Block || a[i].Field != b[i].Field || a[i].Kind != b[i].Kind || a[i].Value != b[i].Value {
					t.Fatalf("seed 5 corruption %d: got %+v then %+v; want the same", i, a[i], b[i])
				}
			}
		})
	}
}
