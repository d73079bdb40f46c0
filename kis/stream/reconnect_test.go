package stream

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReconnectRestoresEverything drops the session abruptly twice: each
// time every registration comes back on the new session, one gap per code
// says from its last frame to the restore, and Resync runs per code.
func TestReconnectRestoresEverything(t *testing.T) {
	fx := loadFixtures(t)
	f := newFakeKIS(t)
	h, events := eventSink(256)
	var mu sync.Mutex
	resynced := map[string]int{}
	resync := make(chan string, 64)
	obs := newObs()
	c := startClient(t, f, 1, Config{Handler: h, Resync: func(_ context.Context, code string) {
		mu.Lock()
		resynced[code]++
		mu.Unlock()
		resync <- code
	}}, WithObserver(obs))
	codes := []string{"005930", "000660", "035420"}
	for _, code := range codes {
		if err := c.Subscribe(t.Context(), code); err != nil {
			t.Fatal(err)
		}
	}
	conn := f.nextConn(t)
	conn.awaitSubs(t, 6)
	conn.send(t, fx.Trade1) // 005930 has a last frame; the others none
	first := recv(t, events, "the trade")
	for drop := 1; drop <= 2; drop++ {
		conn.drop()
		if r := recv(t, obs.reconnects, "a reconnect"); r != "key1:"+reasonDropped {
			t.Errorf("drop %d: reconnect %q, want key1:dropped", drop, r)
		}
		conn = f.nextConn(t)
		subs := conn.awaitSubs(t, 6)
		seen := map[reg]bool{}
		for _, s := range subs {
			seen[reg{s.Body.Input.TrKey, s.Body.Input.TrID}] = true
		}
		if len(seen) != 6 || conn.registrations() != 6 {
			t.Fatalf("drop %d: restored %d distinct, server holds %d, want 6", drop, len(seen), conn.registrations())
		}
		gaps := map[string]Event{}
		for range codes {
			ev := recv(t, events, "a gap")
			if ev.Kind != EventGap {
				t.Fatalf("drop %d: event kind %d, want a gap", drop, ev.Kind)
			}
			if _, dup := gaps[ev.Gap.Code]; dup {
				t.Errorf("drop %d: two gaps for %s", drop, ev.Gap.Code)
			}
			gaps[ev.Gap.Code] = ev
		}
		for _, code := range codes {
			g, ok := gaps[code]
			if !ok {
				t.Fatalf("drop %d: no gap for %s", drop, code)
			}
			if g.Gap.Reason != reasonDropped || g.Gap.To.Before(g.Gap.From) {
				t.Errorf("drop %d: gap %+v", drop, g.Gap)
			}
		}
		if drop == 1 && !gaps["005930"].Gap.From.Equal(first.Received) {
			t.Errorf("gap from %s, want the last frame's receipt %s", gaps["005930"].Gap.From, first.Received)
		}
		for range codes {
			recv(t, resync, "a resync")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, code := range codes {
		if resynced[code] != 2 {
			t.Errorf("%s resynced %d times, want 2", code, resynced[code])
		}
	}
	if st := c.Stats(); st.Gaps != 6 || st.Reconnects != 2 || st.Keys[0].KeysIssued != 1 {
		t.Errorf("stats %+v, want 6 gaps, 2 reconnects, 1 approval key", st)
	}
}

// TestWatchdogReconnectsSilentSession: a session that acknowledges and
// then says nothing is reconnected after the watchdog time.
func TestWatchdogReconnectsSilentSession(t *testing.T) {
	f := newFakeKIS(t)
	obs := newObs()
	c := startClient(t, f, 1, Config{}, WithObserver(obs), WithWatchdog(20*time.Millisecond))
	if err := c.Subscribe(t.Context(), "005930", KindTrade); err != nil {
		t.Fatal(err)
	}
	f.nextConn(t).awaitSubs(t, 1)
	if r := recv(t, obs.reconnects, "the watchdog"); r != "key1:"+reasonWatchdog {
		t.Errorf("reconnect %q, want key1:watchdog", r)
	}
	f.nextConn(t).awaitSubs(t, 1) // and it came back
}

// TestPingPongFeedsWatchdog: PINGPONGs alone keep a session alive.
func TestPingPongFeedsWatchdog(t *testing.T) {
	fx := loadFixtures(t)
	f := newFakeKIS(t)
	obs := newObs()
	c := startClient(t, f, 1, Config{}, WithObserver(obs), WithWatchdog(200*time.Millisecond))
	if err := c.Subscribe(t.Context(), "005930", KindTrade); err != nil {
		t.Fatal(err)
	}
	conn := f.nextConn(t)
	conn.awaitSubs(t, 1)
	// Each echo proves the client read the PINGPONG; the next one goes
	// out at once, so the session is never silent for long.
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		conn.send(t, string(fx.PingPong))
		recv(t, conn.echoes, "an echo")
	}
	select {
	case r := <-obs.reconnects:
		t.Errorf("reconnected (%s) while PINGPONGs flowed", r)
	default:
	}
}

// TestSpreadOverLiveSessions: 100 codes over 3 keys, one session each,
// none above 41 on the server's count; three times every session drops at
// once, and each time all 100 come back with one gap per code.
func TestSpreadOverLiveSessions(t *testing.T) {
	f := newFakeKIS(t)
	h, events := eventSink(512)
	c := startClient(t, f, 3, Config{Handler: h})
	for i := range 100 {
		if err := c.Subscribe(t.Context(), fmt.Sprintf("%06d", i), KindTrade); err != nil {
			t.Fatal(err)
		}
	}
	perKey := map[string]int{} // app key → registrations the client placed there
	c.mu.Lock()
	for _, k := range c.keys {
		perKey["app"+strings.TrimPrefix(k.id, "key")] = len(k.regs)
	}
	c.mu.Unlock()
	for round := range 4 {
		var conns []*fakeConn
		total := 0
		for range 3 {
			conn := f.nextConn(t)
			first := recv(t, conn.msgs, "a subscribe")
			app, _, _ := strings.Cut(first.Header.ApprovalKey, "-approval-")
			conn.awaitSubs(t, perKey[app]-1)
			if got := conn.registrations(); got != perKey[app] || got > MaxRegistrations {
				t.Errorf("round %d, %s: server holds %d, want %d (≤ 41)", round, app, got, perKey[app])
			}
			total += conn.registrations()
			conns = append(conns, conn)
		}
		if total != 100 {
			t.Fatalf("round %d: %d registrations, want 100", round, total)
		}
		if round > 0 {
			gaps := map[string]int{}
			for range 100 {
				ev := recv(t, events, "a gap")
				if ev.Kind == EventGap {
					gaps[ev.Gap.Code]++
				}
			}
			if len(gaps) != 100 {
				t.Errorf("round %d: gaps for %d codes, want 100", round, len(gaps))
			}
		}
		if round < 3 {
			for _, conn := range conns {
				conn.drop()
			}
		}
	}
	if st := c.Stats(); st.Gaps != 300 {
		t.Errorf("gaps %d, want 300 (one per code per drop)", st.Gaps)
	}
}
