package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/jsonview"
	"github.com/kisfeed/kisfeed/internal/wiring"
	"github.com/kisfeed/kisfeed/kis"
	"github.com/kisfeed/kisfeed/kis/stream"
	"github.com/kisfeed/kisfeed/krx"
)

// watchQueue bounds the events waiting for the printer. The stream's
// handler runs on a session's reader goroutine and must not block (KIS
// drops a session that stops reading), so when the terminal or pipe is
// slower than the market the newest events are dropped and counted.
const watchQueue = 4096

// redrawEvery is how often the terminal table is redrawn (when it
// changed): fast enough to look live, slow enough not to flicker.
const redrawEvery = 200 * time.Millisecond

const watchLong = `Stream every trade (and, with --book, every order-book change) of the
given stocks over KIS's real-time WebSocket (H0STCNT0/H0STASP0; with
KIS_STREAM_TRS=integrated H0UNCNT0/H0UNASP0, KRX+NXT) until Ctrl-C or
--duration.

With no configuration it streams from the built-in KIS emulator's
synthetic market; with KIS_APP_KEY it streams from KIS. The WebSocket URL
is KIS_WS_URL, else KIS_BASE_URL's host at /tryitout, else KIS's own
(port 21000 real, 31000 mock). Every configured app key (KIS_APP_KEY and
KIS_APP_KEYS) gets one session holding at most 41 registrations (a code's
trades and its book are one each), so codes spread over the keys; more
than 41 × keys registrations is refused. Approval keys are kept in
KIS_APPROVAL_FILE (default: approval-keys.json next to the token file)
and reused for their 24 h. ENABLE_KIS_API=false (the in-process synthetic
market) has no real-time feed and is refused.

Output: on a terminal, a table redrawn in place, one row per code (time and
price of the last trade, change, change rate, that trade's volume, the
day's cumulative volume, best bid/ask and lag = receive time − execution
time; KIS stamps whole seconds), and with --book a 10-level ladder under
each code. Into a pipe or file, one line per event; with --json, one JSON
object per line (NDJSON): {"type":"trade",...}, {"type":"book",...},
{"type":"gap",...} — the same shapes as the HTTP API's streamed events.

Gaps: a dropped session (network, KIS's weekly restart, a silent server
caught by the watchdog, KIS_STREAM_WATCHDOG) is reconnected quietly with
backoff and every registration restored; each code then gets one gap
event saying from when to when its trades may be missing. Cumulative
fields (cum_volume, cum_value, open/high/low) are the day's totals, so
the first trade after a gap is whole again.

Market hours: KRX trades 09:00–15:30 KST on trading days; outside them
nothing arrives (a line on stderr says so). The built-in emulator follows
KISFEED_MARKET_TIME, e.g. KISFEED_MARKET_TIME="2026-11-27 10:00".

On Ctrl-C (or SIGTERM, or at --duration) it closes the sessions, prints
one summary line on stderr (events, gaps, reconnects) and exits 0.

A session that cannot start (refused credentials, a wrong KIS_WS_URL) is
retried with backoff like a drop; one stderr line per key says why.

Exit status: 0 stopped by Ctrl-C/--duration; 1 the upstream could not be
set up; 2 bad usage or configuration (a bad code, too many codes for the
keys, ENABLE_KIS_API=false).`

const watchExample = `  kisfeed watch 005930
  kisfeed watch 005930 000660 --book
  kisfeed watch 005930 000660 --json | jq -c 'select(.type=="trade") | [.code,.time,.price,.cum_volume]'
  KISFEED_MARKET_TIME="2026-11-27 10:00" kisfeed watch 005930 --json --duration 30s`

// watchOptions are the flags of watch.
type watchOptions struct {
	book     bool
	json     bool
	duration time.Duration
}

