package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kisfeed/kisfeed/kis/stream"
)

// TestFanOut: every consumer of a code gets each of its events, in
// publish order with increasing ids; consumers of other codes or kinds
// get none of them.
func TestFanOut(t *testing.T) {
	t.Parallel()
	h, _ := testHub(t, Config{})
	var same []*Consumer
	for range 200 {
		same = append(same, subscribe(t, h, Request{Codes: codes("005930"), Transport: "sse"}))
	}
	other := subscribe(t, h, Request{Codes: codes("000660")})
	booksOnly := subscribe(t, h, Request{Codes: codes("005930"), Kinds: Books})
	for i := range 10 {
		h.Publish(trade("005930", int64(70000+i), t0))
	}
	want := make([]string, 10)
	for i := range want {
		want[i] = fmt.Sprintf("trade:e1-%d", i+1)
	}
	for i, c := range same {
		if got := summary(take(t, c)); !slices.Equal(got, want) {
			t.Fatalf("consumer %d got %v, want %v", i, got, want)
		}
	}
	for name, c := range map[string]*Consumer{"other code": other, "books only": booksOnly} {
		if got := take(t, c); len(got) != 0 {
			t.Errorf("%s got %v, want nothing", name, summary(got))
		}
	}
	if s := h.Stats(); s.Consumers != 202 || s.Codes != 2 || s.Published != 10 || s.Delivered != 2000 {
		t.Errorf("stats %+v: want 202 consumers, 2 codes, 10 published, 2000 delivered", s)
	}
}

// TestQueueOrder: trades queue in order, a book replaces its code's
// pending book (moving to the end, so ids stay increasing), gaps and
// other codes' books are kept.
func TestQueueOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		events    []Event
		want      []string
		coalesced uint64
	}{
		{"trades in order", []Event{trade("005930", 1, t0), trade("005930", 2, t0), trade("005930", 3, t0)},
			[]string{"trade:e1-1", "trade:e1-2", "trade:e1-3"}, 0},
		{"books coalesce, latest wins", []Event{book("005930", 1, t0), book("005930", 2, t0), book("005930", 3, t0)},
			[]string{"book:e1-3"}, 2},
		{"a newer book moves behind trades", []Event{book("005930", 1, t0), trade("005930", 1, t0), book("005930", 2, t0)},
			[]string{"trade:e1-2", "book:e1-3"}, 1},
		{"books of two codes both kept", []Event{book("005930", 1, t0), book("000660", 1, t0), book("005930", 2, t0)},
			[]string{"book:e1-2", "book:e1-3"}, 1},
		{"gaps never coalesce", []Event{gap("005930", t0, t0), gap("005930", t0, t0)},
			[]string{"gap:e1-1", "gap:e1-2"}, 0},
		{"forwarded ids are kept", []Event{withID(trade("005930", 1, t0), "r7-40"), withID(trade("005930", 2, t0), "r7-41")},
			[]string{"trade:r7-40", "trade:r7-41"}, 0},
		{"a malformed forwarded id is replaced", []Event{withID(trade("005930", 1, t0), "nodash")},
			[]string{"trade:e1-1"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := testHub(t, Config{})
			c := subscribe(t, h, Request{Codes: codes("005930", "000660")})
			for _, ev := range tt.events {
				h.Publish(ev)
			}
			if got := summary(take(t, c)); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if got := h.Stats().Coalesced; got != tt.coalesced {
				t.Errorf("coalesced %d, want %d", got, tt.coalesced)
			}
		})
	}
}

func withID(ev Event, id string) Event { ev.ID = id; return ev }

