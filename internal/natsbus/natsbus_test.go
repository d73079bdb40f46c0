package natsbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/clocktest"
)

// waitTimeout bounds every wait on a channel: far above what a step needs,
// so it fires only when something is broken.
const waitTimeout = 5 * time.Second

// testNATS returns KISFEED_TEST_NATS_URL and a subject prefix of this
// test's own (the server is shared with other tests and helpers).
func testNATS(t *testing.T) (url, prefix string) {
	t.Helper()
	url = os.Getenv("KISFEED_TEST_NATS_URL")
	if url == "" {
		t.Skip("KISFEED_TEST_NATS_URL not set: skipping real-NATS test")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return url, "test" + hex.EncodeToString(b) + ".kisfeed.v1."
}

func connect(t *testing.T, url, prefix string, opts ...Option) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	b, err := Connect(ctx, url, append([]Option{WithPrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func code(t *testing.T, s string) kisfeed.Code {
	t.Helper()
	c, err := kisfeed.ParseCode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return recvWithin(t, ch, waitTimeout, what)
}

// recvWithin is recv for waits that include a lease's ttl.
func recvWithin[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

type event struct {
	kind    string
	code    kisfeed.Code
	payload string
}

func collect(ch chan<- event) Handler {
	return func(kind string, code kisfeed.Code, payload []byte) {
		ch <- event{kind, code, string(payload)}
	}
}

func TestConnectRejects(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"prefix without dot", []Option{WithPrefix("kisfeed")}, "prefix"},
		{"prefix with wildcard", []Option{WithPrefix("a.*.")}, "prefix"},
		{"zero pending", []Option{WithPendingLimits(0, 1)}, "pending"},
		{"expiry not above period", []Option{WithDemandTiming(time.Second, time.Second, time.Second)}, "demand timing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Connect(t.Context(), "nats://127.0.0.1:1", tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
	t.Run("no server", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // a port nobody listens on
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		if _, err := Connect(ctx, "nats://"+addr); err == nil {
			t.Fatal("Connect to a closed port succeeded")
		}
	})
}

// TestPublishSubscribe: per-code subscriptions get exactly their kinds and
// codes, in order; a wildcard subscription gets every code.
func TestPublishSubscribe(t *testing.T) {
	url, prefix := testNATS(t)
	var published, received atomic.Int64
	m := Metrics{
		Published: func(string) { published.Add(1) },
		Received:  func(string) { received.Add(1) },
	}
	pub := connect(t, url, prefix, WithMetrics(m))
	sub := connect(t, url, prefix, WithMetrics(m))
	ss, sk := code(t, "005930"), code(t, "000660")
	ctx := t.Context()

	tests := []struct {
		name  string
		codes []kisfeed.Code
		kinds []string
		// subjects is how many of the 6 (kind, code) subjects it hears.
		subjects int
		want     []event
	}{
		{"one code, trades", []kisfeed.Code{ss}, []string{KindTrade}, 1, []event{{KindTrade, ss, "t1"}, {KindTrade, ss, "t2"}}},
		{"one code, all kinds", []kisfeed.Code{ss}, nil, 3, []event{{KindTrade, ss, "t1"}, {KindBook, ss, "b1"}, {KindTrade, ss, "t2"}, {KindGap, ss, "g1"}}},
		{"two codes, books", []kisfeed.Code{ss, sk}, []string{KindBook}, 2, []event{{KindBook, ss, "b1"}, {KindBook, sk, "b2"}}},
		{"every code, trades", nil, []string{KindTrade}, 2, []event{{KindTrade, ss, "t1"}, {KindTrade, ss, "t2"}, {KindTrade, sk, "t3"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan event, 64)
			unsub, err := sub.Subscribe(tc.codes, tc.kinds, collect(ch))
			if err != nil {
				t.Fatal(err)
			}
			defer unsub()
			if err := sub.Flush(ctx); err != nil { // the server knows the subscriptions
				t.Fatal(err)
			}
			for _, e := range []event{
				{KindTrade, ss, "t1"}, {KindBook, ss, "b1"}, {KindTrade, ss, "t2"},
				{KindBook, sk, "b2"}, {KindTrade, sk, "t3"}, {KindGap, ss, "g1"},
			} {
				if err := pub.Publish(ctx, e.kind, e.code, []byte(e.payload)); err != nil {
					t.Fatal(err)
				}
			}
			// An end marker on every subject: per subject the order holds
			// (across subjects it need not), so once the case has heard
			// the marker of each subject it listens to, it has heard all.
			for _, k := range allKinds {
				for _, c := range []kisfeed.Code{ss, sk} {
					if err := pub.Publish(ctx, k, c, []byte("end")); err != nil {
						t.Fatal(err)
					}
				}
			}
			var got []event
			for ends := 0; ends < tc.subjects; {
				e := recv(t, ch, "the end markers")
				if e.payload == "end" {
					ends++
					continue
				}
				got = append(got, e)
			}
			for len(ch) > 0 {
				if e := <-ch; e.payload != "end" {
					got = append(got, e)
				}
			}
			// Per subject the order holds; across subjects it need not.
			if fmt.Sprint(bySubject(got)) != fmt.Sprint(bySubject(tc.want)) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	if published.Load() == 0 || received.Load() == 0 {
		t.Fatalf("metrics: published %d, received %d; want both counted", published.Load(), received.Load())
	}
}

// bySubject groups events by subject, each group in arrival order.
func bySubject(es []event) map[string][]event {
	m := map[string][]event{}
	for _, e := range es {
		m[e.kind+"."+e.code.String()] = append(m[e.kind+"."+e.code.String()], e)
	}
	return m
}

func TestPublishRefuses(t *testing.T) {
	url, prefix := testNATS(t)
	b := connect(t, url, prefix)
	ss := code(t, "005930")
	done, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		kind string
		code kisfeed.Code
		want error
	}{
		{"unknown kind", t.Context(), "quote", ss, ErrKind},
		{"ended tenure", done, KindTrade, ss, ErrFenced},
		{"ended tenure keeps the cause", done, KindTrade, ss, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := b.Publish(tc.ctx, tc.kind, tc.code, nil); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if err := b.Publish(t.Context(), KindTrade, kisfeed.Code{}, nil); err == nil {
		t.Fatal("zero code published")
	}
	if _, err := b.Subscribe(nil, []string{"quote"}, func(string, kisfeed.Code, []byte) {}); !errors.Is(err, ErrKind) {
		t.Fatalf("Subscribe(quote) err = %v, want ErrKind", err)
	}
}

// TestSlowConsumer: a handler that stops makes NATS drop that
// subscription's events past its pending limit; every event is either
// received or counted as dropped.
func TestSlowConsumer(t *testing.T) {
	url, prefix := testNATS(t)
	var dropped atomic.Int64
	pub := connect(t, url, prefix)
	sub := connect(t, url, prefix, WithPendingLimits(10, 1<<20),
		WithMetrics(Metrics{Dropped: func(_ string, n int) { dropped.Add(int64(n)) }}))
	ss := code(t, "005930")
	ctx := t.Context()

	const total = 200
	release := make(chan struct{})
	var got atomic.Int64
	var target atomic.Int64
	target.Store(-1)
	all := make(chan struct{})
	unsub, err := sub.Subscribe([]kisfeed.Code{ss}, []string{KindTrade}, func(string, kisfeed.Code, []byte) {
		<-release
		if n := got.Add(1); n == target.Load() {
			close(all)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range total {
		if err := pub.Publish(ctx, KindTrade, ss, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// After the subscriber's flush round trip, everything sent before it
	// has been read: kept (pending) or dropped.
	if err := sub.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	sub.subsMu.Lock()
	var n int
	for s := range sub.subs {
		n, _ = s.Dropped()
	}
	sub.subsMu.Unlock()
	if n == 0 {
		t.Fatalf("no drops with a stuck handler, pending limit 10 and %d events", total)
	}
	target.Store(int64(total - n))
	close(release)
	recv(t, all, fmt.Sprintf("the %d kept events", total-n))
	unsub()
	if got, d := got.Load(), dropped.Load(); got+d != total || d != int64(n) {
		t.Fatalf("received %d + dropped %d, want %d with %d dropped", got, d, total, n)
	}
}

// proxy is a TCP proxy to the NATS server that the test can cut, so the
// bus sees a disconnect and a reconnect.
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex // guards conns, paused
	conns  []net.Conn
	paused bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.paused {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

// cut closes every connection through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) pause(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = on
}

// TestReconnect: a broken connection is reported, publishing meanwhile
// fails instead of buffering, and after the reconnect (reported too) the
// subscriptions work again.
func TestReconnect(t *testing.T) {
	url, prefix := testNATS(t)
	p := newProxy(t, strings.TrimPrefix(url, "nats://"))
	events := make(chan ConnEvent, 16)
	b := connect(t, p.url(), prefix, WithReconnectWait(20*time.Millisecond),
		WithConnEvents(func(e ConnEvent) { events <- e }))
	other := connect(t, url, prefix)
	ss := code(t, "005930")
	ctx := t.Context()
	ch := make(chan event, 16)
	unsub, err := b.Subscribe([]kisfeed.Code{ss}, []string{KindTrade}, collect(ch))
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()

	p.pause(true)
	p.cut()
	if e := recv(t, events, "the disconnect event"); e.Kind != Disconnected {
		t.Fatalf("event %v, want disconnected", e.Kind)
	}
	if err := b.Publish(ctx, KindTrade, ss, []byte("while down")); err == nil {
		t.Fatal("Publish while disconnected succeeded; want an error, not a buffered event")
	}
	p.pause(false)
	if e := recv(t, events, "the reconnect event"); e.Kind != Reconnected {
		t.Fatalf("event %v, want reconnected", e.Kind)
	}
	if err := b.Flush(ctx); err != nil { // subscriptions restored on the server
		t.Fatal(err)
	}
	if err := other.Publish(ctx, KindTrade, ss, []byte("after")); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, ch, "an event after the reconnect"); e.payload != "after" {
		t.Fatalf("got %q, want the event published after the reconnect", e.payload)
	}
	_ = b.Close()
	for recv(t, events, "the closed event").Kind != Closed {
	}
}

func TestDemandValues(t *testing.T) {
	a, b := code(t, "005930"), code(t, "000660")
	tests := []struct {
		name string
		got  Demand
		want Demand
	}{
		{"add sorts and dedups", Demand{}.Add(a, KindTrade, KindBook, KindTrade), Demand{a: {KindBook, KindTrade}}},
		{"add to nil", Demand(nil).Add(b, KindBook), Demand{b: {KindBook}}},
		{"merge", Demand{a: {KindTrade}}.Merge(Demand{a: {KindBook}, b: {KindTrade}}), Demand{a: {KindBook, KindTrade}, b: {KindTrade}}},
		{"normalized drops empty", Demand{a: nil, b: {KindTrade, KindTrade}}.normalized(), Demand{b: {KindTrade}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.got.Equal(tc.want) {
				t.Fatalf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if Demand(nil).Equal(Demand{a: {KindTrade}}) {
		t.Fatal("nil equals a non-empty demand")
	}
	if got := (Demand{b: {KindTrade}, a: {KindTrade}}).Codes(); len(got) != 2 || got[0] != b {
		t.Fatalf("Codes = %v, want sorted [000660 005930]", got)
	}
}

func TestDecodeDemand(t *testing.T) {
	a := code(t, "005930")
	tests := []struct {
		name    string
		in      string
		replica string
		want    Demand
		wantErr bool
	}{
		{"ok", `{"replica":"r1","codes":{"005930":["trade","book"]}}`, "r1", Demand{a: {KindBook, KindTrade}}, false},
		{"bad code and kind skipped", `{"replica":"r1","codes":{"xx":["trade"],"005930":["quote","gap"]}}`, "r1", Demand{a: {KindGap}}, false},
		{"empty is a goodbye", `{"replica":"r1","codes":{}}`, "r1", Demand{}, false},
		{"no replica", `{"codes":{}}`, "", nil, true},
		{"replica with a dot", `{"replica":"a.b"}`, "", nil, true},
		{"not json", `nope`, "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, d, err := decodeDemand([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if r != tc.replica || !d.Equal(tc.want) {
				t.Fatalf("got %q %v, want %q %v", r, d, tc.replica, tc.want)
			}
		})
	}
}

// waitDemand reads aggregates from ch until one equals want.
func waitDemand(t *testing.T, ch <-chan Demand, want Demand, what string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	var last Demand
	for {
		select {
		case d := <-ch:
			if d.Equal(want) {
				return
			}
			last = d
		case <-timeout:
			t.Fatalf("timed out waiting for %s: last aggregate %v, want %v", what, last, want)
		}
	}
}

// TestWatchDemand: the watch aggregates every replica's announced demand,
// follows changes and goodbyes, and forgets a replica silent for longer
// than the expiry by the (fake) clock.
func TestWatchDemand(t *testing.T) {
	url, prefix := testNATS(t)
	clk := clocktest.New(time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC))
	// Publishers republish hourly (never, within the test); the watcher
	// sweeps every 5 ms of real time against the fake clock.
	slow := WithDemandTiming(time.Hour, 2*time.Hour, time.Hour)
	ra := connect(t, url, prefix, slow)
	rb := connect(t, url, prefix, slow)
	w := connect(t, url, prefix, WithClock(clk.Now), WithDemandTiming(time.Hour, 2*time.Hour, 5*time.Millisecond))
	x, y := code(t, "005930"), code(t, "000660")

	ch := make(chan Demand, 64)
	stop, err := w.WatchDemand(func(d Demand) { ch <- d })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := w.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := ra.PublishDemand("a", Demand{x: {KindTrade}}); err != nil {
		t.Fatal(err)
	}
	if err := rb.PublishDemand("b", Demand{y: {KindBook}, x: {KindBook}}); err != nil {
		t.Fatal(err)
	}
	waitDemand(t, ch, Demand{x: {KindBook, KindTrade}, y: {KindBook}}, "a's and b's demand")

	// A watcher that starts late learns both at once from its sync
	// request: nobody republishes within the test (hourly).
	late := connect(t, url, prefix)
	lateCh := make(chan Demand, 16)
	stopLate, err := late.WatchDemand(func(d Demand) { lateCh <- d })
	if err != nil {
		t.Fatal(err)
	}
	waitDemand(t, lateCh, Demand{x: {KindBook, KindTrade}, y: {KindBook}}, "the late watcher's aggregate")
	stopLate()

	if err := ra.PublishDemand("a", Demand{x: {KindTrade}, y: {KindTrade}}); err != nil {
		t.Fatal(err)
	}
	waitDemand(t, ch, Demand{x: {KindBook, KindTrade}, y: {KindBook, KindTrade}}, "a's new demand")

	if err := rb.Close(); err != nil { // goodbye
		t.Fatal(err)
	}
	waitDemand(t, ch, Demand{x: {KindTrade}, y: {KindTrade}}, "b's goodbye")

	clk.Advance(2*time.Hour + time.Second) // a falls silent past the expiry
	waitDemand(t, ch, Demand{}, "a's demand to expire")

	if err := ra.PublishDemand("bad.name", nil); err == nil {
		t.Fatal("a replica name with a dot was accepted")
	}
}