func newWatchCmd(a *app) *cobra.Command {
	var o watchOptions
	c := &cobra.Command{
		Use:     "watch CODE...",
		Short:   "Stream real-time trades and order books (KIS WebSocket)",
		Long:    watchLong,
		Example: watchExample,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			codes, err := parseCodes(args)
			if err != nil {
				return err
			}
			codes = kisfeed.UniqueCodes(codes)
			if o.duration < 0 {
				return usageError("watch: --duration %s: want 0 (until Ctrl-C) or more", o.duration)
			}
			return a.watch(cmd.Context(), codes, o)
		},
	}
	c.Flags().BoolVar(&o.book, "book", false, "stream the 10-level order books too (one more registration per code)")
	c.Flags().BoolVar(&o.json, "json", false, "print NDJSON: one trade, book or gap object per line")
	c.Flags().DurationVar(&o.duration, "duration", 0, "stop after this long, e.g. 30s (0: until Ctrl-C)")
	return c
}

// watch streams codes until ctx is done or the duration passes.
func (a *app) watch(ctx context.Context, codes []kisfeed.Code, o watchOptions) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	if cfg.Mode() == config.ModeMock {
		return withExit(2, errors.New("watch: ENABLE_KIS_API=false selects the in-process synthetic market, which has no real-time feed; "+
			"unset ENABLE_KIS_API to stream from the built-in emulator, or set KIS_APP_KEY to stream from KIS"))
	}
	log := a.logger(cfg)
	up, err := a.upstream(ctx, cfg, log)
	if err != nil {
		return withExit(1, err)
	}
	defer func() {
		if up.Close != nil {
			_ = up.Close()
		}
	}()
	w := &watcher{a: a, o: o, codes: codes, events: make(chan stream.Event, watchQueue), started: time.Now()}
	client, err := a.streamClient(cfg, up, log, w)
	if err != nil {
		return err
	}
	w.client = client

	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	kinds := []stream.Kind{stream.KindTrade}
	if o.book {
		kinds = append(kinds, stream.KindBook)
	}
	for _, c := range codes {
		if err := client.Subscribe(ctx, c.String(), kinds...); err != nil {
			if errors.Is(err, stream.ErrSubscriptionLimit) {
				return withExit(2, fmt.Errorf("watch: %w; add app keys (KIS_APP_KEYS) or watch fewer codes", err))
			}
			if ctx.Err() != nil {
				break
			}
			return withExit(1, fmt.Errorf("watch: %w", err))
		}
	}
	if now := up.Clock.MarketNow(); !krx.IsOpen(now) {
		fmt.Fprintf(a.stderr, "kisfeed: watch: the market is closed at %s KST (KRX trades 09:00–15:30 on trading days; next boundary %s): nothing arrives until it opens\n",
			now.In(kisfeed.KST).Format("2006-01-02 15:04"), krx.NextBoundary(now).Format("2006-01-02 15:04"))
	}

	printed := make(chan struct{})
	go func() { defer close(printed); w.print(ctx) }() // ends when events closes
	_ = client.Run(ctx)                                // returns ctx's error once every session is closed
	close(w.events)
	<-printed
	w.summary()
	return nil
}

// streamClient builds the stream client for the configured upstream: in
// embedded mode the built-in emulator's demo key with approval keys in
// memory (the emulator forgets them when it stops), else every configured
// app key with approval keys in the file store.
func (a *app) streamClient(cfg config.Config, up *upstream, log *slog.Logger, w *watcher) (*stream.Client, error) {
	var creds []stream.Credentials
	var store kis.ApprovalKeyStore
	if cfg.Mode() == config.ModeEmbedded {
		creds = wiring.DemoStreamCredentials()
		store = kis.NewMemoryApprovalKeyStore()
	} else {
		keys, err := cfg.Keys()
		if err != nil {
			return nil, withExit(2, err)
		}
		for _, k := range keys {
			creds = append(creds, stream.Credentials{AppKey: k.Key, AppSecret: k.Secret.Reveal()})
		}
		store, err = approvalStore(cfg, log)
		if err != nil {
			return nil, withExit(2, err)
		}
	}
	trs := stream.KRX
	if cfg.StreamTRs == "integrated" {
		trs = stream.Integrated
	}
	// The stream's own log lines (session up/down, reconnecting) would
	// bury the output under every drop; watch reports drops as gap events
	// and first failures through the observer, and shows the log only at
	// LOG_LEVEL=debug.
	streamLog := slog.New(slog.DiscardHandler)
	if cfg.LogLevel == "debug" {
		streamLog = log.With("component", "stream")
	}
	c, err := stream.New(stream.Config{Keys: creds, RESTBaseURL: up.BaseURL, WSURL: cfg.WebSocketURL(up.BaseURL),
		TRs: trs, ApprovalStore: store, Handler: w.handle},
		stream.WithClock(up.Clock.MarketNow), stream.WithWatchdog(cfg.StreamWatchdog),
		stream.WithSubscribePace(cfg.StreamSubscribeRate, stream.DefaultSubscribeBurst),
		stream.WithLogger(streamLog), stream.WithObserver(&watchObserver{w: w}))
	if err != nil {
		return nil, withExit(2, fmt.Errorf("watch: %w", err))
	}
	return c, nil
}

