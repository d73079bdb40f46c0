package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/clocktest"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// t0 is a fixed instant (a weekday at 10:00 KST): nothing depends on it
// being a trading day.
var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, kisfeed.KST)

// fakeDemand counts Acquire and release calls per (code, kind); refuse
// picks the codes it refuses.
type fakeDemand struct {
	mu       sync.Mutex
	acquires int
	releases int
	held     map[demandKey]int
	refuse   func(code string, kind stream.Kind) error
	// gate, when set, blocks Acquire until closed.
	gate chan struct{}
}

func newFakeDemand() *fakeDemand { return &fakeDemand{held: map[demandKey]int{}} }

func (d *fakeDemand) Acquire(ctx context.Context, code kisfeed.Code, kinds ...stream.Kind) (func(), error) {
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(kinds) != 1 {
		return nil, fmt.Errorf("want one kind per Acquire, got %v", kinds)
	}
	k := demandKey{code.String(), kinds[0]}
	if d.refuse != nil {
		if err := d.refuse(k.code, k.kind); err != nil {
			return nil, err
		}
	}
	d.acquires++
	d.held[k]++
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.releases++
			d.held[k]--
		})
	}, nil
}

func (d *fakeDemand) counts() (acquires, releases int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acquires, d.releases
}

func (d *fakeDemand) holds(code string, kind stream.Kind) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held[demandKey{code, kind}]
}

// fakeQuota is a StreamQuota with a limit.
type fakeQuota struct {
	mu           sync.Mutex
	limit, inUse int
}

func (q *fakeQuota) AcquireCodes(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inUse+n > q.limit {
		return fmt.Errorf("key k spent its streamed codes quota (%d codes streamed now, limit %d)", q.inUse, q.limit)
	}
	q.inUse += n
	return nil
}

func (q *fakeQuota) ReleaseCodes(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inUse -= n
}

func (q *fakeQuota) used() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inUse
}

// countObserver counts what the hub reports.
type countObserver struct {
	mu           sync.Mutex
	connected    map[string]int
	disconnects  map[string]int
	refusals     map[string]int
	coalesced    int
	delivered    int
	latencies    int
	highWaterMax int
}

func newCountObserver() *countObserver {
	return &countObserver{connected: map[string]int{}, disconnects: map[string]int{}, refusals: map[string]int{}}
}

func (o *countObserver) Connected(tr string, d int) { o.mu.Lock(); o.connected[tr] += d; o.mu.Unlock() }
func (o *countObserver) Delivered(_ string, n int)  { o.mu.Lock(); o.delivered += n; o.mu.Unlock() }
func (o *countObserver) Coalesced()                 { o.mu.Lock(); o.coalesced++; o.mu.Unlock() }
func (o *countObserver) Disconnected(_, r string)   { o.mu.Lock(); o.disconnects[r]++; o.mu.Unlock() }
func (o *countObserver) Refused(r string)           { o.mu.Lock(); o.refusals[r]++; o.mu.Unlock() }
func (o *countObserver) QueueHighWater(_ string, d int) {
	o.mu.Lock()
	o.highWaterMax = max(o.highWaterMax, d)
	o.mu.Unlock()
}
func (o *countObserver) Latency(string, time.Duration) { o.mu.Lock(); o.latencies++; o.mu.Unlock() }

func (o *countObserver) disconnectsOf(r string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.disconnects[r]
}

// testHub returns a hub on a fake clock with epoch "e1".
func testHub(t testing.TB, cfg Config) (*Hub, *clocktest.Clock) {
	t.Helper()
	clk := clocktest.New(t0)
	if cfg.Clock.Wall == nil {
		cfg.Clock = kisfeed.NewClock(clk.Now, nil)
	}
	if cfg.Epoch == "" {
		cfg.Epoch = "e1"
	}
	h, err := NewHub(cfg)
	if err != nil {
		t.Fatalf("NewHub: %v", err)
	}
	t.Cleanup(h.Close)
	return h, clk
}

func codes(ss ...string) []kisfeed.Code {
	out := make([]kisfeed.Code, len(ss))
	for i, s := range ss {
		out[i] = kisfeed.MustParseCode(s)
	}
	return out
}

func subscribe(t testing.TB, h *Hub, req Request) *Consumer {
	t.Helper()
	c, err := h.Subscribe(context.Background(), req)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func trade(code string, price int64, at time.Time) Event {
	return Event{Kind: stream.EventTrade, Trade: kisfeed.Trade{Code: code, Price: price, Time: at, Side: kisfeed.SideBuy}}
}

func book(code string, ask int64, at time.Time) Event {
	b := kisfeed.Book{Code: code, Time: at}
	b.Asks[0] = kisfeed.Level{Price: ask, Quantity: 10}
	return Event{Kind: stream.EventBook, Book: b}
}

func gap(code string, from, to time.Time) Event {
	return Event{Kind: stream.EventGap, Gap: kisfeed.Gap{Code: code, From: from, To: to, Reason: "dropped"}}
}

// take drains c; it fails the test on a disconnect.
func take(t testing.TB, c *Consumer) []*Message {
	t.Helper()
	msgs, err := c.Take(nil)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return msgs
}

// summary is "type:id" or "type:code:reason" per message, for comparing.
func summary(msgs []*Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		switch {
		case m.ID != "":
			out[i] = m.Type + ":" + m.ID
		case m.reason != "":
			out[i] = m.Type + ":" + m.Code + ":" + m.reason
		default:
			out[i] = m.Type + ":" + m.Code + ":" + string(m.Data)
		}
	}
	return out
}

func disconnectOf(err error) *Disconnect {
	var d *Disconnect
	if errors.As(err, &d) {
		return d
	}
	return nil
}

// limitErr is the subscription limit as internal/live wraps it.
func limitErr() error {
	return fmt.Errorf("live: %w", &stream.SubscriptionLimitError{Keys: 1, PerKey: 41, InUse: 41, Want: 1})
}
