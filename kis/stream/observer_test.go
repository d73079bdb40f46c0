package stream

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// callLog is an Observer writing every call as a line.
type callLog struct {
	mu    sync.Mutex
	lines []string
	lag   []time.Duration
	down  chan string
}

func (o *callLog) add(s string) {
	o.mu.Lock()
	o.lines = append(o.lines, s)
	o.mu.Unlock()
}
func (o *callLog) SessionUp(key string) { o.add("up " + key) }
func (o *callLog) SessionDown(key, reason string) {
	o.add("down " + key + " " + reason)
	o.down <- reason
}
func (o *callLog) Registrations(key string, n int)    { o.add("regs " + key) }
func (o *callLog) Frame(tr string, n int)             { o.add("frame " + tr) }
func (o *callLog) ParseError(reason string)           { o.add("parse " + reason) }
func (o *callLog) Reconnect(key, reason string)       { o.add("reconnect " + key + " " + reason) }
func (o *callLog) Gap(code string)                    { o.add("gap " + code) }
func (o *callLog) SubscribeRefused(key, tr, m string) { o.add("refused " + key + " " + m) }
func (o *callLog) Lag(tr string, d time.Duration) {
	o.mu.Lock()
	o.lag = append(o.lag, d)
	o.mu.Unlock()
}

func (o *callLog) has(s string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range o.lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestObserverAndLogs: every hook hears its event under the key id, lag
// is measured on the client's clock, and neither the observer nor the log
// ever sees the app key, its secret or the approval key.
func TestObserverAndLogs(t *testing.T) {
	fx := loadFixtures(t)
	f := newFakeKIS(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	obs := &callLog{down: make(chan string, 8)}
	exec := time.Date(2024, 10, 25, 10, 2, 1, 0, time.FixedZone("KST", 9*3600))
	clock := func() time.Time { return exec.Add(1500 * time.Millisecond) }
	h, events := eventSink(16)
	c := startClient(t, f, 1, Config{Handler: h}, WithObserver(obs), WithLogger(log), WithClock(clock))
	if err := c.Subscribe(t.Context(), "005930", KindTrade); err != nil {
		t.Fatal(err)
	}
	conn := f.nextConn(t)
	conn.awaitSubs(t, 1)
	conn.send(t, "0|H0STCNT0|001|x")
	conn.send(t, widen(t, fx.Trade1, tradeWidth, 3))
	recv(t, events, "the trade")
	conn.drop()
	if r := recv(t, obs.down, "session down"); r != reasonDropped {
		t.Errorf("down reason %q", r)
	}
	conn = f.nextConn(t)
	conn.awaitSubs(t, 1)
	if ev := recv(t, events, "the gap"); ev.Kind != EventGap || !ev.Gap.To.Equal(clock()) {
		t.Errorf("gap event %+v", ev)
	}
	for _, want := range []string{"up key1", "regs key1", "frame H0STCNT0", "parse " + ReasonWidth,
		"down key1 dropped", "reconnect key1 dropped", "gap 005930"} {
		if !obs.has(want) {
			t.Errorf("observer never heard %q; got %v", want, obs.lines)
		}
	}
	obs.mu.Lock()
	if len(obs.lag) != 1 || obs.lag[0] != 1500*time.Millisecond {
		t.Errorf("lag %v, want [1.5s]", obs.lag)
	}
	all := strings.Join(obs.lines, "\n")
	obs.mu.Unlock()
	logMu.Lock()
	all += logs.String()
	logMu.Unlock()
	for _, secret := range []string{"app1", "secret", "approval-1"} {
		if strings.Contains(all, secret) {
			t.Errorf("observer or log shows %q:\n%s", secret, all)
		}
	}
	if !strings.Contains(all, "wider than the known layout") {
		t.Error("wide records not logged")
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
