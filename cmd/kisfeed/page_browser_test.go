package main

// The market page in a real browser. chromedp rather than playwright:
// chromedp is a Go module that speaks the DevTools protocol to the
// browser directly, so the test needs Debian's Chromium and nothing else
// at test time (playwright-core would need node and an npm install on
// every machine that runs `go test`).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/httpapi"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/sqlite"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// pageMarketTime is a Friday, 10:00 KST, in the regular session: the
// emulator's market runs from it whatever the real date.
const pageMarketTime = "2026-11-27T10:00:00+09:00"

// chromiumPath finds Debian's Chromium, or skips naming what to install
// (outside CI; CI installs it, so there a missing browser fails).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "Chromium not found (/usr/bin/chromium): apt-get install chromium fonts-noto-cjk"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (.ci/run installs them)")
	}
	t.Skip(msg)
	return ""
}

// pageCandle is a bar as the page's chart holds it: time in seconds of
// KST wall time, written as UTC (lightweight-charts shows UTC).
type pageCandle struct {
	Time   int64 `json:"time"`
	Open   int64 `json:"open"`
	High   int64 `json:"high"`
	Low    int64 `json:"low"`
	Close  int64 `json:"close"`
	Volume int64 `json:"volume"`
}

type pageLevel struct {
	Price    int64 `json:"price"`
	Quantity int64 `json:"quantity"`
}

type pageBook struct {
	Asks []pageLevel `json:"asks"`
	Bids []pageLevel `json:"bids"`
}

