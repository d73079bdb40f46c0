package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// Demand registers codes with the upstream stream. It is the consumer
// side's view of internal/live (kept as an interface here so fanout does
// not import it): Acquire is refcounted there, the first call for a code
// and kind registers it with KIS, and the last release unregisters it
// after a linger, which absorbs subscribe/unsubscribe flapping.
type Demand interface {
	// Acquire asks for code's kinds; release gives them back (once). It
	// may block while KIS acknowledges the registration. When every app
	// key holds its registrations the error matches
	// stream.ErrSubscriptionLimit (a *stream.SubscriptionLimitError names
	// the cap and the use).
	Acquire(ctx context.Context, code kisfeed.Code, kinds ...stream.Kind) (release func(), err error)
}

// DemandFunc adapts a function to [Demand].
type DemandFunc func(ctx context.Context, code kisfeed.Code, kinds ...stream.Kind) (func(), error)

// Acquire implements [Demand].
func (f DemandFunc) Acquire(ctx context.Context, code kisfeed.Code, kinds ...stream.Kind) (func(), error) {
	return f(ctx, code, kinds...)
}

// StreamQuota limits the codes an API key streams at once; it is
// access.StreamQuota's method set (an *access.Principal is one), repeated
// here so the hub does not need the access package.
type StreamQuota interface {
	AcquireCodes(n int) error
	ReleaseCodes(n int)
}

// Config is what a [Hub] needs; the zero value of every field is a
// documented default.
type Config struct {
	// Demand registers codes upstream; nil = every code is available
	// (a replica fed from NATS whose demand goes elsewhere, or tests).
	Demand Demand
	// Listed tells whether a well-formed code is one the market lists
	// (the universe of GET /v1/stocks); nil = every code is. An unlisted
	// code is refused (SSE: 400; WebSocket: an unknown_code error event)
	// before it reaches Demand: KIS would take the registration and
	// stream nothing, spending one of the 41 slots of an app key on it.
	// An error (the universe cannot be read) lets the code through: a
	// listing outage must not stop the stream.
	Listed func(ctx context.Context, code kisfeed.Code) (bool, error)
	// Epoch is the epoch of the ids the hub assigns; default the wall
	// clock's Unix milliseconds at NewHub, so a restart starts a new one.
	// 1 to 64 characters of [0-9A-Za-z_.:].
	Epoch string
	// Clock: Wall stamps received_at and times queues; Market is the
	// "to" of resume gaps (event times are on the market clock).
	Clock kisfeed.Clock
	// QueueSize bounds each consumer's queue, in events (default 1024;
	// books coalesce per code, so they hold at most one slot per code).
	// An event that does not fit disconnects the consumer (slow_consumer).
	QueueSize int
	// MaxLag disconnects a consumer whose oldest queued event has waited
	// longer than this when the next one arrives (default 10 s).
	MaxLag time.Duration
	// RingSize is the number of events kept per code for resume
	// (default 256).
	RingSize int
	// MaxCodes caps a consumer's codes (default [MaxCodes]).
	MaxCodes int
	// ChangeRate and ChangeBurst rate-limit a consumer's subscription
	// changes, in codes per second (default 20) and burst (default 100,
	// one full subscription at once). Excess changes are refused with a
	// rate_limited error event and never reach Demand.
	ChangeRate  float64
	ChangeBurst int
	// AcquireTimeout bounds one Demand.Acquire (default 30 s); it does not
	// follow the consumer's context, since others may wait on the same
	// registration.
	AcquireTimeout time.Duration
	// Observer receives the metrics events; nil = none.
	Observer Observer
	// Logger receives what consumers are not shown (Acquire failures);
	// slog.Default if nil.
	Logger *slog.Logger
}

// MaxCodes is the most codes one consumer may stream (the bar).
const MaxCodes = 100

// Stats are the hub's running totals, for /v1/status and gauges.
type Stats struct {
	Consumers  int    // connected now
	Codes      int    // codes with at least one consumer
	Published  uint64 // events taken by Publish
	Delivered  uint64 // messages handed to writers (Take)
	Coalesced  uint64 // books replaced by a newer one before delivery
	Slow       uint64 // consumers disconnected as slow
	HighWater  int    // the deepest any consumer's queue has been
	DemandRefs int    // (code, kind) registrations held through Demand
}

