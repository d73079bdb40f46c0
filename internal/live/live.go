package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// DefaultLinger is how long a code stays registered with KIS after its
// last release. Consumers come back: a page reloads, an SSE client
// reconnects, a screen flips between two codes. Unregistering at once
// would turn each of those into an unsubscribe and a subscribe (paced
// messages KIS counts towards a "storm") and a resync of the cache, and
// the cache would stop being written through in between. 30 s covers a
// reconnect with backoff while handing an idle registration back (out of
// 41 per app key) within half a minute.
const DefaultLinger = 30 * time.Second

// Cache is where the stream writes through: *cache.Cache implements it.
type Cache interface {
	// PutTrade merges a trade into the cached quote (never backwards),
	// fetching a base quote when none of the trade's day is cached.
	PutTrade(ctx context.Context, t kisfeed.Trade) (bool, error)
	// PutBook replaces the cached order book unless it is newer.
	PutBook(ctx context.Context, b kisfeed.Book, source string) (bool, error)
	// RefreshQuote and RefreshOrderBook re-read a code from the upstream
	// (after a gap), bypassing the fresh copy.
	RefreshQuote(ctx context.Context, code kisfeed.Code) error
	RefreshOrderBook(ctx context.Context, code kisfeed.Code) error
}

// Config is what [New] needs; the wiring fills it from the configuration.
type Config struct {
	// Keys are every app key (KIS_APP_KEY and KIS_APP_KEYS): a session
	// each, up to 41 registrations each.
	Keys []stream.Credentials
	// RESTBaseURL is the REST base in use; approval keys are issued there.
	RESTBaseURL string
	// WSURL is the KIS WebSocket URL, as config.Config.WebSocketURL
	// derives it (the one derivation, shared with `kisfeed watch`).
	WSURL string
	// TRs, Watchdog and SubscribeRate configure the client (zero: its
	// defaults).
	TRs           stream.TRs
	Watchdog      time.Duration
	SubscribeRate float64
	// ApprovalStore keeps approval keys (a file, or Redis shared by the
	// replicas); nil = memory.
	ApprovalStore kis.ApprovalKeyStore
	// Codes are acquired by [Live.Start] for the process lifetime
	// (STREAM_CODES), trades and books both.
	Codes []kisfeed.Code
	// Linger is how long a code stays registered after its last release;
	// 0 = [DefaultLinger], < 0 = unregister at once.
	Linger time.Duration
	// Cache receives the write-through; nil = none.
	Cache Cache
	// Source is the provenance written books carry (Meta.Source); "kis"
	// when empty.
	Source string
	// Observer hears the client's sessions, frames, lag (metrics).
	Observer stream.Observer
	// Logger; discard when nil.
	Logger *slog.Logger
	// Clock: its market half stamps events and measures lag.
	Clock kisfeed.Clock
	// StreamOptions are appended to the client's options (tests: a short
	// backoff).
	StreamOptions []stream.Option
}

// Handler receives events. It runs on the KIS session's reader goroutine
// and must not block (see stream.Handler); Event is a value it may keep.
type Handler func(stream.Event)

// Live is the running stream: demand, the KIS client, consumers and the
// write-through. Build it with [New], then [Live.Start]; [Live.Close]
// closes the sessions.
type Live struct {
	cfg    Config
	client *stream.Client
	log    *slog.Logger
	linger time.Duration

	mu     sync.Mutex               // guards demand
	demand map[demandKey]*demandRef // (code, kind) → references

	lmu       sync.Mutex                  // serialises changes of listeners
	listeners atomic.Pointer[listenerSet] // read lock-free on the reader
	nextID    uint64                      // guarded by lmu
	wt        *writer                     // nil without Cache
	gaps      *gapLog

	cancel  context.CancelFunc
	runDone chan struct{}
	started bool // guarded by mu
}

type demandKey struct {
	code kisfeed.Code
	kind stream.Kind
}

// demandRef counts the holders of one registration.
type demandRef struct {
	refs  int         // holders now; 0 while lingering
	timer *time.Timer // the linger, while refs == 0
	gen   uint64      // bumped when the linger is cancelled, so a late timer does nothing
	life  bool        // held for the process lifetime (STREAM_CODES)
}

