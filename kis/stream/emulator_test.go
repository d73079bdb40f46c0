package stream_test

// Bars of the client against the real emulator (package emulator over
// internal/sim), not the fake server: the extra-fields fault, 100 codes
// over 3 app keys through repeated drops, and records/s decoded.

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/clocktest"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// emuWait bounds every wait on the emulator's feed.
const emuWait = 20 * time.Second

// emuOpen is a trading day at 10:00 KST, whatever today is.
var emuOpen = time.Date(2026, 11, 27, 10, 0, 0, 0, kisfeed.KST)

// emuMarket is the one synthetic market the tests share (seed 1): the
// test computes from it what the emulator must send.
var emuMarket = sync.OnceValue(func() *sim.Market { return sim.New(1) })

// emuKeys are n app keys the emulator registers.
func emuKeys(n int) ([]stream.Credentials, []emulator.Option) {
	var creds []stream.Credentials
	var opts []emulator.Option
	for i := range n {
		k, s := fmt.Sprintf("app-key-%d", i+1), fmt.Sprintf("secret-%d", i+1)
		creds = append(creds, stream.Credentials{AppKey: k, AppSecret: s})
		opts = append(opts, emulator.WithAppKey(k, s))
	}
	return creds, opts
}

func wsURL(base string) string { return "ws" + base[len("http"):] + "/tryitout" }

// runClient runs c until the test ends and returns a stop that cancels it
// and waits for Run to return.
func runClient(t testing.TB, c *stream.Client) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(emuWait):
				t.Errorf("Run did not return within %s of its cancel", emuWait)
			}
		})
	}
	t.Cleanup(stop)
	return ctx, stop
}

// fastClient are options that keep a test quick: short backoff, a fast
// subscribe pace (the pace's own goal is the drops script's to show).
func fastClient(extra ...stream.Option) []stream.Option {
	return append([]stream.Option{
		stream.WithBackoff(stream.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}),
		stream.WithSubscribePace(1000, 50),
	}, extra...)
}

// tradesOver streams code's trades from an emulator built with faults and
// a market clock stopped at emuOpen, moves the clock once by span and
// returns every trade the client decoded for that step (exactly the
// executions sim says happened in (emuOpen, emuOpen+span]), with the
// client's stats.
func tradesOver(t *testing.T, code string, span time.Duration, faults emulator.WSFaults) ([]kisfeed.Trade, stream.Stats, emulator.WSStats) {
	t.Helper()
	clk := clocktest.New(emuOpen)
	creds, keyOpts := emuKeys(1)
	emu, base := emulatortest.Start(t, append(keyOpts, emulator.WithMarket(emuMarket()), emulator.WithMarketClock(clk.Now),
		emulator.WithFeedInterval(5*time.Millisecond), emulator.WithWSFaults(faults))...)
	want := len(emuMarket().Executions(code, emuOpen, emuOpen.Add(span)))
	if want == 0 {
		t.Fatalf("sim: no executions of %s in %s after %s; pick a busier span", code, span, emuOpen)
	}
	trades := make(chan kisfeed.Trade, want+1)
	books := make(chan string, 64)
	c, err := stream.New(stream.Config{Keys: creds, RESTBaseURL: base, WSURL: wsURL(base),
		Handler: func(e stream.Event) {
			switch e.Kind {
			case stream.EventTrade:
				trades <- e.Trade
			case stream.EventBook:
				select {
				case books <- e.Book.Code:
				default:
				}
			}
		}}, fastClient(stream.WithClock(clk.Now))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := runClient(t, c)
	// The trade registration is subscribed before a book registration of
	// a later code (a new session sends them sorted by code), and the
	// emulator answers messages in order and feeds a registration only
	// once its reply is out: the first book of the later code proves the
	// trade registration is fed from emuOpen on.
	const marker = "035720"
	if err := c.Subscribe(ctx, code, stream.KindTrade); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, marker, stream.KindBook); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(emuWait)
	select {
	case <-books:
	case <-timeout:
		t.Fatalf("no book of %s within %s", marker, emuWait)
	}
	clk.Advance(span)
	var got []kisfeed.Trade
	for len(got) < want {
		select {
		case tr := <-trades:
			got = append(got, tr)
		case <-timeout:
			t.Fatalf("got %d of %d trades within %s", len(got), want, emuWait)
		}
	}
	stop()
	if extra := len(trades); extra > 0 {
		t.Errorf("%d trades more than sim's %d executions", extra, want)
	}
	return got, c.Stats(), emu.Stats().WebSocket
}