// TestPageInBrowser loads / in headless Chromium against serve on the
// built-in emulator during simulated market hours: no console errors,
// the chart holds exactly the API's candles for each interval, the book
// the API's 10 + 10 levels, the picker works from the keyboard, and a
// screenshot is written (its path logged).
func TestPageInBrowser(t *testing.T) {
	t.Parallel()
	browser := chromiumPath(t)
	dir := t.TempDir()
	dbPath := seedRunsDB(t, filepath.Join(dir, "k.db"))
	a := &app{
		environ: []string{"LOG_LEVEL=warn", "KISFEED_MARKET_TIME=" + pageMarketTime,
			"KIS_TOKEN_FILE=" + filepath.Join(dir, "tokens.json"), "DATABASE_URL=sqlite:" + dbPath},
		stdin: strings.NewReader(""), stderr: io.Discard, clock: kisfeed.NewClock(time.Now, nil),
	}
	base, _ := startServe(t, a, "--access-log=false")

	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(filepath.Join(dir, "chromium")),
		chromedp.WindowSize(1280, 800))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()

	// Every console error, uncaught exception and browser-log error
	// (failed loads, CSP refusals) from the first navigation on.
	var mu sync.Mutex
	var problems []string
	const endMark = "kisfeed-test-end"
	seenEnd := make(chan struct{})
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleLog && m.Text == endMark {
				close(seenEnd)
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				mu.Unlock()
			}
		}
	}()

	run := func(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	// loaded waits until the page has drawn its chart, filled its book
	// and its status strip.
	loaded := chromedp.Poll[bool](`window.__kisfeed?.firstChart && __kisfeed.bookUpdates > 0 && document.querySelectorAll('#status li').length >= 6`,
		chromedp.WithPollingTimeout(30*time.Second))
	open := func(t *testing.T, query string) {
		t.Helper()
		run(t, chromedp.Navigate(base+"/"+query))
		if _, err := chromedp.Run(ctx, loaded); err != nil {
			t.Fatalf("page %s did not load: %v", query, err)
		}
	}
	run(t, chromedp.EmulateViewport(1280, 800))
	open(t, "?code=005930&interval=day")
	// Time to first chart, from navigation start to the first frame after
	// the candles were set, with its larger parts; a figure to report,
	// not a timed assertion.
	ttfc := evalJS[map[string]float64](t, ctx, `(() => {
		const r = (s) => performance.getEntriesByType('resource').find((e) => e.name.includes(s))?.duration ?? -1;
		return { first: __kisfeed.firstChartMs, dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
			candles: r('/candles?'), lib: r('lightweight-charts.standalone') };
	})()`)
	t.Logf("time to first chart: %.0f ms (DOMContentLoaded at %.0f ms; candles request %.0f ms; chart library load %.0f ms)",
		ttfc["first"], ttfc["dcl"], ttfc["candles"], ttfc["lib"])

	t.Run("book equals the API", func(t *testing.T) {
		checkBook(t, ctx, base, "005930")
	})

	for _, iv := range []string{"week", "month", "minute", "day"} {
		t.Run("candles "+iv, func(t *testing.T) {
			run(t, chromedp.Click(`#intervals button[data-interval="`+iv+`"]`))
			if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`__kisfeed.candlesURL.endsWith('interval=`+iv+`')`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
				t.Fatalf("chart did not switch to %s: %v", iv, err)
			}
			if got := evalJS[string](t, ctx, `location.search`); got != "?code=005930&interval="+iv {
				t.Errorf("URL query: got %q, want ?code=005930&interval=%s", got, iv)
			}
			checkCandles(t, ctx, base)
		})
	}

	t.Run("picker by keyboard", func(t *testing.T) {
		evalJS[bool](t, ctx, `(document.querySelector('#pick').value = '', true)`)
		run(t, chromedp.Focus(`#pick`), chromedp.SendKeys(`#pick`, "하이닉스"))
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#picks li[aria-selected="true"]')?.textContent.includes('000660')`,
			chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			t.Fatalf("no option for 하이닉스: %v", err)
		}
		run(t, chromedp.KeyEvent("\r"))
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`__kisfeed.candlesURL.includes('/000660/')`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("Enter did not load 000660: %v", err)
		}
		if got := evalJS[string](t, ctx, `location.search`); got != "?code=000660&interval=day" {
			t.Errorf("URL query: got %q, want ?code=000660&interval=day", got)
		}
		if got := evalJS[string](t, ctx, `document.querySelector('#title').textContent`); !strings.Contains(got, "SK하이닉스") {
			t.Errorf("title: got %q, want the Korean name SK하이닉스", got)
		}
		checkCandles(t, ctx, base)
	})

	t.Run("applyTrade", func(t *testing.T) {
		// The live module's candle arithmetic, ready for the stream.
		got := evalJS[[]string](t, ctx, `import('/ui/live.js').then((m) => {
			const K = 9 * 3600, t0 = Date.parse('2026-11-27T10:00:00+09:00') / 1000 + K;
			const last = { time: t0, open: 100, high: 110, low: 90, close: 105 };
			const cases = [
				['same minute', m.applyTrade(last, 50, { time: '2026-11-27T10:00:30+09:00', price: 120, volume: 7 }, 'minute'),
					{ bar: { time: t0, open: 100, high: 120, low: 90, close: 120 }, volume: 57 }],
				['next minute', m.applyTrade(last, 50, { time: '2026-11-27T10:01:05+09:00', price: 80, volume: 3 }, 'minute'),
					{ bar: { time: t0 + 60, open: 80, high: 80, low: 80, close: 80 }, volume: 3 }],
				['older trade', m.applyTrade(last, 50, { time: '2026-11-27T09:59:59+09:00', price: 80, volume: 3 }, 'minute'), null],
				['day takes cum_volume', m.applyTrade({ ...last, time: t0 - 10 * 3600 }, 50, { time: '2026-11-27T10:00:30+09:00', price: 85, volume: 3, cum_volume: 900 }, 'day'),
					{ bar: { time: t0 - 10 * 3600, open: 100, high: 110, low: 85, close: 85 }, volume: 900 }],
				['week from Monday', m.applyTrade({ ...last, time: t0 - 4 * 86400 - 10 * 3600 }, 50, { time: '2026-11-27T10:00:30+09:00', price: 101, volume: 3 }, 'week'),
					{ bar: { time: t0 - 4 * 86400 - 10 * 3600, open: 100, high: 110, low: 90, close: 101 }, volume: 53 }],
				['new month', m.applyTrade({ ...last, time: Date.parse('2026-10-01T00:00:00Z') / 1000 }, 50, { time: '2026-11-27T10:00:30+09:00', price: 99, volume: 3 }, 'month'),
					{ bar: { time: Date.parse('2026-11-01T00:00:00Z') / 1000, open: 99, high: 99, low: 99, close: 99 }, volume: 3 }],
			];
			return cases.filter(([, got, want]) => JSON.stringify(got) !== JSON.stringify(want))
				.map(([name, got, want]) => name + ': got ' + JSON.stringify(got) + ', want ' + JSON.stringify(want));
		})`, chromedp.EvalAwaitPromise)
		for _, g := range got {
			t.Error(g)
		}
	})

	t.Run("live trade moves the last candle", func(t *testing.T) {
		if code := streamStatus(t, base); code == http.StatusNotFound {
			t.Skip("GET /v1/stream answers 404: this serve has no stream yet, so the page polls the book; the check runs once the stream lands")
		}
		open(t, "?code=005930&interval=minute")
		// A trade at the bar's close within its range moves only its
		// volume, so the volume is compared too.
		before := evalJS[[]pageCandle](t, ctx, `(() => { const v = __kisfeed.volume(); return __kisfeed.candles().map((c, i) => ({ ...c, volume: v[i].value })); })()`)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`__kisfeed.mode === 'live' && __kisfeed.trades > 0`, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("no live trade reached the page within 15 s: %v", err)
		}
		after := evalJS[[]pageCandle](t, ctx, `(() => { const v = __kisfeed.volume(); return __kisfeed.candles().map((c, i) => ({ ...c, volume: v[i].value })); })()`)
		if len(before) > 0 && len(after) == len(before) && after[len(after)-1] == before[len(before)-1] {
			t.Errorf("last candle unchanged after a live trade: %+v", after[len(after)-1])
		}
	})

	t.Run("screenshots", func(t *testing.T) {
		run(t, chromedp.EmulateViewport(1280, 800))
		open(t, "?code=005930&interval=day")
		shot := filepath.Join(dir, "page-1280x800.png")
		writeShot(t, ctx, shot)
		t.Logf("screenshot at 1280×800: %s", shot)
		for _, want := range []string{"#chart canvas", "#book tr.ask", "#book tr.bid", "#status li"} {
			if n := evalJS[int](t, ctx, `document.querySelectorAll('`+want+`').length`); n == 0 {
				t.Errorf("%s: none on the page", want)
			}
		}
		run(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		open(t, "?code=005930&interval=day")
		if w := evalJS[[]int](t, ctx, `[document.documentElement.scrollWidth, innerWidth]`); w[0] > w[1] {
			t.Errorf("phone width: page is %d px wide in a %d px viewport", w[0], w[1])
		}
		phone := filepath.Join(dir, "page-390x844.png")
		writeShot(t, ctx, phone)
		t.Logf("screenshot at phone width: %s", phone)
	})

	// The console is read in order: once the mark logged last is seen,
	// every message before it has been.
	evalJS[bool](t, ctx, `(console.log('`+endMark+`'), true)`)
	select {
	case <-seenEnd:
	case <-ctx.Done():
		t.Errorf("browser console: the end mark never arrived: %v", ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser console: %s", p)
	}
}

// checkCandles compares the chart's bars with the API's answer to the
// URL the page asked (the page may refresh meanwhile: then a second
// reading must agree).
func checkCandles(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	var diff string
	for range 2 {
		url := evalJS[string](t, ctx, `__kisfeed.candlesURL`)
		bars := evalJS[[]pageCandle](t, ctx, `(() => { const v = __kisfeed.volume(); return __kisfeed.candles().map((c, i) => ({ ...c, volume: v[i].value })); })()`)
		var api struct {
			Bars []struct {
				Time                           time.Time
				Open, High, Low, Close, Volume int64
			} `json:"bars"`
		}
		getJSON(t, base+url, &api)
		want := make([]pageCandle, len(api.Bars))
		for i, b := range api.Bars {
			_, off := b.Time.Zone()
			want[i] = pageCandle{Time: b.Time.Unix() + int64(off), Open: b.Open, High: b.High, Low: b.Low, Close: b.Close, Volume: b.Volume}
		}
		if len(want) == 0 {
			t.Fatalf("%s: the API returned no bars", url)
		}
		if reflect.DeepEqual(bars, want) || movedOn(bars, want) {
			return
		}
		diff = fmt.Sprintf("%s: chart has %d bars, API %d; first chart %+v, API %+v; last chart %+v, API %+v",
			url, len(bars), len(want), first(bars), first(want), last(bars), last(want))
	}
	t.Error(diff)
}

// movedOn reports whether the chart shows the API's bars exactly except
// for the last, which live trades moved on since the API's (cached) answer:
// same time and open, a range that only widened and a volume that only
// grew. During market hours the page's stream updates the last bar, so
// an exact comparison would race with it.
func movedOn(chart, api []pageCandle) bool {
	n := len(api)
	if len(chart) != n || n == 0 || !reflect.DeepEqual(chart[:n-1], api[:n-1]) {
		return false
	}
	c, a := chart[n-1], api[n-1]
	return c.Time == a.Time && c.Open == a.Open && c.High >= a.High && c.Low <= a.Low && c.Volume >= a.Volume
}

// checkBook compares the ladder shown with the API's book, allowing the
// page one more update to catch up with a book that moved.
func checkBook(t *testing.T, ctx context.Context, base, code string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		n := evalJS[int](t, ctx, `__kisfeed.bookUpdates`)
		var api pageBook
		getJSON(t, base+"/v1/stocks/"+code+"/orderbook", &api)
		shown := evalJS[pageBook](t, ctx, `__kisfeed.book()`)
		if len(api.Asks) != 10 || len(api.Bids) != 10 {
			t.Fatalf("API book: %d asks, %d bids; want 10 + 10", len(api.Asks), len(api.Bids))
		}
		if reflect.DeepEqual(shown, api) {
			return
		}
		if attempt == 1 {
			t.Fatalf("book shown %+v, want the API's %+v", shown, api)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`__kisfeed.bookUpdates > %d`, n), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("book shown %+v differs from the API's %+v and was not updated: %v", shown, api, err)
		}
	}
}