// Hub fans events out to consumers. Publish is safe to call from any
// goroutine and never blocks on a consumer; the other methods are safe
// for concurrent use.
type Hub struct {
	cfg  Config
	obs  Observer
	log  *slog.Logger
	ctx  context.Context // detached context for Acquire; done on Close
	stop context.CancelFunc

	mu sync.Mutex // guards the fields below and every Consumer's subs
	// epoch and seq number the ids the hub assigns.
	epoch string
	seq   uint64
	// current is the epoch of the last event published (its own or a
	// forwarded one): a Last-Event-ID of another epoch cannot resume.
	current   string
	topics    map[string]*topic
	demand    map[demandKey]*demandEntry
	consumers map[*Consumer]struct{}
	closed    bool
	// onSubscribe, when set (tests), is called after each subscribe.
	onSubscribe func()

	published, delivered, coalesced, slow atomic.Uint64
	highWater                             atomic.Int64
}

// topic is one code's subscribers and ring.
type topic struct {
	subs map[*Consumer]Kinds
	// ring holds the code's last events (oldest at start); n of them.
	ring     []*Message
	start, n int
	// epoch is the ring's events' epoch; evicted the highest seq of it
	// that left the ring (0 = none).
	epoch   string
	evicted uint64
}

type demandKey struct {
	code string
	kind stream.Kind
}

// demandEntry is one (code, kind) held through Demand for refs consumers.
type demandEntry struct {
	refs    int
	ready   chan struct{} // closed when Acquire returned
	err     error         // Acquire's error (set before ready closes)
	release func()
}

// NewHub returns a hub; Close it to disconnect every consumer and give
// back what it holds from Demand.
func NewHub(cfg Config) (*Hub, error) {
	cfg.Clock = kisfeed.NewClock(cfg.Clock.Wall, cfg.Clock.Market)
	if cfg.Epoch == "" {
		cfg.Epoch = strconv.FormatInt(cfg.Clock.Now().UnixMilli(), 10)
	}
	if err := validEpoch(cfg.Epoch); err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.QueueSize, 1024)
	def(&cfg.RingSize, 256)
	def(&cfg.MaxCodes, MaxCodes)
	def(&cfg.ChangeBurst, 100)
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = 10 * time.Second
	}
	if cfg.ChangeRate <= 0 {
		cfg.ChangeRate = 20
	}
	if cfg.AcquireTimeout <= 0 {
		cfg.AcquireTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Hub{cfg: cfg, obs: obs, log: cfg.Logger, ctx: ctx, stop: stop,
		epoch: cfg.Epoch, current: cfg.Epoch,
		topics: map[string]*topic{}, demand: map[demandKey]*demandEntry{},
		consumers: map[*Consumer]struct{}{}}, nil
}