// approvalStore is the file store at cfg.ApprovalPath(); memory (with a
// warning) when the default place is unusable, an error when
// KIS_APPROVAL_FILE names an unusable one.
func approvalStore(cfg config.Config, log *slog.Logger) (kis.ApprovalKeyStore, error) {
	path := cfg.ApprovalPath()
	if path == "" {
		log.Warn("no approval key file; approval keys will not survive a restart")
		return kis.NewMemoryApprovalKeyStore(), nil
	}
	fs, err := kis.NewFileApprovalKeyStore(path)
	switch {
	case err == nil:
		return fs, nil
	case cfg.ApprovalFile != "":
		return nil, fmt.Errorf("KIS_APPROVAL_FILE=%s: %w", cfg.ApprovalFile, err)
	}
	log.Warn("no approval key file; approval keys will not survive a restart", "err", err)
	return kis.NewMemoryApprovalKeyStore(), nil
}

// watcher turns events into output. handle runs on the sessions' reader
// goroutines and only queues; print, one goroutine, owns the output.
type watcher struct {
	a       *app
	o       watchOptions
	codes   []kisfeed.Code
	client  *stream.Client
	events  chan stream.Event
	started time.Time

	trades, books, gaps, dropped atomic.Int64

	// warned guards the one-line notices the observer prints.
	warnMu sync.Mutex
	warned map[string]bool
}

// handle queues e for the printer, dropping it when the queue is full.
func (w *watcher) handle(e stream.Event) {
	select {
	case w.events <- e:
	default:
		w.dropped.Add(1)
	}
}

// notice prints msg on stderr once per key.
func (w *watcher) notice(key, msg string) {
	w.warnMu.Lock()
	defer w.warnMu.Unlock()
	if w.warned == nil {
		w.warned = map[string]bool{}
	}
	if w.warned[key] {
		return
	}
	w.warned[key] = true
	fmt.Fprintln(w.a.stderr, "kisfeed: watch:", msg)
}

// print writes every queued event until the queue is closed.
func (w *watcher) print(ctx context.Context) {
	switch {
	case w.o.json:
		enc := json.NewEncoder(w.a.stdout)
		enc.SetEscapeHTML(false)
		for e := range w.events {
			w.count(e)
			var v any
			switch e.Kind {
			case stream.EventTrade:
				v = jsonview.NewTrade(e.Trade)
			case stream.EventBook:
				v = jsonview.NewBook(e.Book)
			case stream.EventGap:
				v = jsonview.NewGap(e.Gap)
			default:
				continue
			}
			_ = enc.Encode(v)
		}
	case isTerminal(w.a.stdout):
		w.table(ctx)
	default:
		for e := range w.events {
			w.count(e)
			if line := eventLine(e); line != "" {
				fmt.Fprintln(w.a.stdout, line)
			}
		}
	}
}

func (w *watcher) count(e stream.Event) {
	switch e.Kind {
	case stream.EventTrade:
		w.trades.Add(1)
	case stream.EventBook:
		w.books.Add(1)
	case stream.EventGap:
		w.gaps.Add(1)
	}
}

