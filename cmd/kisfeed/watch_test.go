package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/jsonview"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// watchWait bounds every wait of these tests on the feed; the built-in
// emulator trades both codes within a few seconds of 10:00.
const watchWait = 30 * time.Second

// watchMarket is a Friday, 10:00 KST: inside KRX hours whatever today is.
const watchMarket = "2026-11-27T10:00:00+09:00"

// sink is a concurrency-safe writer that signals every write.
type sink struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // cap 1
}

func newSink() *sink { return &sink{wrote: make(chan struct{}, 1)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.buf.Write(p)
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// watchEnv is the environment of an embedded-mode watch at watchMarket.
func watchEnv(t *testing.T) []string {
	return []string{"KISFEED_MARKET_TIME=" + watchMarket, "LOG_LEVEL=warn",
		"KIS_APPROVAL_FILE=" + t.TempDir() + "/approval.json"}
}

// startWatch runs `kisfeed args...` in-process until the returned cancel;
// wait returns its exit code.
func startWatch(t *testing.T, environ []string, args ...string) (stdout, stderr *sink, cancel func(), wait func() int) {
	t.Helper()
	stdout, stderr = newSink(), newSink()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- run(ctx, args, environ, strings.NewReader(""), stdout, stderr)
	}()
	wait = func() int {
		select {
		case code := <-done:
			return code
		case <-time.After(watchWait):
			t.Fatalf("watch did not stop within %s; stderr %q", watchWait, stderr.String())
			return -1
		}
	}
	// Cancel and wait for run to return, also when the test ended without
	// calling wait (a failure): a watch still running after its test
	// could write into the test's temporary directories (the approval
	// key file) while they are removed.
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(watchWait):
			t.Errorf("watch did not stop within %s of its cancel; stderr %q", watchWait, stderr.String())
		}
	})
	return stdout, stderr, cancel, wait
}

// waitFor waits until cond holds on stdout's text.
func waitFor(t *testing.T, out *sink, what string, cond func(string) bool) {
	t.Helper()
	deadline := time.NewTimer(watchWait)
	defer deadline.Stop()
	for !cond(out.String()) {
		select {
		case <-out.wrote:
		case <-deadline.C:
			t.Fatalf("no %s within %s; stdout so far:\n%s", what, watchWait, out.String())
		}
	}
}

// trades decodes the trade lines of NDJSON text, per code in order.
func trades(t *testing.T, text string) map[string][]jsonview.Trade {
	t.Helper()
	out := map[string][]jsonview.Trade{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var head struct{ Type string }
		if err := json.Unmarshal(line, &head); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if head.Type != jsonview.TypeTrade {
			continue
		}
		var tr jsonview.Trade
		if err := json.Unmarshal(line, &tr); err != nil {
			t.Fatalf("trade %q: %v", line, err)
		}
		out[tr.Code] = append(out[tr.Code], tr)
	}
	return out
}

// completeSecond returns the last trade of the last second of ts that a
// later second follows: every execution of that second was sent (the
// feed sends each registration's executions in time order), so the
// quote at that second's last instant must agree with it. ok is false
// while ts spans a single second.
func completeSecond(ts []jsonview.Trade) (jsonview.Trade, bool) {
	if len(ts) == 0 {
		return jsonview.Trade{}, false
	}
	last := ts[len(ts)-1].Time
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].Time.Before(last) {
			return ts[i], true
		}
	}
	return jsonview.Trade{}, false
}

