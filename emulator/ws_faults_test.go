package emulator

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// tradeRecordAt subscribes H0STCNT0 for code at market time from, moves
// the market to the execution at to, and returns that execution's record
// split into n fields.
func tradeRecordAt(t *testing.T, h *wsHarness, key, code string, from time.Time, n int) []string {
	t.Helper()
	ex := sharedMarket().Executions(code, from, from.Add(time.Minute))
	if len(ex) == 0 {
		t.Fatal("no executions")
	}
	target := ex[len(ex)-1]
	h.clock.Set(from)
	c := h.dial("/tryitout")
	if got := c.subscribe(key, "1", TrTrade, code); got != opspSubscribed {
		t.Fatal(got)
	}
	h.clock.Set(target.Time)
	for {
		m := c.read()
		if !strings.HasPrefix(m, "0|"+TrTrade+"|") {
			continue
		}
		recs := splitFrame(t, m, n)
		if last := recs[len(recs)-1]; last[13] == itoa(target.CumVolume) {
			return last
		}
	}
}

func TestWSExtraFieldsFault(t *testing.T) {
	t.Parallel()
	from := marketTime.Add(7 * time.Minute)
	plain := newWSHarness(t)
	want := tradeRecordAt(t, plain, plain.approval("K1"), "000660", from, tradeFields)

	f, err := ParseWSFaults("extra-fields=H0STCNT0:3")
	if err != nil {
		t.Fatal(err)
	}
	faulty := newWSHarness(t, WithWSFaults(f))
	got := tradeRecordAt(t, faulty, faulty.approval("K1"), "000660", from, tradeFields+3)
	if strings.Join(got[:tradeFields], "^") != strings.Join(want, "^") {
		t.Errorf("known fields changed by the fault:\n got  %v\n want %v", got[:tradeFields], want)
	}
}

func TestWSDropAndRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fault  func(s *Server) int
		reason string
	}{
		{"drop", (*Server).DropSessions, DropFault},
		{"restart", (*Server).RestartWebSocket, DropRestart},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newWSHarness(t)
			key := h.approval("K-DROP")
			c := h.dial("/tryitout")
			if got := c.subscribe(key, "1", TrTrade, "005930"); got != opspSubscribed {
				t.Fatal(got)
			}
			if n := tc.fault(h.s); n != 1 {
				t.Fatalf("fault hit %d sessions, want 1", n)
			}
			_, _, err := c.c.Read(t.Context())
			if err == nil || websocket.CloseStatus(err) != -1 {
				t.Fatalf("read after drop: %v, want an abnormal close (1006, no close frame)", err)
			}
			// The approval key survives; the new session holds the app key
			// at once (no OPSP8996) and starts with no registrations.
			c2 := h.dial("/")
			if got := c2.subscribe(key, "2", TrTrade, "005930"); got != opspNotFound {
				t.Fatalf("unsubscribe on the new session: got %s, want %s (registrations gone)", got, opspNotFound)
			}
			st := h.s.Stats().WebSocket
			if st.SessionsDroppedByReason[tc.reason] != 1 || st.InUseRejections != 0 {
				t.Errorf("stats: %v drops, %d OPSP8996; want 1 %s, 0", st.SessionsDroppedByReason, st.InUseRejections, tc.reason)
			}
		})
	}
}

func TestWSDropEvery(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t, WithWSFaults(WSFaults{DropEvery: 20 * time.Millisecond}))
	key := h.approval("K-EVERY")
	for range 3 {
		c := h.dial("/tryitout")
		// The drop may come before the reply: write and read until it does.
		_ = c.c.Write(t.Context(), websocket.MessageText, []byte(subMsg(key, "1", TrTrade, "005930")))
		var err error
		for err == nil {
			_, _, err = c.c.Read(t.Context())
		}
	}
	if n := h.s.Stats().WebSocket.SessionsDroppedByReason[DropFault]; n < 3 {
		t.Errorf("fault drops %d, want >= 3", n)
	}
}