// TestEmulatorExtraFields is the extra-fields bar: with three fields
// appended to every H0STCNT0 record (KIS adds fields without notice), the
// client decodes every record (0 parse errors) into the same trades as
// without the fault, at the same market instants.
func TestEmulatorExtraFields(t *testing.T) {
	t.Parallel()
	const code, span = "005930", 2 * time.Minute
	plain, plainStats, _ := tradesOver(t, code, span, emulator.WSFaults{})
	wide, wideStats, emuStats := tradesOver(t, code, span, emulator.WSFaults{ExtraFields: map[string]int{stream.TrTradeKRX: 3}})
	if emuStats.RecordsByTR[stream.TrTradeKRX] == 0 {
		t.Fatalf("emulator sent no %s records", stream.TrTradeKRX)
	}
	for name, st := range map[string]stream.Stats{"plain": plainStats, "extra-fields": wideStats} {
		if st.ParseErrors != 0 {
			t.Errorf("%s run: %d parse errors, want 0", name, st.ParseErrors)
		}
	}
	if len(plain) != len(wide) {
		t.Fatalf("%d trades without the fault, %d with it", len(plain), len(wide))
	}
	for i := range plain {
		if plain[i] != wide[i] {
			t.Errorf("trade %d:\nplain %+v\nwide  %+v", i, plain[i], wide[i])
		}
	}
	var last int64
	for i, tr := range wide {
		if tr.CumVolume < last {
			t.Errorf("trade %d: cum volume %d after %d", i, tr.CumVolume, last)
		}
		last = tr.CumVolume
	}
	t.Logf("%d trades of %s in %s, equal with and without extra-fields=%s:3", len(wide), code, span, stream.TrTradeKRX)
}