// TestWatchMatchesQuote is the watch bar: `kisfeed watch 005930 000660
// --json` against the built-in emulator prints trades whose cumulative
// volume never decreases per code, and the last trade of a second equals
// `kisfeed quote` at that second's last instant. The comparison is exact
// rather than "within one frame": the synthetic market is deterministic,
// so the quote runs on a stopped clock at that instant (KISFEED_MARKET_TIME
// set to it, the wall clock frozen) instead of racing the stream.
func TestWatchMatchesQuote(t *testing.T) {
	t.Parallel()
	codes := []string{"005930", "000660"}
	stdout, stderr, cancel, wait := startWatch(t, watchEnv(t), "watch", codes[0], codes[1], "--json")
	waitFor(t, stdout, "complete second of trades for both codes", func(text string) bool {
		by := trades(t, text)
		for _, c := range codes {
			if _, ok := completeSecond(by[c]); !ok {
				return false
			}
		}
		return true
	})
	cancel()
	if code := wait(); code != 0 {
		t.Fatalf("watch exit %d, want 0; stderr %q", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "kisfeed: watch: ") || !strings.Contains(stderr.String(), " gaps, ") {
		t.Errorf("stderr %q: want the one-line summary", stderr.String())
	}
	by := trades(t, stdout.String())
	for _, c := range codes {
		ts := by[c]
		for i := 1; i < len(ts); i++ {
			if ts[i].CumVolume < ts[i-1].CumVolume {
				t.Errorf("%s: cum_volume went from %d to %d at %s", c, ts[i-1].CumVolume, ts[i].CumVolume, ts[i].Time)
			}
			if ts[i].Time.Before(ts[i-1].Time) {
				t.Errorf("%s: time went back from %s to %s", c, ts[i-1].Time, ts[i].Time)
			}
		}
		last, _ := completeSecond(ts)
		at := last.Time.Add(time.Second - time.Nanosecond)
		q := quoteAt(t, c, at)
		t.Logf("%s: %d trades; at %s quote %d/%d, last trade %d/%d", c, len(ts), at.Format(time.RFC3339Nano), q.Price, q.Volume, last.Price, last.CumVolume)
		if q.Price != last.Price || q.Volume != last.CumVolume || q.High != last.High || q.Low != last.Low || q.Open != last.Open {
			t.Errorf("%s at %s: quote price %d volume %d OHLC %d/%d/%d; last trade price %d cum_volume %d OHLC %d/%d/%d",
				c, at.Format(time.RFC3339Nano), q.Price, q.Volume, q.Open, q.High, q.Low,
				last.Price, last.CumVolume, last.Open, last.High, last.Low)
		}
	}
}

// quoteAt runs `kisfeed quote CODE --json` against a fresh built-in
// emulator whose market clock stands still at at.
func quoteAt(t *testing.T, code string, at time.Time) jsonview.Quote {
	t.Helper()
	frozen := time.Now()
	a := &app{environ: []string{"KISFEED_MARKET_TIME=" + at.Format(time.RFC3339Nano), "LOG_LEVEL=warn"},
		clock: kisfeed.Clock{Wall: func() time.Time { return frozen }}}
	var out, errOut bytes.Buffer
	a.stdout, a.stderr, a.stdin = &out, &errOut, strings.NewReader("")
	if rc := a.exec(t.Context(), []string{"quote", code, "--json"}); rc != 0 {
		t.Fatalf("quote %s: exit %d, stderr %q", code, rc, errOut.String())
	}
	var q jsonview.Quote
	if err := json.Unmarshal(out.Bytes(), &q); err != nil {
		t.Fatalf("quote %s: %v in %q", code, err, out.String())
	}
	return q
}

// TestWatchCtrlC: a cancelled context (what SIGINT and SIGTERM do through
// main's signal.NotifyContext) ends watch with exit 0 and one summary
// line on stderr, after output has started.
func TestWatchCtrlC(t *testing.T) {
	t.Parallel()
	stdout, stderr, cancel, wait := startWatch(t, watchEnv(t), "watch", "005930", "--book")
	waitFor(t, stdout, "an event line", func(s string) bool { return strings.Contains(s, " 005930 ") })
	cancel()
	if code := wait(); code != 0 {
		t.Fatalf("exit %d, want 0; stderr %q", code, stderr.String())
	}
	var summary []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.HasPrefix(l, "kisfeed: watch: ") {
			summary = append(summary, l)
		}
	}
	if len(summary) != 1 || !strings.Contains(summary[0], " events (") || !strings.Contains(summary[0], " reconnects") {
		t.Errorf("stderr %q: want exactly one summary line with events, gaps and reconnects", stderr.String())
	}
}

func TestWatchUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		code    int
		want    string
	}{
		{"bad code named", nil, []string{"watch", "005930", "59300"}, 2, `stock code "59300"`},
		{"no code", nil, []string{"watch"}, 2, "requires at least 1 arg"},
		{"negative duration", nil, []string{"watch", "005930", "--duration", "-1s"}, 2, "--duration -1s"},
		{"synthetic market has no feed", []string{"ENABLE_KIS_API=false"}, []string{"watch", "005930"}, 2, "no real-time feed"},
		{"too many codes for one key", []string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s", "KIS_BASE_URL=http://127.0.0.1:1",
			"KIS_APPROVAL_FILE=" + t.TempDir() + "/a.json"}, append([]string{"watch", "--book"}, manyCodes(21)...), 2,
			"subscription limit reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, tc.environ, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

// manyCodes returns n distinct codes.
func manyCodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%06d", 100000+i)
	}
	return out
}