// New builds the stream client from cfg; nothing connects until a code
// is acquired after [Live.Start].
func New(cfg Config) (*Live, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Source == "" {
		cfg.Source = "kis"
	}
	l := &Live{cfg: cfg, log: log, demand: map[demandKey]*demandRef{}, linger: cfg.Linger}
	if l.linger == 0 {
		l.linger = DefaultLinger
	}
	l.listeners.Store(&listenerSet{byCode: map[string][]listener{}})
	l.gaps = newGapLog(log, gapQuiet, cfg.Cache != nil)
	opts := []stream.Option{stream.WithLogger(log)}
	if cfg.Observer != nil {
		opts = append(opts, stream.WithObserver(cfg.Observer))
	}
	if cfg.Clock.Market != nil {
		opts = append(opts, stream.WithClock(cfg.Clock.Market))
	}
	if cfg.Watchdog > 0 {
		opts = append(opts, stream.WithWatchdog(cfg.Watchdog))
	}
	if cfg.SubscribeRate > 0 {
		opts = append(opts, stream.WithSubscribePace(cfg.SubscribeRate, stream.DefaultSubscribeBurst))
	}
	opts = append(opts, cfg.StreamOptions...)
	ws := cfg.WSURL
	if ws == "" {
		return nil, errors.New("live: want a WebSocket URL (config.Config.WebSocketURL)")
	}
	c, err := stream.New(stream.Config{
		Keys: cfg.Keys, RESTBaseURL: cfg.RESTBaseURL, WSURL: ws, TRs: cfg.TRs,
		ApprovalStore: cfg.ApprovalStore, Handler: l.dispatch, Resync: l.resync,
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	l.client = c
	if cfg.Cache != nil {
		l.wt = newWriter(cfg.Cache, cfg.Source, log)
		l.ListenAll(l.wt.offer)
	}
	return l, nil
}

// Start acquires cfg.Codes for the process lifetime and runs the client
// until [Live.Close]. Sessions open only once some code is acquired. It
// fails when cfg.Codes need more registrations than the app keys hold
// (the error is a *stream.SubscriptionLimitError).
func (l *Live) Start() error {
	l.mu.Lock()
	if l.started {
		l.mu.Unlock()
		return errors.New("live: already started")
	}
	l.started = true
	l.mu.Unlock()
	for _, code := range l.cfg.Codes {
		if err := l.hold(code); err != nil {
			return fmt.Errorf("STREAM_CODES %s: %w", code, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.runDone = make(chan struct{})
	if l.wt != nil {
		l.wt.start(ctx)
	}
	go func() {
		defer close(l.runDone)
		var warm sync.WaitGroup
		if l.cfg.Cache != nil && len(l.cfg.Codes) > 0 {
			// Read STREAM_CODES' quotes and books into the cache now, so
			// the first read is a hit and the first trade has its base
			// (concurrent quote reads are batched below the cache).
			for _, code := range l.cfg.Codes {
				warm.Go(func() {
					_ = l.cfg.Cache.RefreshQuote(ctx, code)
					_ = l.cfg.Cache.RefreshOrderBook(ctx, code)
				})
			}
		}
		_ = l.client.Run(ctx) // returns ctx's error once Close cancels it
		warm.Wait()
	}()
	if n := len(l.cfg.Codes); n > 0 {
		l.log.Info("streaming codes from KIS, written through into the cache", "codes", n, "list", codeList(l.cfg.Codes, 20))
	}
	return nil
}

// Close closes every session, waits for the client's goroutines and the
// write-through, and cancels pending lingers. Safe to call once, started
// or not.
func (l *Live) Close() error {
	if l.cancel != nil {
		l.cancel()
		<-l.runDone
	}
	if l.wt != nil {
		l.wt.stop()
	}
	l.gaps.flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.demand {
		if d.timer != nil {
			d.timer.Stop()
		}
	}
	return nil
}

// kindsOrBoth returns kinds without duplicates, or both kinds.
func kindsOrBoth(kinds []stream.Kind) ([]stream.Kind, error) {
	if len(kinds) == 0 {
		return []stream.Kind{stream.KindTrade, stream.KindBook}, nil
	}
	var out []stream.Kind
	for _, k := range kinds {
		if k != stream.KindTrade && k != stream.KindBook {
			return nil, fmt.Errorf("live: kind %v: want trade or book", k)
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Acquire declares demand for code's kinds (trades and books when none
// is given) and returns the function that ends it. The first holder of a
// (code, kind) registers it with KIS; when the last one releases it, it
// stays registered for the linger ([Config.Linger]) and is then
// unregistered, unless acquired again meanwhile. When the app keys cannot
// hold the new registrations, nothing changes and the error is the
// client's *stream.SubscriptionLimitError (errors.Is
// stream.ErrSubscriptionLimit), which names the cap and the registrations
// in use. release may be called more than once; only the first counts.
func (l *Live) Acquire(ctx context.Context, code kisfeed.Code, kinds ...stream.Kind) (release func(), err error) {
	if code.IsZero() {
		return nil, fmt.Errorf("live: acquire: %w: empty code", kisfeed.ErrInvalid)
	}
	ks, err := kindsOrBoth(kinds)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var need []stream.Kind
	for _, k := range ks {
		if _, ok := l.demand[demandKey{code, k}]; !ok {
			need = append(need, k)
		}
	}
	if len(need) > 0 {
		if err := l.client.Subscribe(ctx, code.String(), need...); err != nil {
			return nil, err
		}
	}
	for _, k := range ks {
		key := demandKey{code, k}
		d := l.demand[key]
		if d == nil {
			d = &demandRef{}
			l.demand[key] = d
		}
		if d.timer != nil {
			d.timer.Stop()
			d.timer = nil
			d.gen++
		}
		d.refs++
	}
	var once sync.Once
	return func() { once.Do(func() { l.release(code, ks) }) }, nil
}

// hold acquires both kinds of code for the process lifetime.
func (l *Live) hold(code kisfeed.Code) error {
	if _, err := l.Acquire(context.Background(), code); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []stream.Kind{stream.KindTrade, stream.KindBook} {
		l.demand[demandKey{code, k}].life = true
	}
	return nil
}

// release ends one holder's demand for code's kinds.
func (l *Live) release(code kisfeed.Code, ks []stream.Kind) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var now []stream.Kind
	for _, k := range ks {
		key := demandKey{code, k}
		d := l.demand[key]
		if d == nil || d.refs == 0 {
			continue
		}
		d.refs--
		if d.refs > 0 || d.life {
			continue
		}
		if l.linger < 0 {
			delete(l.demand, key)
			now = append(now, k)
			continue
		}
		gen := d.gen
		d.timer = time.AfterFunc(l.linger, func() { l.expire(key, d, gen) })
	}
	if len(now) > 0 {
		_ = l.client.Unsubscribe(context.Background(), code.String(), now...)
	}
}

// expire unregisters key when its linger ran out with nobody back.
func (l *Live) expire(key demandKey, d *demandRef, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.demand[key] != d || d.gen != gen || d.refs > 0 || d.life {
		return
	}
	delete(l.demand, key)
	_ = l.client.Unsubscribe(context.Background(), key.code.String(), key.kind)
}

// Demand is one registration live holds.
type Demand struct {
	Code      kisfeed.Code
	Kind      stream.Kind
	Holders   int  // acquisitions not yet released
	Lifetime  bool // STREAM_CODES: never released
	Lingering bool // no holder; unregistered when the linger ends
}

// Stats is what live holds and has done, for /v1/status and tests.
type Stats struct {
	// Stream are the client's counters and, per app key, its session and
	// registrations.
	Stream stream.Stats
	// Demand lists the registrations held, by code then kind.
	Demand []Demand
	// WriteThrough counts the cache writes.
	WriteThrough WriteStats
}

// Stats returns the counters and the demand.
func (l *Live) Stats() Stats {
	s := Stats{Stream: l.client.Stats()}
	if l.wt != nil {
		s.WriteThrough = l.wt.stats()
	}
	l.mu.Lock()
	for k, d := range l.demand {
		s.Demand = append(s.Demand, Demand{Code: k.code, Kind: k.kind, Holders: d.refs, Lifetime: d.life, Lingering: d.refs == 0 && !d.life})
	}
	l.mu.Unlock()
	slices.SortFunc(s.Demand, func(a, b Demand) int {
		if a.Code != b.Code {
			if a.Code.String() < b.Code.String() {
				return -1
			}
			return 1
		}
		return int(a.Kind) - int(b.Kind)
	})
	return s
}

// Flush waits until every event received so far is written through into
// the cache (or ctx ends). Without a Cache it returns at once.
func (l *Live) Flush(ctx context.Context) error {
	if l.wt == nil {
		return nil
	}
	return l.wt.flush(ctx)
}

// resync is the client's hook after a reconnect restored code: note the
// gap and re-read the code's quote and book from REST into the cache.
func (l *Live) resync(ctx context.Context, code string) {
	if l.cfg.Cache == nil {
		return
	}
	c, err := kisfeed.ParseCode(code)
	if err != nil {
		return
	}
	err = errors.Join(l.cfg.Cache.RefreshQuote(ctx, c), l.cfg.Cache.RefreshOrderBook(ctx, c))
	l.gaps.resynced(code, err)
}

// codeList is up to n codes joined for a log line, "…" after the n-th.
func codeList(codes []kisfeed.Code, n int) string {
	ss := make([]string, len(codes))
	for i, c := range codes {
		ss[i] = c.String()
	}
	return joinCodes(ss, n)
}

// joinCodes joins up to n codes with commas, ",…" after the n-th.
func joinCodes(codes []string, n int) string {
	if len(codes) > n {
		return strings.Join(codes[:n], ",") + ",…"
	}
	return strings.Join(codes, ",")
}