// summary is the one line on stderr at the end.
func (w *watcher) summary() {
	st := w.client.Stats()
	events := w.trades.Load() + w.books.Load() + w.gaps.Load()
	line := fmt.Sprintf("kisfeed: watch: %d events (%d trades, %d books), %d gaps, %d reconnects, %d parse errors in %s",
		events, w.trades.Load(), w.books.Load(), w.gaps.Load(), st.Reconnects, st.ParseErrors,
		time.Since(w.started).Round(100*time.Millisecond))
	if d := w.dropped.Load(); d > 0 {
		line += fmt.Sprintf("; %d events dropped (output slower than the feed)", d)
	}
	fmt.Fprintln(w.a.stderr, line)
}

// watchObserver turns the stream's first connection failures and
// refusals into one stderr line each; drops stay quiet (gap events).
type watchObserver struct {
	stream.NopObserver
	w  *watcher
	up sync.Map // key id → a session has been up
}

// SessionUp implements stream.Observer.
func (o *watchObserver) SessionUp(key string) { o.up.Store(key, true) }

// Reconnect implements stream.Observer: a key that never got a session
// up says why once.
func (o *watchObserver) Reconnect(key, reason string) {
	if _, ok := o.up.Load(key); ok {
		return
	}
	switch reason {
	case "dial", "approval", "approval_refused", "key_in_use":
		o.w.notice(key+reason, fmt.Sprintf("%s: cannot start a session (%s); retrying with backoff (LOG_LEVEL=debug shows the details)", key, reasonText(reason)))
	}
}

// SubscribeRefused implements stream.Observer.
func (o *watchObserver) SubscribeRefused(key, trID, msgCode string) {
	o.w.notice(key+trID+msgCode, fmt.Sprintf("%s: KIS refused a %s registration (%s)", key, trID, msgCode))
}

func reasonText(reason string) string {
	switch reason {
	case "dial":
		return "the WebSocket handshake failed; check KIS_WS_URL"
	case "approval":
		return "no approval key: the REST server is unreachable or refused the app key"
	case "approval_refused":
		return "KIS refused the approval key"
	case "key_in_use":
		return "OPSP8996: another session holds this app key"
	}
	return reason
}

// eventLine is the one-line text form of e.
func eventLine(e stream.Event) string {
	switch e.Kind {
	case stream.EventTrade:
		t := e.Trade
		return fmt.Sprintf("%s %s trade %s %s %s%%  vol %s  cum %s  bid %s ask %s  %s",
			hms(t.Time), t.Code, commas(t.Price), signed(t.Change), signedRate(t.ChangeRate),
			commas(t.Volume), commas(t.CumVolume), commas(t.Bid), commas(t.Ask), t.Side)
	case stream.EventBook:
		b := e.Book
		return fmt.Sprintf("%s %s book  bid %s×%s ask %s×%s  total bid %s ask %s",
			hms(b.Time), b.Code, commas(b.Bids[0].Price), commas(b.Bids[0].Quantity),
			commas(b.Asks[0].Price), commas(b.Asks[0].Quantity), commas(b.TotalBidQty), commas(b.TotalAskQty))
	case stream.EventGap:
		g := e.Gap
		return fmt.Sprintf("%s %s gap   %s–%s (%s): trades in between may be missing",
			hms(g.To), g.Code, hms(g.From), hms(g.To), g.Reason)
	}
	return ""
}

func hms(t time.Time) string {
	if t.IsZero() {
		return "--:--:--"
	}
	return t.In(kisfeed.KST).Format("15:04:05")
}

// numbers prints integers with thousands separators (x/text's printer,
// the English convention Korean screens use for prices: 71,000).
var numbers = message.NewPrinter(language.English)

// commas formats n with thousands separators.
func commas(n int64) string { return numbers.Sprint(n) }

func signed(n int64) string {
	if n > 0 {
		return "+" + commas(n)
	}
	return commas(n)
}

func signedRate(r float64) string { return fmt.Sprintf("%+.2f", r) }
