package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

func TestSubscribeMessageMatchesFixture(t *testing.T) {
	fx := loadFixtures(t)
	tests := []struct {
		name string
		sub  bool
		want json.RawMessage
	}{
		{"subscribe", true, fx.SubscribeRequest},
		{"unsubscribe", false, fx.UnsubscribeRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := json.Compact(&want, tt.want); err != nil {
				t.Fatal(err)
			}
			got := subscribeMessage("3f2b1c9e-7a4d-4e21-9b0c-5d6e7f8a9b0c", op{reg{"005930", TrTradeKRX}, tt.sub})
			if string(got) != want.String() {
				t.Errorf("got  %s\nwant %s", got, want.String())
			}
		})
	}
}

func newOffline(t *testing.T, keys, per int) *Client {
	t.Helper()
	cfg := Config{MaxPerSession: per, WSURL: "ws://127.0.0.1:1/tryitout", RESTBaseURL: "http://127.0.0.1:1"}
	for i := range keys {
		cfg.Keys = append(cfg.Keys, Credentials{AppKey: fmt.Sprintf("app%d", i+1), AppSecret: "s"})
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSubscriptionLimitSpreadsOverKeys(t *testing.T) {
	ctx := t.Context()
	c := newOffline(t, 3, 0) // default cap: 41
	// 61 codes × 2 kinds = 122 registrations: 41 + 41 + 40.
	for i := range 61 {
		if err := c.Subscribe(ctx, fmt.Sprintf("%06d", 100000+i)); err != nil {
			t.Fatalf("code %d: %v", i, err)
		}
	}
	st := c.Stats()
	total := 0
	for _, k := range st.Keys {
		if k.Registrations > MaxRegistrations {
			t.Errorf("%s holds %d, want ≤ %d", k.ID, k.Registrations, MaxRegistrations)
		}
		total += k.Registrations
	}
	if total != 122 {
		t.Errorf("total %d registrations, want 122", total)
	}
	// Both kinds of a code share a key when it has room.
	for _, k := range c.keys {
		for r := range k.regs {
			other := reg{r.code, TrBookKRX}
			if r.tr == TrBookKRX {
				other.tr = TrTradeKRX
			}
			if h := c.holderLocked(other); h != k && h != nil && len(k.regs) < MaxRegistrations {
				t.Errorf("code %s split over %s and %s", r.code, k.id, h.id)
			}
		}
	}
	// One more trade fits (123), then nothing.
	if err := c.Subscribe(ctx, "200000", KindTrade); err != nil {
		t.Fatalf("123rd: %v", err)
	}
	err := c.Subscribe(ctx, "200001", KindTrade, KindBook)
	var le *SubscriptionLimitError
	if !errors.Is(err, ErrSubscriptionLimit) || !errors.As(err, &le) {
		t.Fatalf("err = %v, want ErrSubscriptionLimit", err)
	}
	if le.PerKey != 41 || le.Keys != 3 || le.InUse != 123 || le.Want != 2 {
		t.Errorf("limit error %+v", le)
	}
	if !strings.Contains(err.Error(), "41 per app key") || !strings.Contains(err.Error(), "123 registrations in use") {
		t.Errorf("message %q does not name the cap and the use", err)
	}
	// All or nothing: the refused call registered neither kind.
	if c.Stats().Keys[0].Registrations+c.Stats().Keys[1].Registrations+c.Stats().Keys[2].Registrations != 123 {
		t.Error("a refused Subscribe registered something")
	}
	// Room comes back after an Unsubscribe; re-subscribing is a no-op.
	if err := c.Unsubscribe(ctx, "100000"); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "200001", KindTrade, KindBook); err != nil {
		t.Errorf("after unsubscribe: %v", err)
	}
	if err := c.Subscribe(ctx, "200001"); err != nil {
		t.Errorf("re-subscribe: %v", err)
	}
}

func TestSubscribeChecksInput(t *testing.T) {
	c := newOffline(t, 1, 0)
	if err := c.Subscribe(t.Context(), "5930"); !errors.Is(err, kisfeed.ErrInvalid) {
		t.Errorf("short code: %v, want ErrInvalid", err)
	}
	if err := c.Subscribe(t.Context(), "005930", Kind(9)); err == nil {
		t.Error("bad kind accepted")
	}
}

func TestNewChecksConfig(t *testing.T) {
	ok := Credentials{AppKey: "a", AppSecret: "s"}
	tests := []struct {
		name string
		cfg  Config
		opts []Option
		want string
	}{
		{"no keys", Config{}, nil, "keys"},
		{"no secret", Config{Keys: []Credentials{{AppKey: "a"}}}, nil, "keys[0]"},
		{"key twice", Config{Keys: []Credentials{ok, ok}}, nil, "given twice"},
		{"http ws url", Config{Keys: []Credentials{ok}, WSURL: "http://x"}, nil, "ws url"},
		{"bad trade TR", Config{Keys: []Credentials{ok}, TRs: TRs{Trade: TrBookKRX, Book: TrBookKRX}}, nil, "trade TR"},
		{"cap over 41", Config{Keys: []Credentials{ok}, MaxPerSession: 42}, nil, "max per session"},
		{"bad backoff", Config{Keys: []Credentials{ok}}, []Option{WithBackoff(Backoff{Base: 2, Max: 1})}, "backoff"},
		{"bad pace", Config{Keys: []Credentials{ok}}, []Option{WithSubscribePace(0, 1)}, "subscribe pace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "s}") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	b := DefaultBackoff
	wantCeil := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for n, w := range wantCeil {
		if got := b.Ceiling(n); got != w*time.Second {
			t.Errorf("ceiling(%d) = %s, want %s", n, got, w*time.Second)
		}
	}
	for _, r := range []float64{0, 0.5, 0.999999} {
		b.Rand = func() float64 { return r }
		for n := range 12 {
			d := b.Delay(n)
			if d < 0 || d > b.Ceiling(n) || d > time.Minute {
				t.Errorf("rand %v: delay(%d) = %s outside [0, %s]", r, n, d, b.Ceiling(n))
			}
			if want := time.Duration(r * float64(b.Ceiling(n))); d != want {
				t.Errorf("rand %v: delay(%d) = %s, want %s (full jitter)", r, n, d, want)
			}
		}
	}
	if b.Ceiling(1000) != time.Minute {
		t.Error("ceiling overflows past the max")
	}
}

func TestSessionDeliversEvents(t *testing.T) {
	fx := loadFixtures(t)
	f := newFakeKIS(t)
	h, events := eventSink(16)
	c := startClient(t, f, 1, Config{Handler: h})
	if err := c.Subscribe(t.Context(), "005930"); err != nil {
		t.Fatal(err)
	}
	conn := f.nextConn(t)
	subs := conn.awaitSubs(t, 2)
	for _, s := range subs {
		if s.Header.ApprovalKey != "app1-approval-1" || s.Header.TrType != "1" || s.Body.Input.TrKey != "005930" {
			t.Errorf("subscribe %+v", s)
		}
	}
	if got := []string{subs[0].Body.Input.TrID, subs[1].Body.Input.TrID}; got[0] == got[1] {
		t.Errorf("TRs %v, want H0STCNT0 and H0STASP0", got)
	}
	conn.send(t, fx.Trade1)
	conn.send(t, fx.Trade2)
	conn.send(t, fx.Book)
	want := []EventKind{EventTrade, EventTrade, EventTrade, EventBook}
	for i, k := range want {
		ev := recv(t, events, "an event")
		if ev.Kind != k || ev.Key != "key1" {
			t.Fatalf("event %d: kind %d key %q, want %d key1", i, ev.Kind, ev.Key, k)
		}
		if k == EventTrade && (ev.Trade.Code != "005930" || ev.Trade.CumVolume < 9365880) {
			t.Errorf("trade %+v", ev.Trade)
		}
		if k == EventBook && ev.Book.Asks[0].Price != 56900 {
			t.Errorf("book %+v", ev.Book)
		}
	}
	// A garbage frame is counted and the session stays: the next frame arrives.
	conn.send(t, "0|H0STCNT0|001|garbage")
	conn.send(t, fx.Trade1)
	if ev := recv(t, events, "an event after garbage"); ev.Kind != EventTrade {
		t.Errorf("kind %d after garbage", ev.Kind)
	}
	st := c.Stats()
	if st.Frames != 4 || st.Records != 5 || st.ParseErrors != 1 || st.Reconnects != 0 {
		t.Errorf("stats %+v", st)
	}
	if k := st.Keys[0]; !k.Connected || k.Registrations != 2 || k.Acknowledged != 2 || k.KeysIssued != 1 {
		t.Errorf("key stats %+v", k)
	}
}

func TestPingPongEchoed(t *testing.T) {
	fx := loadFixtures(t)
	f := newFakeKIS(t)
	cl := startClient(t, f, 1, Config{})
	if err := cl.Subscribe(t.Context(), "005930", KindTrade); err != nil {
		t.Fatal(err)
	}
	c := f.nextConn(t)
	c.awaitSubs(t, 1)
	ping := string(fx.PingPong)
	c.send(t, ping)
	if got := recv(t, c.echoes, "the PINGPONG echo"); got != ping {
		t.Errorf("echo %q, want verbatim %q", got, ping)
	}
	// Protocol pings are answered too (the client is reading).
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := c.ws.Ping(ctx); err != nil {
		t.Errorf("protocol ping: %v", err)
	}
}