// streamStatus asks GET /v1/stream for its status line only.
func streamStatus(t *testing.T, base string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream?codes=005930&kinds=trade,book", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// writeShot writes a PNG of the whole page to path, and a copy into
// KISFEED_PAGE_SHOTS when it names a directory (t.TempDir is removed
// when the test ends; the copy is for looking at it afterwards).
func writeShot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if keep := os.Getenv("KISFEED_PAGE_SHOTS"); keep != "" {
		if err := os.WriteFile(filepath.Join(keep, filepath.Base(path)), png, 0o644); err != nil {
			t.Errorf("KISFEED_PAGE_SHOTS: %v", err)
		}
	}
}

// seedRunsDB writes an ingestion database with one finished run, for
// the status strip's list.
func seedRunsDB(t *testing.T, path string) string {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Date(2026, 11, 26, 16, 5, 0, 0, kisfeed.KST)
	run := &kisfeed.IngestionRun{StartedAt: start, From: kisfeed.Date(2026, 11, 26), To: kisfeed.Date(2026, 11, 26), Path: "candles"}
	if err := db.StartRun(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	run.Status, run.FinishedAt, run.Universe, run.Written, run.Fetched = kisfeed.RunSucceeded, start.Add(3*time.Minute), 2700, 2700, 2700
	if err := db.FinishRun(t.Context(), *run); err != nil {
		t.Fatal(err)
	}
	return path
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluating %.60q: %v", expr, err)
	}
	return v
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func first[T any](s []T) (v T) {
	if len(s) > 0 {
		v = s[0]
	}
	return v
}

func last[T any](s []T) (v T) {
	if len(s) > 0 {
		v = s[len(s)-1]
	}
	return v
}

// degradedSource serves stale order books and no candles (the upstream
// down with nothing cached), for the page's banners.
type degradedSource struct{ kisfeed.Source }

func (s degradedSource) OrderBook(ctx context.Context, code kisfeed.Code) (*kisfeed.OrderBook, error) {
	b, err := s.Source.OrderBook(ctx, code)
	if b != nil {
		b.Meta.Origin, b.Meta.Stale = kisfeed.OriginStale, true
	}
	return b, err
}

func (s degradedSource) Candles(context.Context, kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	return nil, fmt.Errorf("candles: %w", kisfeed.ErrUnavailable)
}

// TestPageBannersInBrowser: a stale book and an upstream that cannot
// answer each raise a banner, and the stale book is still shown.
func TestPageBannersInBrowser(t *testing.T) {
	t.Parallel()
	browser := chromiumPath(t)
	dir := t.TempDir()
	market := func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, kisfeed.KST) }
	a := &app{
		environ: []string{"LOG_LEVEL=warn"}, stdin: strings.NewReader(""), stderr: io.Discard, clock: kisfeed.NewClock(time.Now, nil),
		newUpstream: func(context.Context, config.Config, *slog.Logger) (*upstream, error) {
			return &upstream{Source: degradedSource{synthetic.NewSource(sim.New(1), kisfeed.Clock{Market: market})}, Clock: kisfeed.Clock{Market: market},
				Close: func() error { return nil }}, nil
		},
	}
	base, _ := startServe(t, a, "--access-log=false")
	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(filepath.Join(dir, "chromium")))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	defer cancelTimeout()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/?code=005930&interval=day")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Stale order book", "Upstream unavailable"} {
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!document.querySelector('#banner').hidden && document.querySelector('#banner').textContent.includes('`+want+`')`,
			chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Errorf("banner %q: not shown: %v", want, err)
		}
	}
	if n := evalJS[int](t, ctx, `__kisfeed.book().asks.length + __kisfeed.book().bids.length`); n != 20 {
		t.Errorf("stale book: %d levels shown, want 20", n)
	}
}

// TestPageLiveInBrowser runs the page's stream code (live.js) against a
// stand-in for GET /v1/stream in front of serve, with the event shapes the
// stream is to send: the page switches to live, a book event fills the
// ladder, a trade moves the last candle and reaches the tape, and a gap
// raises its banner. It checks the page's half now; the stream's own
// test belongs with the stream.
func TestPageLiveInBrowser(t *testing.T) {
	t.Parallel()
	browser := chromiumPath(t)
	dir := t.TempDir()
	a := &app{
		environ: []string{"LOG_LEVEL=warn", "KISFEED_MARKET_TIME=" + pageMarketTime, "KIS_TOKEN_FILE=" + filepath.Join(dir, "tokens.json")},
		stdin:   strings.NewReader(""), stderr: io.Discard, clock: kisfeed.NewClock(time.Now, nil),
	}
	base, _ := startServe(t, a, "--access-log=false")
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	book := pageBook{}
	for i := range 10 {
		book.Asks = append(book.Asks, pageLevel{Price: 80100 + int64(i)*100, Quantity: int64(100 + i)})
		book.Bids = append(book.Bids, pageLevel{Price: 80000 - int64(i)*100, Quantity: int64(200 + i)})
	}
	const tradePrice = 81000
	gap := make(chan struct{})
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError) // the page's polls cut off as the browser closes
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/openapi.json": // the document of a server that has the stream
			var doc map[string]any
			_ = json.Unmarshal(httpapi.OpenAPI, &doc)
			doc["paths"].(map[string]any)["/v1/stream"] = map[string]any{"get": map[string]any{}}
			_ = json.NewEncoder(w).Encode(doc)
		case "/v1/stream":
			if r.URL.Query().Get("codes") != "005930" || r.URL.Query().Get("kinds") != "trade,book" {
				http.Error(w, "want codes=005930&kinds=trade,book", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			bookJSON, _ := json.Marshal(map[string]any{"code": "005930", "time": "2026-11-27T10:00:20+09:00", "asks": book.Asks, "bids": book.Bids})
			fmt.Fprintf(w, "event: book\ndata: %s\n\n", bookJSON)
			fmt.Fprintf(w, "event: trade\ndata: {\"code\":\"005930\",\"time\":\"2026-11-27T10:00:30+09:00\",\"price\":%d,\"volume\":7,\"cum_volume\":123456789}\n\n", tradePrice)
			http.NewResponseController(w).Flush()
			select {
			case <-gap:
				fmt.Fprint(w, "event: gap\ndata: {\"code\":\"005930\",\"time\":\"2026-11-27T10:00:40+09:00\"}\n\n")
				http.NewResponseController(w).Flush()
				<-r.Context().Done()
			case <-r.Context().Done():
			}
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	defer front.Close()
	defer close(gap)

	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(filepath.Join(dir, "chromium")))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	defer cancelTimeout()
	if err := chromedp.Do(ctx, chromedp.Navigate(front.URL+"/?code=005930&interval=day")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.__kisfeed?.firstChart && __kisfeed.mode === 'live' && __kisfeed.trades > 0`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("page did not go live with a trade: %v", err)
	}
	if got := evalJS[pageBook](t, ctx, `__kisfeed.book()`); !reflect.DeepEqual(got, book) {
		t.Errorf("book from the stream: shown %+v, want %+v", got, book)
	}
	bars := evalJS[[]pageCandle](t, ctx, `__kisfeed.candles()`)
	vols := evalJS[[]pageCandle](t, ctx, `__kisfeed.volume().map((v) => ({ time: v.time, volume: v.value }))`)
	if l := last(bars); l.Close != tradePrice || l.High < tradePrice || last(vols).Volume != 123456789 {
		t.Errorf("last day candle after the trade: %+v volume %d, want close %d and the trade's cum_volume 123456789", l, last(vols).Volume, tradePrice)
	}
	if got := evalJS[string](t, ctx, `document.querySelector('#tape li')?.textContent ?? ''`); !strings.Contains(got, "81,000") {
		t.Errorf("trade tape: got %q, want the trade at 81,000", got)
	}
	select {
	case gap <- struct{}{}:
	case <-ctx.Done():
		t.Fatalf("the page's stream connection was gone before the gap: %v", ctx.Err())
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#banner').textContent.includes('Gap in the live stream')`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Errorf("gap banner: not shown: %v", err)
	}
}