// TestWebSocketURLConstants: config repeats kis/stream's KIS URLs (it
// imports no KIS package); they must agree.
func TestWebSocketURLConstants(t *testing.T) {
	t.Parallel()
	if config.RealWSURL != stream.RealWSURL || config.MockWSURL != stream.MockWSURL {
		t.Errorf("config %s / %s, stream %s / %s", config.RealWSURL, config.MockWSURL, stream.RealWSURL, stream.MockWSURL)
	}
}

func TestWatchLines(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 10, 0, 1, 0, kisfeed.KST)
	var bk kisfeed.Book
	bk.Code, bk.Time, bk.TotalAskQty, bk.TotalBidQty = "005930", at, 53000, 61000
	bk.Asks[0], bk.Bids[0] = kisfeed.Level{Price: 71100, Quantity: 300}, kisfeed.Level{Price: 71000, Quantity: 1200}
	for _, tc := range []struct {
		name string
		e    stream.Event
		want string
	}{
		{"trade", stream.Event{Kind: stream.EventTrade, Trade: kisfeed.Trade{Code: "005930", Time: at, Price: 71000, Change: -1500,
			ChangeRate: -2.07, Volume: 12, CumVolume: 1234567, Bid: 71000, Ask: 71100, Side: kisfeed.SideSell}},
			"10:00:01 005930 trade 71,000 -1,500 -2.07%  vol 12  cum 1,234,567  bid 71,000 ask 71,100  sell"},
		{"book", stream.Event{Kind: stream.EventBook, Book: bk},
			"10:00:01 005930 book  bid 71,000×1,200 ask 71,100×300  total bid 61,000 ask 53,000"},
		{"gap", stream.Event{Kind: stream.EventGap, Gap: kisfeed.Gap{Code: "000660", From: at, To: at.Add(2 * time.Second), Reason: "dropped"}},
			"10:00:03 000660 gap   10:00:01–10:00:03 (dropped): trades in between may be missing"},
	} {
		if got := eventLine(tc.e); got != tc.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
	codes, err := parseCodes([]string{"005930", "000660", "005930"})
	if err != nil {
		t.Fatal(err)
	}
	if got := kisfeed.UniqueCodes(codes); len(got) != 2 || got[0].String() != "005930" || got[1].String() != "000660" {
		t.Errorf("UniqueCodes = %v, want [005930 000660]", got)
	}
}

// TestWatchTable renders one frame of the terminal table: a row per code
// (waiting until its first trade), a 10-level ladder each with --book,
// the counts, and the escape codes that redraw it in place.
func TestWatchTable(t *testing.T) {
	t.Parallel()
	client, err := stream.New(stream.Config{Keys: []stream.Credentials{{AppKey: "k", AppSecret: "s"}},
		WSURL: "ws://127.0.0.1:1/tryitout", RESTBaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	codes, _ := parseCodes([]string{"005930", "000660"})
	w := &watcher{o: watchOptions{book: true}, codes: codes, client: client}
	at := time.Date(2026, 11, 27, 10, 0, 1, 0, kisfeed.KST)
	st := &codeState{trade: kisfeed.Trade{Code: "005930", Time: at, Price: 71000, CumVolume: 1234567}, hasTrade: true,
		lag: 300 * time.Millisecond, hasBook: true}
	for i := range st.book.Asks {
		st.book.Asks[i] = kisfeed.Level{Price: 71100 + 100*int64(i), Quantity: 1}
		st.book.Bids[i] = kisfeed.Level{Price: 71000 - 100*int64(i), Quantity: 1}
	}
	var b bytes.Buffer
	w.render(&b, map[string]*codeState{"005930": st, "000660": {}}, "10:00:03 000660 gap …")
	out := b.String()
	for _, want := range []string{"\x1b[H", "CUM VOLUME", "005930  10:00:01", "71,000", "1,234,567", "0.3s",
		"000660  --:--:--     waiting", "(no book yet)", "last gap: 10:00:03 000660", "\x1b[J"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, " ask\x1b[K"); n != 10 {
		t.Errorf("%d ask levels, want 10", n)
	}
	if n := strings.Count(out, " bid\x1b[K"); n != 10 {
		t.Errorf("%d bid levels, want 10", n)
	}
}