// TestEventJSON: the data of each event type has the contract's fields:
// type, id, received_at (wall clock, ms) and the value's snake_case
// fields, times on KST.
func TestEventJSON(t *testing.T) {
	t.Parallel()
	h, clk := testHub(t, Config{})
	clk.Set(t0.Add(1234 * time.Millisecond))
	c := subscribe(t, h, Request{Codes: codes("005930")})
	h.Publish(trade("005930", 71000, t0))
	h.Publish(book("005930", 71100, t0))
	h.Publish(gap("005930", t0, t0.Add(time.Second)))
	msgs := take(t, c)
	want := []map[string]any{
		{"type": "trade", "id": "e1-1", "received_at": "2026-11-27T10:00:01.234+09:00", "code": "005930",
			"time": "2026-11-27T10:00:00+09:00", "price": 71000.0, "side": "buy"},
		{"type": "book", "id": "e1-2", "received_at": "2026-11-27T10:00:01.234+09:00", "code": "005930",
			"time": "2026-11-27T10:00:00+09:00", "total_ask_qty": 0.0},
		{"type": "gap", "id": "e1-3", "code": "005930", "from": "2026-11-27T10:00:00+09:00",
			"to": "2026-11-27T10:00:01+09:00", "reason": "dropped"},
	}
	for i, m := range msgs {
		var got map[string]any
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatalf("event %d: %v in %s", i, err, m.Data)
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("event %d %s = %v, want %v (%s)", i, k, got[k], v, m.Data)
			}
		}
		if !strings.HasPrefix(string(m.Data), `{"type":"`+m.Type+`","id":"`+m.ID+`"`) {
			t.Errorf("event %d does not start with type and id: %s", i, m.Data)
		}
	}
	var b struct{ Asks, Bids []map[string]int64 }
	_ = json.Unmarshal(msgs[1].Data, &b)
	if len(b.Asks) != 10 || len(b.Bids) != 10 || b.Asks[0]["price"] != 71100 || b.Asks[0]["quantity"] != 10 {
		t.Errorf("book levels %+v: want 10 asks and bids, best ask 71100 x 10", b)
	}
}

// TestSlowConsumer: a consumer that does not read is disconnected with
// slow_consumer when its queue overflows (or its oldest event waited
// past MaxLag); the others keep everything and Publish never waits.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		publish func(h *Hub, step func())
		detail  string
	}{
		{"queue overflow", Config{QueueSize: 8}, func(h *Hub, step func()) {
			for i := range 20 {
				h.Publish(trade("005930", int64(i), t0))
				step()
			}
		}, "queue of 8 events is full"},
		{"books alone never overflow", Config{QueueSize: 2}, func(h *Hub, step func()) {
			for i := range 20 {
				h.Publish(book("005930", int64(i), t0))
				step()
			}
		}, ""},
		{"max lag", Config{QueueSize: 1000, MaxLag: time.Second}, nil, "waited 1.5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obs := newCountObserver()
			tt.cfg.Observer = obs
			h, clk := testHub(t, tt.cfg)
			slow := subscribe(t, h, Request{Codes: codes("005930"), Transport: "sse"})
			fast := subscribe(t, h, Request{Codes: codes("005930"), Transport: "sse"})
			var got []*Message
			step := func() { got = append(got, take(t, fast)...) }
			publish := tt.publish
			if publish == nil {
				publish = func(h *Hub, step func()) {
					h.Publish(trade("005930", 1, t0))
					step()
					clk.Advance(1500 * time.Millisecond)
					h.Publish(trade("005930", 2, t0))
					step()
				}
			}
			publish(h, step)
			_, err := slow.Take(nil)
			d := disconnectOf(err)
			if tt.detail == "" {
				if err != nil {
					t.Fatalf("Take: %v, want no disconnect", err)
				}
				return
			}
			if d == nil || d.Reason != ReasonSlowConsumer || !strings.Contains(d.Detail, tt.detail) {
				t.Fatalf("slow consumer's Take: %v, want slow_consumer naming %q", err, tt.detail)
			}
			if n := int(h.Stats().Published); len(got) != n {
				t.Errorf("fast consumer got %d events, want all %d", len(got), n)
			}
			if obs.disconnectsOf(ReasonSlowConsumer) != 1 || h.Stats().Slow != 1 {
				t.Errorf("slow disconnects: observer %d, stats %d; want 1", obs.disconnectsOf(ReasonSlowConsumer), h.Stats().Slow)
			}
		})
	}
}

