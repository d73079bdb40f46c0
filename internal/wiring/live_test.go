package wiring_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/clocktest"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/embedded"
	"github.com/kisfeed/kisfeed/internal/metrics"
	"github.com/kisfeed/kisfeed/internal/wiring"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// eventWait bounds each wait for the stream in these tests: the emulator
// feeds every 100 ms and a reconnect backs off at most 1 s.
const eventWait = 10 * time.Second

// gapLines is a slog.Handler that hands every "kis stream gap" record's
// text to a channel and keeps nothing else.
type gapLines struct {
	ch chan string
}

func (g gapLines) Enabled(context.Context, slog.Level) bool { return true }
func (g gapLines) Handle(_ context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "kis stream gap") {
		return nil
	}
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	select {
	case g.ch <- b.String():
	default:
	}
	return nil
}
func (g gapLines) WithAttrs([]slog.Attr) slog.Handler { return g }
func (g gapLines) WithGroup(string) slog.Handler      { return g }

// metricSum sums the samples of the family name in reg whose labels
// include every pair of match.
func metricSum(t *testing.T, reg *prometheus.Registry, name string, match ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(match); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == match[i] && lp.GetValue() == match[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// TestLiveWriteThroughEmbedded runs the serve stack in embedded mode (REST
// and WebSocket on one built-in emulator) with STREAM_CODES=005930, on a
// market clock the test moves (a Wednesday, 10:00 KST, whatever today
// is): trades written through make the cached quote equal the emulator's
// inquire-price at that instant, served as hits; a dropped session is
// restored, the gap logged once, the quote and book re-read from REST,
// and the metrics count one reconnect and one gap.
func TestLiveWriteThroughEmbedded(t *testing.T) {
	t.Parallel()
	wall := clocktest.New(time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC))
	cfg := config.Default()
	cfg.MarketTime = "2026-11-25 10:00" // a Wednesday, a KRX trading day
	cfg.StreamCodes = "005930"
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	gaps := gapLines{ch: make(chan string, 4)}
	var emu *embedded.Emulator
	u := newUpstream(t, cfg, withEmulator(wiring.Deps{Now: wall.Now, Logger: slog.New(gaps),
		Stream: true, StreamObserver: m.Stream(), CacheObserver: m}, &emu))
	if u.Live == nil {
		t.Fatal("Stack.Live: nil in embedded mode with Deps.Stream")
	}
	code := kisfeed.MustParseCode("005930")
	ctx := t.Context()

	trades := make(chan kisfeed.Trade, 1024)
	gapEvents := make(chan kisfeed.Gap, 4)
	stop := u.Live.Listen(code, func(ev stream.Event) {
		switch ev.Kind {
		case stream.EventTrade:
			select {
			case trades <- ev.Trade:
			default:
			}
		case stream.EventGap:
			gapEvents <- ev.Gap
		}
	})
	defer stop()

	// restQuote is the emulator's inquire-price now, past the cache.
	restQuote := func() *kisfeed.Quote {
		q, err := wiring.DirectOf(u).Quote(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	// catchUp moves the market on until the stream has delivered the
	// trade that brings the day's volume to inquire-price's at the new
	// instant, then waits for the write-through.
	catchUp := func(step time.Duration) *kisfeed.Quote {
		t.Helper()
		deadline := time.After(eventWait)
		for {
			wall.Advance(step)
			want := restQuote()
			tick := time.NewTimer(300 * time.Millisecond)
		wait:
			for {
				select {
				case tr := <-trades:
					if tr.CumVolume == want.Volume {
						tick.Stop()
						if err := u.Live.Flush(ctx); err != nil {
							t.Fatal(err)
						}
						return want
					}
				case <-tick.C:
					// No trade at this instant yet (not subscribed, or a
					// quiet second): move the market again.
					break wait
				case <-deadline:
					t.Fatalf("no trade reached inquire-price's volume %d within %s; stats %+v", want.Volume, eventWait, u.Live.Stats())
				}
			}
		}
	}

	want := catchUp(2 * time.Second)
	hits := metricSum(t, reg, "kisfeed_cache_hits_total", "kind", "price")
	for range 3 {
		got, err := u.Source.Quote(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if got.Price != want.Price || got.Volume != want.Volume || got.High != want.High || got.Low != want.Low {
			t.Fatalf("cached quote price %d volume %d high %d low %d, want inquire-price's %d %d %d %d",
				got.Price, got.Volume, got.High, got.Low, want.Price, want.Volume, want.High, want.Low)
		}
		if got.Meta.Origin != kisfeed.OriginCache {
			t.Fatalf("origin %q, want cache (written through)", got.Meta.Origin)
		}
	}
	if d := metricSum(t, reg, "kisfeed_cache_hits_total", "kind", "price") - hits; d != 3 {
		t.Errorf("price hits rose by %v, want 3", d)
	}
	for _, name := range []string{"kisfeed_stream_frames_total", "kisfeed_stream_records_total", "kisfeed_stream_lag_seconds"} {
		if metricSum(t, reg, name) == 0 {
			t.Errorf("%s: nothing counted in the registry", name)
		}
	}
	if n := metricSum(t, reg, "kisfeed_stream_sessions", "key", "key1"); n != 1 {
		t.Errorf("sessions of key1: %v, want 1", n)
	}

	// Drop every session while the market moves on: the trades of the
	// window are missed, and only the resync can bring the cache level.
	emu.Server.DropSessions()
	wall.Advance(3 * time.Second)
	after := restQuote()
	var gap kisfeed.Gap
	select {
	case gap = <-gapEvents:
	case <-time.After(eventWait):
		t.Fatalf("no gap event within %s after the drop", eventWait)
	}
	var line string
	select {
	case line = <-gaps.ch:
	case <-time.After(eventWait):
		t.Fatalf("no gap log line within %s", eventWait)
	}
	for _, w := range []string{"codes=1", "list=005930", "reason=dropped", "resync_failed=0"} {
		if !strings.Contains(line, w) {
			t.Errorf("gap line %q lacks %q", line, w)
		}
	}
	if gap.Code != "005930" || gap.Reason != "dropped" || !gap.To.After(gap.From) {
		t.Errorf("gap %+v, want 005930 dropped with To after From", gap)
	}
	got, err := u.Source.Quote(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if got.Volume != after.Volume || got.Price != after.Price {
		t.Errorf("after the resync: cached volume %d price %d, want inquire-price's %d %d", got.Volume, got.Price, after.Volume, after.Price)
	}
	book, err := u.Source.OrderBook(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	restBook, err := wiring.DirectOf(u).OrderBook(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if book.Asks != restBook.Asks || book.Bids != restBook.Bids || book.Meta.Origin != kisfeed.OriginCache {
		t.Errorf("after the resync: cached book (origin %q) differs from inquire-asking-price's", book.Meta.Origin)
	}
	if n := metricSum(t, reg, "kisfeed_stream_reconnects_total", "key", "key1", "reason", "dropped"); n != 1 {
		t.Errorf("reconnects of key1 (dropped): %v, want 1", n)
	}
	if n := metricSum(t, reg, "kisfeed_stream_gaps_total"); n != 1 {
		t.Errorf("gaps: %v, want 1 (one code, one drop)", n)
	}
	st := u.Live.Stats()
	if len(st.Stream.Keys) != wiring.DemoStreamKeys || st.Stream.Keys[0].Registrations != 2 || len(st.Demand) != 2 || !st.Demand[0].Lifetime {
		t.Errorf("stats %+v, want the %d demo keys, key1 with 2 registrations held for the lifetime", st, wiring.DemoStreamKeys)
	}
	if st.WriteThrough.Trades == 0 {
		t.Errorf("write-through stats %+v, want trades written", st.WriteThrough)
	}
}

// TestLiveSynthetic: synthetic mode has no stream, and says so once when
// STREAM_CODES is set.
func TestLiveSynthetic(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.EnableKISAPI = "false"
	cfg.StreamCodes = "005930,000660"
	var buf syncBuf
	u := newUpstream(t, cfg, wiring.Deps{Stream: true, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if u.Live != nil {
		t.Error("Stack.Live set in synthetic mode")
	}
	if n := strings.Count(buf.String(), "STREAM_CODES ignored"); n != 1 {
		t.Errorf("log lines about STREAM_CODES: %d, want 1\n%s", n, buf.String())
	}
}

// syncBuf is a strings.Builder safe for a logger's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLiveKISMode: against a KIS_BASE_URL emulator with two app keys the
// stream derives ws://<host>/tryitout from the base URL, spreads nothing
// it need not (a code's two registrations on one key), and keeps the
// approval key next to the token file, or in Redis with REDIS_URL.
func TestLiveKISMode(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"file", "redis"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			wall := clocktest.New(time.Date(2026, 11, 25, 10, 0, 0, 0, kisfeed.KST)) // a Wednesday; KIS mode: market = wall
			_, base := emulatortest.Start(t, emulator.WithMarketClock(wall.Now))
			cfg := kisConfig(t, base)
			cfg.AppKeys = "second-key:second-secret"
			cfg.StreamCodes = "005930"
			deps := wiring.Deps{Now: wall.Now, Stream: true}
			var rdbURL string
			if store == "redis" {
				rdbURL, deps.RedisPrefix = redisURL(t)
				cfg.RedisURL = rdbURL
			}
			u := newUpstream(t, cfg, deps)
			events := make(chan stream.Event, 64)
			stop := u.Live.Listen(kisfeed.MustParseCode("005930"), func(ev stream.Event) {
				select {
				case events <- ev:
				default:
				}
			})
			defer stop()
			deadline := time.After(eventWait)
		wait:
			for {
				wall.Advance(time.Second)
				select {
				case <-events:
					break wait
				case <-time.After(300 * time.Millisecond):
				case <-deadline:
					t.Fatalf("no event within %s; stats %+v", eventWait, u.Live.Stats())
				}
			}
			st := u.Live.Stats().Stream
			if len(st.Keys) != 2 || st.Keys[0].Registrations+st.Keys[1].Registrations != 2 || (st.Keys[0].Registrations != 2 && st.Keys[1].Registrations != 2) {
				t.Errorf("keys %+v, want two keys, the code's 2 registrations on one", st.Keys)
			}
			switch store {
			case "file":
				path := filepath.Join(filepath.Dir(cfg.TokenFile), "approval-keys.json")
				b, err := os.ReadFile(path)
				if err != nil || !strings.Contains(string(b), "approval:") {
					t.Errorf("approval key file %s: %v %q, want the issued key", path, err, b)
				}
			case "redis":
				keys, err := wiring.RedisOf(u).Keys(t.Context(), deps.RedisPrefix+"kis:token:approval:*").Result()
				if err != nil || len(keys) != 1 {
					t.Errorf("approval keys in Redis: %v %v, want 1", keys, err)
				}
			}
		})
	}
}