// SetEpoch starts a new epoch for the ids the hub assigns, numbering from
// 1 again: what a replica does when it takes an app key's lease over
// (the fencing token makes a good epoch). Consumers resuming from an
// older epoch get gap events.
func (h *Hub) SetEpoch(epoch string) error {
	if err := validEpoch(epoch); err != nil {
		return fmt.Errorf("fanout: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.epoch, h.seq, h.current = epoch, 0, epoch
	return nil
}

// Publish hands ev to every consumer of its code (and kind) and to the
// code's ring. It never blocks on a consumer: each gets the event in its
// own queue, and one whose queue is full is disconnected instead. Its
// cost is one JSON encoding plus O(consumers of the code). It returns the
// message as consumers get it (id and JSON data), which a replica holding
// the KIS session forwards to the others (NATS) for [Hub.Forward].
func (h *Hub) Publish(ev Event) *Message {
	now := h.cfg.Clock.Now()
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = now
	}
	var fwd ID
	if ev.ID != "" {
		if id, err := ParseID(ev.ID); err == nil {
			fwd = id
		}
	}
	typ, body := encodeBody(&ev)
	m := &Message{Type: typ, Code: ev.code(), Published: now, at: ev.at()}
	h.published.Add(1)

	h.mu.Lock()
	defer h.mu.Unlock()
	id := fwd
	if id.Epoch == "" {
		h.seq++
		id = ID{Epoch: h.epoch, Seq: h.seq}
	}
	m.id, m.ID = id, id.String()
	m.Data = withHead(typ, m.ID, body)
	h.publishLocked(m, now)
	return m
}

// Forward publishes an event encoded elsewhere: a NATS message from the
// replica holding the KIS session, whose data is the JSON object a
// [Message] carries (type and id first, received_at included) and id its
// id, kept so that ids are the same on every replica. at is the event's
// own time (a resume gap's "from"; zero if unknown). It checks the type,
// code and id, not the JSON.
func (h *Hub) Forward(typ, code, id string, at time.Time, data []byte) error {
	switch typ {
	case TypeTrade, TypeBook, TypeGap:
	default:
		return fmt.Errorf("fanout: forward: type %q: want trade, book or gap", clip(typ))
	}
	if _, err := kisfeed.ParseCode(code); err != nil {
		return fmt.Errorf("fanout: forward: %w", err)
	}
	pid, err := ParseID(id)
	if err != nil {
		return fmt.Errorf("fanout: forward: %w", err)
	}
	now := h.cfg.Clock.Now()
	m := &Message{Type: typ, ID: id, Code: code, Data: data, Published: now, id: pid, at: at}
	h.published.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(m, now)
	return nil
}

// publishLocked puts m in its code's ring and every matching consumer's
// queue (h.mu held).
func (h *Hub) publishLocked(m *Message, now time.Time) {
	want := Trades | Books // a gap goes to every consumer of the code
	switch m.Type {
	case TypeTrade:
		want = Trades
	case TypeBook:
		want = Books
	}
	h.current = m.id.Epoch
	t := h.topics[m.Code]
	if t == nil {
		t = &topic{subs: map[*Consumer]Kinds{}}
		h.topics[m.Code] = t
	}
	t.push(m, h.cfg.RingSize)
	for c, k := range t.subs {
		if k&want == 0 {
			continue
		}
		if reason, detail := c.offer(m, now); reason != "" {
			h.dropLocked(c, reason, detail)
		}
	}
}

// push appends m to the ring, evicting the oldest when full; an event of
// a new epoch empties it first.
func (t *topic) push(m *Message, size int) {
	if t.epoch != m.id.Epoch {
		t.ring, t.start, t.n, t.epoch, t.evicted = nil, 0, 0, m.id.Epoch, 0
	}
	if t.ring == nil {
		t.ring = make([]*Message, size)
	}
	if t.n == len(t.ring) {
		old := t.ring[t.start]
		t.evicted = max(t.evicted, old.id.Seq)
		t.ring[t.start] = m
		t.start = (t.start + 1) % len(t.ring)
		return
	}
	t.ring[(t.start+t.n)%len(t.ring)] = m
	t.n++
}

// after returns the ring's events with seq > id.Seq, oldest first, and
// whether they are all of them: same epoch, nothing after id evicted.
// last is the time of the newest event at or before id, zero if none.
func (t *topic) after(id ID) (out []*Message, complete bool, last time.Time) {
	if t == nil {
		return nil, false, time.Time{}
	}
	if t.epoch != id.Epoch {
		return nil, false, time.Time{}
	}
	for i := range t.n {
		m := t.ring[(t.start+i)%len(t.ring)]
		if m.id.Seq > id.Seq {
			out = append(out, m)
		} else {
			last = m.at
		}
	}
	return out, t.evicted <= id.Seq, last
}

// dropLocked disconnects c for reason (h.mu held): it stops getting
// events at once; its demand and quota are given back when its writer
// calls Close.
func (h *Hub) dropLocked(c *Consumer, reason, detail string) {
	if !c.kill(reason, detail) {
		return
	}
	for code := range c.subs {
		if t := h.topics[code]; t != nil {
			delete(t.subs, c)
		}
	}
	if reason == ReasonSlowConsumer {
		h.slow.Add(1)
	}
	h.obs.Disconnected(c.transport, reason)
}

// Close disconnects every consumer (reason shutdown) and gives back
// their demand; Subscribe fails afterwards. Call it when serve shuts
// down, before draining HTTP: streams never end by themselves.
func (h *Hub) Close() {
	// Cancel registrations in flight first: a consumer's Close waits for
	// its subscribe, which may wait for Acquire.
	h.stop()
	h.mu.Lock()
	h.closed = true
	cs := make([]*Consumer, 0, len(h.consumers))
	for c := range h.consumers {
		h.dropLocked(c, ReasonShutdown, "the server is shutting down")
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// Stats returns the running totals.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	s := Stats{Consumers: len(h.consumers), DemandRefs: len(h.demand)}
	for _, t := range h.topics {
		if len(t.subs) > 0 {
			s.Codes++
		}
	}
	h.mu.Unlock()
	s.Published, s.Delivered, s.Coalesced, s.Slow = h.published.Load(), h.delivered.Load(), h.coalesced.Load(), h.slow.Load()
	s.HighWater = int(h.highWater.Load())
	return s
}

// noteDepth raises the hub's high-water mark to d.
func (h *Hub) noteDepth(d int) {
	for {
		cur := h.highWater.Load()
		if int64(d) <= cur || h.highWater.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// acquire takes one ref on (code, kind) through Demand: the first ref
// calls Acquire (with the hub's context, not the caller's: others may
// join and wait for it), later ones wait for its answer.
func (h *Hub) acquire(ctx context.Context, code kisfeed.Code, kind stream.Kind) (*demandEntry, error) {
	if h.cfg.Demand == nil {
		return nil, nil
	}
	k := demandKey{code.String(), kind}
	h.mu.Lock()
	e := h.demand[k]
	if e != nil {
		e.refs++
		h.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			h.release(k, e)
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		return e, nil
	}
	e = &demandEntry{refs: 1, ready: make(chan struct{})}
	h.demand[k] = e
	h.mu.Unlock()

	actx, cancel := context.WithTimeout(h.ctx, h.cfg.AcquireTimeout)
	rel, err := h.cfg.Demand.Acquire(actx, code, kind)
	cancel()
	h.mu.Lock()
	e.err, e.release = err, rel
	if err != nil && h.demand[k] == e {
		delete(h.demand, k)
	}
	close(e.ready)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return e, nil
}

// release drops one ref of e; the last one calls Demand's release
// (outside the lock: it may take its own locks).
func (h *Hub) release(k demandKey, e *demandEntry) {
	if e == nil {
		return
	}
	h.mu.Lock()
	if h.demand[k] != e {
		h.mu.Unlock()
		return
	}
	e.refs--
	if e.refs > 0 {
		h.mu.Unlock()
		return
	}
	delete(h.demand, k)
	h.mu.Unlock()
	// A ref can reach zero only after Acquire returned: its caller holds
	// one until then.
	<-e.ready
	if e.release != nil {
		e.release()
	}
}

// unlisted returns the first of codes that Config.Listed says the
// market does not list, or "" (also without Listed, or when it fails).
func (h *Hub) unlisted(ctx context.Context, codes []kisfeed.Code) string {
	if h.cfg.Listed == nil {
		return ""
	}
	for _, code := range codes {
		if ok, err := h.cfg.Listed(ctx, code); err == nil && !ok {
			return code.String()
		}
	}
	return ""
}

// unknownDetail is what an unlisted code's refusal says.
func unknownDetail(code string) string {
	return fmt.Sprintf("%s is not a listed code: GET /v1/stocks lists the codes that stream", code)
}

// refusal turns an Acquire error into the error event's reason and
// detail. The subscription limit's detail names the cap and the use;
// other errors are logged and shown generically (they may carry hosts).
func (h *Hub) refusal(code string, err error) (reason, detail string) {
	var le *stream.SubscriptionLimitError
	switch {
	case errors.As(err, &le):
		return ReasonSubscriptionLimit, fmt.Sprintf(
			"KIS registrations exhausted: %d in use of %d (%d per app key × %d app keys); %s needs %d more",
			le.InUse, le.PerKey*le.Keys, le.PerKey, le.Keys, code, le.Want)
	case errors.Is(err, stream.ErrSubscriptionLimit):
		return ReasonSubscriptionLimit, err.Error()
	}
	h.log.Warn("stream registration failed", slog.String("code", code), slog.Any("error", err))
	return ReasonUnavailable, "the upstream stream could not register " + code + "; try again later"
}

// sortedCodes returns m's keys in order (a stable order for locking-free
// iteration and for acks).
func sortedCodes[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