// TestResume: a Last-Event-ID of the current epoch whose later events
// are all in the rings replays them (merged across codes, by id);
// evicted events or another epoch give one gap per code, from the last
// event's time known for it to now.
func TestResume(t *testing.T) {
	t.Parallel()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		last ID
		ring int
		want []string
	}{
		{"replay across codes", ID{"e1", 2}, 8, []string{"trade:e1-3", "trade:e1-4", "trade:e1-5", "trade:e1-6"}},
		{"nothing missed", ID{"e1", 6}, 8, nil},
		// Ring of 2: 005930 keeps 3 and 5 (all after 1), 000660 lost 2.
		{"evicted: a gap for that code, replay for the other", ID{"e1", 1}, 2, []string{
			`gap:000660:{"type":"gap","code":"000660","from":"0001-01-01T00:00:00Z","to":"2026-11-27T10:00:10+09:00","reason":"ring_overflow"}`,
			"trade:e1-3", "trade:e1-5"}},
		// After SetEpoch the rings still hold e1's events: "from" is the
		// time of each code's last event at or before the id.
		{"new epoch: from is the code's last event seen", ID{"e1", 3}, -8, []string{
			`gap:000660:{"type":"gap","code":"000660","from":"2026-11-27T10:00:02+09:00","to":"2026-11-27T10:00:10+09:00","reason":"epoch_changed"}`,
			`gap:005930:{"type":"gap","code":"005930","from":"2026-11-27T10:00:03+09:00","to":"2026-11-27T10:00:10+09:00","reason":"epoch_changed"}`}},
		{"other epoch: gaps", ID{"e0", 99}, 8, []string{
			`gap:000660:{"type":"gap","code":"000660","from":"0001-01-01T00:00:00Z","to":"2026-11-27T10:00:10+09:00","reason":"epoch_changed"}`,
			`gap:005930:{"type":"gap","code":"005930","from":"0001-01-01T00:00:00Z","to":"2026-11-27T10:00:10+09:00","reason":"epoch_changed"}`}},
		{"replay larger than the queue: gaps", ID{"e1", 0}, 8, []string{
			`gap:000660:{"type":"gap","code":"000660","from":"0001-01-01T00:00:00Z","to":"2026-11-27T10:00:10+09:00","reason":"ring_overflow"}`,
			`gap:005930:{"type":"gap","code":"005930","from":"0001-01-01T00:00:00Z","to":"2026-11-27T10:00:10+09:00","reason":"ring_overflow"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, clk := testHub(t, Config{RingSize: abs(tt.ring), QueueSize: 5})
			// ids: 1 005930@1, 2 000660@2, 3 005930@3, 4 000660@4, 5 005930@5, 6 000660@6
			for i := 1; i <= 6; i++ {
				code := "005930"
				if i%2 == 0 {
					code = "000660"
				}
				h.Publish(trade(code, int64(i), at(i)))
			}
			clk.Set(at(10))
			if tt.ring < 0 { // a negative ring size asks for a new epoch
				if err := h.SetEpoch("e2"); err != nil {
					t.Fatal(err)
				}
			}
			last := tt.last
			c := subscribe(t, h, Request{Codes: codes("005930", "000660"), LastEventID: &last})
			if got := summary(take(t, c)); !cmp.Equal(got, tt.want, cmpEmpty) {
				t.Errorf("got %v\nwant %v", got, tt.want)
			}
			h.Publish(trade("005930", 7, at(7)))
			if got := summary(take(t, c)); len(got) != 1 || !strings.HasPrefix(got[0], "trade:e") || !strings.HasSuffix(got[0], "-7") && !strings.HasSuffix(got[0], "-1") {
				t.Errorf("then live: got %v, want the next trade", got)
			}
		})
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })

// TestDemandRefcount: the first consumer of a (code, kind) acquires it,
// later ones share it, the last one leaving releases it; consumers that
// subscribe while the first Acquire is in flight wait for it.
func TestDemandRefcount(t *testing.T) {
	t.Parallel()
	d := newFakeDemand()
	h, _ := testHub(t, Config{Demand: d})
	a := subscribe(t, h, Request{Codes: codes("005930"), Kinds: Trades})
	b := subscribe(t, h, Request{Codes: codes("005930")})
	check := func(when string, trades, books, acquires, releases int) {
		t.Helper()
		ga, gr := d.counts()
		if d.holds("005930", stream.KindTrade) != trades || d.holds("005930", stream.KindBook) != books || ga != acquires || gr != releases {
			t.Errorf("%s: holds trade %d book %d, %d acquires %d releases; want %d %d %d %d", when,
				d.holds("005930", stream.KindTrade), d.holds("005930", stream.KindBook), ga, gr, trades, books, acquires, releases)
		}
	}
	check("two consumers", 1, 1, 2, 0)
	a.Close()
	check("first left", 1, 1, 2, 0)
	b.Close()
	check("last left", 0, 0, 2, 2)
	b.Close() // idempotent
	check("closed twice", 0, 0, 2, 2)

	// Concurrent subscribers share one in-flight Acquire.
	d.gate = make(chan struct{})
	var wg sync.WaitGroup
	cs := make([]*Consumer, 10)
	for i := range cs {
		wg.Go(func() { cs[i] = subscribe(t, h, Request{Codes: codes("000660"), Kinds: Books}) })
	}
	close(d.gate)
	wg.Wait()
	if n := d.holds("000660", stream.KindBook); n != 1 {
		t.Errorf("10 concurrent subscribers: %d registrations, want 1", n)
	}
	for _, c := range cs {
		c.Close()
	}
	if n := d.holds("000660", stream.KindBook); n != 0 {
		t.Errorf("after all left: %d registrations, want 0", n)
	}
}

// TestRefusals: a code refused by the subscription limit, the key's
// quota or MaxCodes gets an error event naming why; the consumer keeps
// its other codes, and a refused code's quota unit is given back.
func TestRefusals(t *testing.T) {
	t.Parallel()
	limit := &stream.SubscriptionLimitError{Keys: 2, PerKey: 41, InUse: 82, Want: 1}
	tests := []struct {
		name     string
		cfg      Config
		refuse   string // the code the demand refuses
		quota    int
		codes    []string
		reason   string
		detail   []string
		quotaUse int
	}{
		{"subscription limit", Config{}, "000660", 0, []string{"005930", "000660"}, ReasonSubscriptionLimit,
			[]string{"82 in use of 82", "41 per app key × 2 app keys", "000660"}, 0},
		{"quota", Config{}, "", 1, []string{"005930", "000660"}, ReasonQuota, []string{"limit 1"}, 1},
		{"refused code gives its quota back", Config{}, "000660", 5, []string{"005930", "000660"}, ReasonSubscriptionLimit, nil, 1},
		{"too many codes", Config{MaxCodes: 1}, "", 0, []string{"005930", "000660"}, ReasonTooManyCodes, []string{"at most 1"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDemand()
			d.refuse = func(code string, _ stream.Kind) error {
				if code == tt.refuse {
					return fmt.Errorf("live: %w", limit)
				}
				return nil
			}
			tt.cfg.Demand = d
			h, _ := testHub(t, tt.cfg)
			req := Request{Codes: codes(tt.codes...)}
			q := &fakeQuota{limit: tt.quota}
			if tt.quota > 0 {
				req.Quota = q
			}
			c := subscribe(t, h, req)
			msgs := take(t, c)
			if len(msgs) != 1 || msgs[0].Type != TypeError {
				t.Fatalf("got %v, want one error event", summary(msgs))
			}
			var e errorData
			_ = json.Unmarshal(msgs[0].Data, &e)
			if e.Reason != tt.reason || e.Code != "000660" {
				t.Errorf("error event %s: want reason %s for 000660", msgs[0].Data, tt.reason)
			}
			for _, s := range tt.detail {
				if !strings.Contains(e.Detail, s) {
					t.Errorf("detail %q lacks %q", e.Detail, s)
				}
			}
			if tt.quota > 0 && q.used() != tt.quotaUse {
				t.Errorf("quota in use %d, want %d", q.used(), tt.quotaUse)
			}
			h.Publish(trade("005930", 1, t0))
			h.Publish(trade("000660", 1, t0))
			if got := summary(take(t, c)); !slices.Equal(got, []string{"trade:e1-1"}) {
				t.Errorf("then got %v, want only 005930's trade", got)
			}
			c.Close()
			if q.used() != 0 {
				t.Errorf("after Close quota in use %d, want 0", q.used())
			}
		})
	}
}

// TestFlipStorm: 10,000 subscribe/unsubscribe flips from one consumer
// reach Demand as a small bounded number of calls: changes beyond the
// consumer's rate are refused (rate_limited) and never forwarded.
func TestFlipStorm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		step    time.Duration // the clock's advance per flip
		maxCall int           // bound on Acquire + release calls
	}{
		// burst 100 changes: at most 50 subscribes and 50 unsubscribes.
		{"all at once", 0, 100},
		// 10 s at 20 changes/s: burst 100 + 200.
		{"over ten seconds", time.Millisecond, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newFakeDemand()
			obs := newCountObserver()
			h, clk := testHub(t, Config{Demand: d, Observer: obs, QueueSize: 1 << 20})
			c := subscribe(t, h, Request{Transport: "ws"})
			code := codes("005930")
			for i := range 10_000 {
				if i%2 == 0 {
					c.Subscribe(context.Background(), code, Trades)
				} else {
					c.Unsubscribe(code)
				}
				clk.Advance(tt.step)
			}
			a, r := d.counts()
			t.Logf("10,000 flips: Demand saw %d acquires, %d releases", a, r)
			if a+r > tt.maxCall || a == 0 {
				t.Errorf("Demand saw %d acquires and %d releases, want between 1 and %d calls", a, r, tt.maxCall)
			}
			if obs.refusals[ReasonRateLimited] < 9_000 {
				t.Errorf("%d rate_limited refusals, want most of 10,000", obs.refusals[ReasonRateLimited])
			}
			msgs := take(t, c)
			var e errorData
			for _, m := range msgs {
				if m.reason == ReasonRateLimited {
					_ = json.Unmarshal(m.Data, &e)
					break
				}
			}
			if !strings.Contains(e.Detail, "20 codes per second") {
				t.Errorf("rate_limited detail %q does not name the rate", e.Detail)
			}
		})
	}
}

// TestClose: closing the hub disconnects every consumer with reason
// shutdown and gives all demand back; Subscribe then fails.
func TestClose(t *testing.T) {
	t.Parallel()
	d := newFakeDemand()
	h, _ := testHub(t, Config{Demand: d})
	c := subscribe(t, h, Request{Codes: codes("005930", "000660")})
	h.Close()
	if d := disconnectOf(func() error { _, err := c.Take(nil); return err }()); d == nil || d.Reason != ReasonShutdown {
		t.Errorf("Take after Close: %v, want shutdown", d)
	}
	if a, r := d.counts(); a != 4 || r != 4 {
		t.Errorf("%d acquires, %d releases; want 4 and 4", a, r)
	}
	if _, err := h.Subscribe(context.Background(), Request{}); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
}

// TestParseID: ids round-trip; malformed ones are refused.
func TestParseID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want ID
		ok   bool
	}{
		{"e1-5", ID{"e1", 5}, true},
		{"1764520000000-42", ID{"1764520000000", 42}, true},
		{"r:7-0", ID{"r:7", 0}, true},
		{"5", ID{}, false},
		{"-5", ID{}, false},
		{"e1-x", ID{}, false},
		{"e 1-5", ID{}, false},
		{"e1--5", ID{}, false},
	} {
		got, err := ParseID(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseID(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestCloseDuringAcquire: Close does not wait for a registration in
// flight (it cancels it), and the consumer waiting on it ends.
func TestCloseDuringAcquire(t *testing.T) {
	t.Parallel()
	d := newFakeDemand()
	d.gate = make(chan struct{}) // never opened: Acquire waits for its context
	started := make(chan struct{})
	h, _ := testHub(t, Config{Demand: d, Observer: &connectObserver{countObserver: newCountObserver(), connected: started}})
	done := make(chan *Consumer)
	go func() {
		c, _ := h.Subscribe(context.Background(), Request{Codes: codes("005930")})
		done <- c
	}()
	<-started
	h.Close()
	c := <-done
	if _, err := c.Take(nil); disconnectOf(err) == nil || disconnectOf(err).Reason != ReasonShutdown {
		t.Errorf("Take: %v, want shutdown", err)
	}
	if a, _ := d.counts(); a != 0 {
		t.Errorf("%d registrations made, want 0", a)
	}
}

// TestForward: a replica forwards what the holder's Publish returned;
// its consumers get the same id and bytes, and resume works on them.
func TestForward(t *testing.T) {
	t.Parallel()
	holder, _ := testHub(t, Config{Epoch: "7"})
	replica, _ := testHub(t, Config{})
	c := subscribe(t, replica, Request{Codes: codes("005930")})
	for i := range 3 {
		m := holder.Publish(trade("005930", int64(i), t0))
		if err := replica.Forward(m.Type, m.Code, m.ID, t0, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	got := take(t, c)
	if s := summary(got); !slices.Equal(s, []string{"trade:7-1", "trade:7-2", "trade:7-3"}) {
		t.Errorf("got %v, want the holder's ids", s)
	}
	last := ID{"7", 1}
	r := subscribe(t, replica, Request{Codes: codes("005930"), LastEventID: &last})
	if s := summary(take(t, r)); !slices.Equal(s, []string{"trade:7-2", "trade:7-3"}) {
		t.Errorf("resume on the replica: got %v, want 7-2 and 7-3", s)
	}
	for _, bad := range []struct{ typ, code, id string }{{"quote", "005930", "7-4"}, {"trade", "5930", "7-4"}, {"trade", "005930", "x"}} {
		if err := replica.Forward(bad.typ, bad.code, bad.id, t0, []byte("{}")); err == nil {
			t.Errorf("Forward(%q, %q, %q) accepted", bad.typ, bad.code, bad.id)
		}
	}
}