// TestEmulatorDrops is the drops bar in Go: 100 codes over 3 app keys,
// every session dropped 3 times (abnormal close, as KIS's restarts and
// network losses look): after each drop every code gets exactly one gap
// event (emitted once its registration is restored), no key ever holds
// more than 41 registrations or a second session, and no OPSP8996.
func TestEmulatorDrops(t *testing.T) {
	t.Parallel()
	const ncodes, nkeys, drops = 100, 3, 3
	codes := emuCodes(t, ncodes)
	start := time.Now()
	market := func() time.Time { return emuOpen.Add(time.Since(start)) } // trades flow meanwhile
	creds, keyOpts := emuKeys(nkeys)
	emu, base := emulatortest.Start(t, append(keyOpts, emulator.WithMarket(emuMarket()), emulator.WithMarketClock(market),
		emulator.WithApprovalInterval(0))...)

	type hit struct {
		code string
		gap  bool
	}
	events := make(chan hit, 4*ncodes)
	var trades atomic.Int64
	c, err := stream.New(stream.Config{Keys: creds, RESTBaseURL: base, WSURL: wsURL(base),
		Handler: func(e stream.Event) {
			switch e.Kind {
			case stream.EventBook:
				select { // the first book of a code is what the test waits for
				case events <- hit{e.Book.Code, false}:
				default:
				}
			case stream.EventGap:
				events <- hit{e.Gap.Code, true} // must not be lost: counted exactly
			case stream.EventTrade:
				trades.Add(1)
			}
		}}, fastClient(stream.WithClock(market))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := runClient(t, c)
	for _, code := range codes {
		// Books: the emulator sends one as soon as a registration is
		// live, which tells the test each code is streaming.
		if err := c.Subscribe(ctx, code, stream.KindBook); err != nil {
			t.Fatal(err)
		}
	}
	timeout := time.After(emuWait)
	seen := map[string]bool{}
	for len(seen) < ncodes {
		select {
		case h := <-events:
			if !h.gap {
				seen[h.code] = true
			}
		case <-timeout:
			t.Fatalf("%d of %d codes streaming within %s", len(seen), ncodes, emuWait)
		}
	}
	gaps := map[string]int{}
	for d := 1; d <= drops; d++ {
		at := time.Now()
		if n := emu.DropSessions(); n != nkeys {
			t.Fatalf("drop %d: dropped %d sessions, want %d", d, n, nkeys)
		}
		timeout := time.After(emuWait)
		restored := 0
		for restored < ncodes {
			select {
			case h := <-events:
				if !h.gap {
					continue
				}
				gaps[h.code]++
				if gaps[h.code] != d {
					t.Fatalf("drop %d: %s has %d gaps", d, h.code, gaps[h.code])
				}
				restored++
			case <-timeout:
				t.Fatalf("drop %d: %d of %d codes restored within %s", d, restored, ncodes, emuWait)
			}
		}
		t.Logf("drop %d: all %d registrations restored in %s", d, ncodes, time.Since(at).Round(time.Millisecond))
	}
	ws := emu.Stats().WebSocket
	stop()
	st := c.Stats()
	if st.Gaps != ncodes*drops {
		t.Errorf("client counted %d gaps, want %d (one per code per drop)", st.Gaps, ncodes*drops)
	}
	if st.ParseErrors != 0 {
		t.Errorf("%d parse errors, want 0", st.ParseErrors)
	}
	if ws.InUseRejections != 0 || ws.RepliesByMsgCd["OPSP8996"] != 0 {
		t.Errorf("OPSP8996: %d, want 0", ws.InUseRejections)
	}
	if ws.MaxSessionsPerAppKey > 1 {
		t.Errorf("an app key held %d sessions at once, want 1", ws.MaxSessionsPerAppKey)
	}
	total := 0
	for k, a := range ws.PerAppKey {
		if a.RegistrationsMax > stream.MaxRegistrations {
			t.Errorf("%s held %d registrations, want ≤ %d", k, a.RegistrationsMax, stream.MaxRegistrations)
		}
		total += a.Registrations
	}
	if total != ncodes {
		t.Errorf("emulator holds %d registrations after the last restore, want %d", total, ncodes)
	}
	if ws.SessionsDroppedByReason[emulator.DropFault] != nkeys*drops {
		t.Errorf("emulator dropped %d sessions by fault, want %d", ws.SessionsDroppedByReason[emulator.DropFault], nkeys*drops)
	}
	t.Logf("%d trades decoded meanwhile; reconnects %d", trades.Load(), st.Reconnects)
}

// emuCodes returns the first n codes of the synthetic universe.
func emuCodes(tb testing.TB, n int) []string {
	var out []string
	for _, s := range emuMarket().Universe() {
		out = append(out, s.Code)
		if len(out) == n {
			return out
		}
	}
	tb.Fatalf("the synthetic market lists %d stocks, want %d", len(out), n)
	return nil
}

// BenchmarkEmulatorRecords: records/s the client decodes from a local
// emulator playing the market at high speed (400 codes' trades over 10
// keys, 3000× from 09:00, feed every 2 ms), so the market's own trade
// rate is not the limit (at 1000× it was: ~110k records/s with the CPU
// half idle). At 3000× the session lasts 7.8 s of wall time, far more
// than the ~2 s a default -benchtime run takes; a b.N past ~1.5M records
// would outlive the close and fail.
// allocs/record counts the whole process (emulator included; the client
// alone allocates nothing per record, see BenchmarkEndToEnd).
func BenchmarkEmulatorRecords(b *testing.B) {
	const ncodes, nkeys = 400, 10
	codes := emuCodes(b, ncodes)
	creds, keyOpts := emuKeys(nkeys)
	start, wall := time.Date(2026, 11, 27, 9, 0, 0, 0, kisfeed.KST), time.Now()
	_, base := emulatortest.Start(b, append(keyOpts, emulator.WithMarket(emuMarket()),
		emulator.WithMarketClock(func() time.Time { return start.Add(time.Since(wall)) }), emulator.WithSpeed(3000),
		emulator.WithFeedInterval(2*time.Millisecond), emulator.WithApprovalInterval(0))...)
	var got atomic.Int64
	var want atomic.Int64
	want.Store(-1)
	done := make(chan struct{}, 1)
	c, err := stream.New(stream.Config{Keys: creds, RESTBaseURL: base, WSURL: wsURL(base),
		Handler: func(e stream.Event) {
			if e.Kind == stream.EventTrade && got.Add(1) == want.Load() {
				done <- struct{}{}
			}
		}}, fastClient()...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, _ := runClient(b, c)
	for _, code := range codes {
		if err := c.Subscribe(ctx, code, stream.KindTrade); err != nil {
			b.Fatal(err)
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	t0, n0 := time.Now(), got.Load()
	want.Store(n0 + int64(b.N))
	if got.Load() < want.Load() {
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d records within a minute", got.Load()-n0, b.N)
		}
	}
	el := time.Since(t0)
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	n := got.Load() - n0
	b.ReportMetric(float64(n)/el.Seconds(), "records/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n), "process-allocs/record")
	if st := c.Stats(); st.ParseErrors != 0 {
		b.Errorf("%d parse errors", st.ParseErrors)
	}
}

// stampConn records when the server last began a write to the
// connection: the emulator's send of a frame, seen from below it.
type stampConn struct {
	net.Conn
	last *atomic.Int64 // UnixNano of the last Write
}

func (c stampConn) Write(p []byte) (int, error) {
	// Stamped before the write: stamped after, the client could decode
	// the frame before the stamp lands and measure from the previous one.
	c.last.Store(time.Now().UnixNano())
	return c.Conn.Write(p)
}

type stampListener struct {
	net.Listener
	last *atomic.Int64
}

func (l stampListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return stampConn{c, l.last}, nil
}

// BenchmarkEmulatorLatency: p50/p99 from the emulator's socket write of
// a trade frame to the client's typed event, on loopback. One code's
// trades at 600× with a 5 ms feed: a frame every tick, far apart enough
// that the last write before an event is that event's frame (PINGPONG,
// every 10 s, may cut one sample short). The first event of each frame
// is measured.
func BenchmarkEmulatorLatency(b *testing.B) {
	creds, keyOpts := emuKeys(1)
	start, wall := time.Date(2026, 11, 27, 9, 30, 0, 0, kisfeed.KST), time.Now()
	emu, err := emulator.New(append(keyOpts, emulator.WithMarket(emuMarket()),
		emulator.WithMarketClock(func() time.Time { return start.Add(time.Since(wall)) }), emulator.WithSpeed(600),
		emulator.WithFeedInterval(5*time.Millisecond))...)
	if err != nil {
		b.Fatal(err)
	}
	var last atomic.Int64
	ts := httptest.NewUnstartedServer(emu)
	ts.Listener = stampListener{ts.Listener, &last}
	ts.Start()
	b.Cleanup(func() { _ = emu.Close(); ts.Close() })
	lat := make(chan time.Duration, 1)
	var measured atomic.Int64 // the write last measured
	c, err := stream.New(stream.Config{Keys: creds, RESTBaseURL: ts.URL, WSURL: wsURL(ts.URL),
		Handler: func(e stream.Event) {
			now := time.Now().UnixNano()
			w := last.Load()
			if e.Kind != stream.EventTrade || measured.Swap(w) == w {
				return
			}
			select {
			case lat <- time.Duration(now - w):
			default:
			}
		}}, fastClient()...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, _ := runClient(b, c)
	if err := c.Subscribe(ctx, "005930", stream.KindTrade); err != nil {
		b.Fatal(err)
	}
	<-lat // the first may predate the timer
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		select {
		case d := <-lat:
			samples = append(samples, d)
		case <-time.After(emuWait):
			b.Fatalf("no trade within %s", emuWait)
		}
	}
	b.StopTimer()
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(samples[len(samples)*99/100].Microseconds()), "p99-µs")
}