func TestWSStallAndGarbage(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t)
	key := h.approval("K-STALL")
	c := h.dial("/tryitout")
	// A reply proves the server has the session (Accept returns to the
	// client before the server lists it).
	if got := c.subscribe(key, "1", TrBook, "005930"); got != opspSubscribed {
		t.Fatal(got)
	}
	if h.s.SendGarbage(0, "") != 1 {
		t.Fatal("garbage not queued")
	}
	for m := c.read(); m != string(garbageFrame("count")); m = c.read() {
		if m[0] != '0' {
			t.Fatalf("got %q, want book frames, then the garbage frame", m)
		}
	}
	// The session survives garbage.
	if got := c.subscribe(key, "1", TrBook, "000660"); got != opspSubscribed {
		t.Fatal(got)
	}
	c.frame(TrBook)
	if h.s.StallSessions(0) != 1 {
		t.Fatal("no session stalled")
	}
	if s := h.s.Sessions(); len(s) != 1 || !s[0].Stalled {
		t.Errorf("sessions %+v, want one stalled", s)
	}
	c.send(subMsg(key, "1", TrTrade, "005930"))
	h.clock.Advance(time.Minute)
	// A stalled session sends nothing (a short timeout, not a sleep):
	// drain what was in flight, then expect silence. (The library closes
	// the connection when a read's context expires: that ends the test.)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		_, m, err := c.c.Read(ctx)
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("stalled session: %v, want it open and silent", err)
			}
			break
		}
		if strings.Contains(string(m), opspSubscribed) {
			t.Fatalf("stalled session answered %q", m)
		}
	}
}

func TestWSAdminEndpoints(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t)
	post := func(path, body string) int {
		resp, err := http.Post(h.url+path, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/_emulator/ws/faults", "extra-fields=H0STASP0:2,drop-every=1h"); code != 200 {
		t.Fatalf("POST faults: %d", code)
	}
	if f := h.s.WSFaults(); f.ExtraFields[TrBook] != 2 || f.DropEvery != time.Hour {
		t.Errorf("faults %+v", f)
	}
	if code := post("/_emulator/ws/faults", "drop-every=soon"); code != 400 {
		t.Errorf("bad spec: HTTP %d, want 400", code)
	}
	for _, p := range []string{"/_emulator/ws/drop", "/_emulator/ws/restart", "/_emulator/ws/stall", "/_emulator/ws/garbage"} {
		if code := post(p, ""); code != 200 {
			t.Errorf("POST %s: HTTP %d", p, code)
		}
	}
	// A plain GET / is no session: it is answered as before.
	resp, err := http.Get(h.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: HTTP %d, want 404", resp.StatusCode)
	}
}

func TestWSApprovalRules(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t)
	key := h.approval("K-APPR")
	body := `{"grant_type":"client_credentials","appkey":"K-APPR","secretkey":"s"}`
	resp, err := http.Post(h.url+"/oauth2/Approval", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("second Approval within 1s: HTTP %d, want 500 EGW00201", resp.StatusCode)
	}
	bound := h.dial("/tryitout")
	if got := bound.subscribe(key, "1", TrTrade, "005930"); got != opspSubscribed {
		t.Fatal(got)
	}
	h.clock.Advance(DefaultApprovalTTL)
	// The bound session keeps working with its expired key...
	if got := bound.subscribe(key, "1", TrBook, "005930"); got != opspSubscribed {
		t.Errorf("bound session after expiry: got %s, want %s", got, opspSubscribed)
	}
	// ...a new session cannot start with it.
	if got := h.dial("/").subscribe(key, "1", TrTrade, "000660"); got != opspBadApproval {
		t.Errorf("new session with an expired key: got %s, want %s", got, opspBadApproval)
	}
	if st := h.s.Stats().WebSocket; st.ApprovalKeysIssued != 1 || st.ApprovalRejections != 1 {
		t.Errorf("approval stats %d issued %d refused, want 1 1", st.ApprovalKeysIssued, st.ApprovalRejections)
	}
}

func TestWSSpeed(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t, WithSpeed(600))
	key := h.approval("K-SPEED")
	c := h.dial("/tryitout")
	if got := c.subscribe(key, "1", TrTrade, "005930"); got != opspSubscribed {
		t.Fatal(got)
	}
	// 0.5 s of the (fake) wall clock is 5 minutes of market time.
	h.clock.Advance(500 * time.Millisecond)
	at := marketTime.Add(5 * time.Minute)
	ex := sharedMarket().Executions("005930", marketTime, at)
	want := ex[len(ex)-1]
	for {
		recs := c.frame(TrTrade)
		if last := recs[len(recs)-1]; last[13] == itoa(want.CumVolume) {
			break
		}
	}
	q, _ := sharedMarket().QuoteAt("005930", at)
	if out := restOutput(t, h, "inquire-price", "FHKST01010100")["output"]; out["acml_vol"] != itoa(q.Volume) {
		t.Errorf("REST at speed 600 after 0.5s: acml_vol %s, want %d (market at %s)", out["acml_vol"], q.Volume, at.Format("15:04:05"))
	}
}
