package fanout

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// Request is what a new consumer asks the hub for.
type Request struct {
	// Codes to stream from the start (0 to MaxCodes; a WebSocket consumer
	// may start with none and subscribe later).
	Codes []kisfeed.Code
	// Kinds of Codes (AllKinds if 0).
	Kinds Kinds
	// LastEventID, when set, resumes: events of Codes after it are
	// replayed from the rings, or a gap event per code says they cannot be.
	LastEventID *ID
	// Quota, when set, is charged one per streamed code (the consumer's
	// API key, an *access.Principal); over it, the code is refused with
	// an error event of reason quota.
	Quota StreamQuota
	// Transport labels the metrics: "sse" or "ws".
	Transport string
	// Acks sends subscribed/unsubscribed notices (WebSocket).
	Acks bool
}

// Consumer is one client's subscription and bounded queue. Its writer
// waits on [Consumer.Ready], drains with [Consumer.Take] and calls
// [Consumer.Close] when done. Subscribe and Unsubscribe change its codes
// (rate-limited).
type Consumer struct {
	hub       *Hub
	transport string
	quota     StreamQuota
	acks      bool
	ready     chan struct{} // a token when there is something to Take
	changes   *rate.Limiter

	// op serializes Subscribe, Unsubscribe and Close: subs and held are
	// written under op and the hub's lock, so op alone suffices to read.
	op sync.Mutex
	// subs (code → kinds) and held are guarded by hub.mu.
	subs map[string]Kinds
	held map[demandKey]*demandEntry

	mu sync.Mutex // guards the queue fields below
	q  []slot     // pending messages from head; nil m = a coalesced book
	// head is the first pending slot; live counts non-nil slots.
	head, live int
	books      map[string]int // code → index in q of its pending book
	dead       bool           // no more messages: disconnected or closed
	reason     string
	detail     string
	highWater  int
	// limitedQueued: a rate_limited event is queued and not yet taken;
	// limitedHeld counts the changes refused since, reported by the next
	// one (guarded by mu).
	limitedQueued bool
	limitedHeld   int
	closed        bool // Close ran (guarded by hub.mu)
}

type slot struct {
	m  *Message
	at time.Time // when queued, for MaxLag
}

// Disconnect is [Consumer.Take]'s error once the consumer is
// disconnected; Reason is one of the Reason constants.
type Disconnect struct {
	Reason string
	Detail string
}

func (d *Disconnect) Error() string { return "stream ended: " + d.Reason + ": " + d.Detail }

// Subscribe starts a consumer with req's codes; it returns once the codes
// are registered (or refused: refusals are error events in its queue,
// never an error here). The error is only for a closed hub.
func (h *Hub) Subscribe(ctx context.Context, req Request) (*Consumer, error) {
	c := &Consumer{hub: h, transport: req.Transport, quota: req.Quota, acks: req.Acks,
		ready: make(chan struct{}, 1), subs: map[string]Kinds{}, held: map[demandKey]*demandEntry{},
		books:   map[string]int{},
		changes: rate.NewLimiter(rate.Limit(h.cfg.ChangeRate), h.cfg.ChangeBurst)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errHubClosed
	}
	h.consumers[c] = struct{}{}
	h.mu.Unlock()
	h.obs.Connected(c.transport, 1)
	if len(req.Codes) > 0 {
		c.subscribe(ctx, req.Codes, req.Kinds, req.LastEventID, false)
	}
	return c, nil
}

// Ready has a token whenever the consumer has something to Take (or was
// disconnected).
func (c *Consumer) Ready() <-chan struct{} { return c.ready }

// Take appends the pending messages to dst in order and empties the
// queue. Once the consumer is disconnected it returns a *Disconnect (and
// no messages: a slow consumer's backlog is dropped with it).
func (c *Consumer) Take(dst []*Message) ([]*Message, error) {
	c.mu.Lock()
	if c.dead {
		d := &Disconnect{Reason: c.reason, Detail: c.detail}
		c.mu.Unlock()
		return dst, d
	}
	n := len(dst)
	for _, s := range c.q[c.head:] {
		if s.m != nil {
			dst = append(dst, s.m)
		}
	}
	clear(c.q)
	c.q, c.head, c.live = c.q[:0], 0, 0
	clear(c.books)
	c.limitedQueued = false
	held := c.limitedHeld > 0
	c.mu.Unlock()
	c.hub.delivered.Add(uint64(len(dst) - n))
	if held {
		// Refusals held back behind the event just taken: the next Take
		// reports them.
		h := c.hub
		h.mu.Lock()
		if !c.closed {
			c.flushLimitedLocked(h.cfg.Clock.Now())
		}
		h.mu.Unlock()
	}
	return dst, nil
}

// signal wakes the writer (non-blocking).
func (c *Consumer) signal() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// offer queues m; a book replaces its code's pending book. It returns a
// reason when the consumer must be disconnected instead: the queue is
// full, or its oldest message waited more than MaxLag.
func (c *Consumer) offer(m *Message, now time.Time) (reason, detail string) {
	cfg := &c.hub.cfg
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return "", ""
	}
	if m.Type == TypeBook {
		if i, ok := c.books[m.Code]; ok {
			c.q[i].m = nil
			c.live--
			c.hub.coalesced.Add(1)
			c.hub.obs.Coalesced()
			for c.head < len(c.q) && c.q[c.head].m == nil {
				c.head++
			}
		}
	}
	if c.live >= cfg.QueueSize {
		return ReasonSlowConsumer, fmt.Sprintf("the queue of %d events is full: read faster or subscribe to fewer codes", cfg.QueueSize)
	}
	if c.live > 0 {
		if waited := now.Sub(c.q[c.head].at); waited > cfg.MaxLag {
			return ReasonSlowConsumer, fmt.Sprintf("the oldest queued event waited %s (limit %s)", waited.Round(time.Millisecond), cfg.MaxLag)
		}
	}
	if c.head > 0 && len(c.q)-c.head < c.head && len(c.q) >= 2*cfg.QueueSize {
		c.compact()
	}
	c.q = append(c.q, slot{m: m, at: now})
	if m.Type == TypeBook {
		c.books[m.Code] = len(c.q) - 1
	}
	c.live++
	if c.live > c.highWater {
		c.highWater = c.live
		c.hub.noteDepth(c.live)
	}
	c.signal()
	return "", ""
}

// compact moves the pending slots to the front, dropping coalesced ones,
// so a consumer whose books keep replacing each other does not grow q.
func (c *Consumer) compact() {
	j := 0
	for _, s := range c.q[c.head:] {
		if s.m == nil {
			continue
		}
		c.q[j] = s
		if s.m.Type == TypeBook {
			c.books[s.m.Code] = j
		}
		j++
	}
	clear(c.q[j:])
	c.q, c.head = c.q[:j], 0
}

// kill marks c disconnected; false if it already was.
func (c *Consumer) kill(reason, detail string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return false
	}
	c.dead, c.reason, c.detail = true, reason, detail
	clear(c.q)
	c.q, c.head, c.live = nil, 0, 0
	c.signal()
	return true
}

// notifyLocked queues a consumer's own notice (h.mu held).
func (c *Consumer) notifyLocked(m *Message, now time.Time) {
	if reason, detail := c.offer(m, now); reason != "" {
		c.hub.dropLocked(c, reason, detail)
	}
}

// refuse queues an error event and counts it.
func (c *Consumer) refuse(code, reason, detail string) {
	h := c.hub
	now := h.cfg.Clock.Now()
	h.obs.Refused(reason)
	h.mu.Lock()
	if reason != ReasonRateLimited {
		c.flushLimitedLocked(now)
	}
	c.notifyLocked(errorNotice(code, reason, detail, now), now)
	h.mu.Unlock()
}

// Disconnect ends the consumer's stream for reason (the writer found it
// too slow to write to, or the client abused the protocol); Take then
// returns the *Disconnect.
func (c *Consumer) Disconnect(reason, detail string) {
	c.hub.mu.Lock()
	c.hub.dropLocked(c, reason, detail)
	c.hub.mu.Unlock()
}

// Subscribe adds codes (with kinds, AllKinds if 0; kinds add to those a
// code already has) to the consumer. It costs one rate-limit token per
// code; refusals (rate_limited, too_many_codes, quota,
// subscription_limit, unavailable) are error events in the queue. It
// returns when the accepted codes stream.
func (c *Consumer) Subscribe(ctx context.Context, codes []kisfeed.Code, kinds Kinds) {
	c.subscribe(ctx, codes, kinds, nil, true)
}

func (c *Consumer) allow(n int) bool {
	if c.changes.AllowN(c.hub.cfg.Clock.Now(), n) {
		return true
	}
	// One rate_limited event waits in the queue at a time: a client
	// flipping thousands of times a second, reading all along, would
	// otherwise fill its own queue with refusals faster than they can be
	// written and be disconnected as slow_consumer. The refusals made
	// while one waits are counted in the next.
	c.mu.Lock()
	if c.limitedQueued {
		c.limitedHeld += n
		c.mu.Unlock()
		c.hub.obs.Refused(ReasonRateLimited)
		return false
	}
	n += c.limitedHeld
	c.limitedQueued, c.limitedHeld = true, 0
	c.mu.Unlock()
	c.refuse("", ReasonRateLimited, c.limitedDetail(n))
	return false
}

// limitedDetail is a rate_limited event's detail for n refused changes;
// it starts with n.
func (c *Consumer) limitedDetail(n int) string {
	return fmt.Sprintf(
		"%d subscription changes refused: at most %g codes per second may be subscribed or unsubscribed (burst %d); the change was not made",
		n, c.hub.cfg.ChangeRate, c.hub.cfg.ChangeBurst)
}

// flushLimitedLocked queues a rate_limited event for the refusals held
// back while another waited, so none goes unreported and they come
// before whatever the consumer is told next (h.mu held).
func (c *Consumer) flushLimitedLocked(now time.Time) {
	c.mu.Lock()
	held := c.limitedHeld
	if held > 0 {
		c.limitedQueued, c.limitedHeld = true, 0
	}
	c.mu.Unlock()
	if held > 0 {
		c.notifyLocked(errorNotice("", ReasonRateLimited, c.limitedDetail(held), now), now)
	}
}

// want is one (code, kind) registration a subscribe needs.
type want struct {
	code  kisfeed.Code
	kind  stream.Kind
	entry *demandEntry
	err   error
}

func (c *Consumer) subscribe(ctx context.Context, codes []kisfeed.Code, kinds Kinds, resume *ID, limited bool) {
	h := c.hub
	if kinds == 0 {
		kinds = AllKinds
	}
	codes = kisfeed.UniqueCodes(codes)
	c.op.Lock()
	defer c.op.Unlock()
	if c.isClosed() || (limited && !c.allow(len(codes))) {
		return
	}
	wants, fresh := c.plan(ctx, codes, kinds)
	// Register concurrently: KIS acknowledges one registration at a time
	// per session, and codes may sit on different app keys.
	var wg sync.WaitGroup
	for _, w := range wants {
		wg.Go(func() { w.entry, w.err = h.acquire(ctx, w.code, w.kind) })
	}
	wg.Wait()

	now := h.cfg.Clock.Now()
	granted := map[string]Kinds{}
	failed := map[string]error{}
	for _, w := range wants {
		if w.err != nil {
			if _, dup := failed[w.code.String()]; !dup {
				failed[w.code.String()] = w.err
			}
			continue
		}
		granted[w.code.String()] |= kindOf(w.kind)
	}
	h.mu.Lock()
	if c.closed || c.isDead() {
		h.mu.Unlock()
		c.giveBack(wants, fresh)
		return
	}
	var notices []*Message
	for _, code := range sortedCodes(failed) {
		if ctx.Err() != nil {
			break
		}
		reason, detail := h.refusal(code, failed[code])
		h.obs.Refused(reason)
		notices = append(notices, errorNotice(code, reason, detail, now))
	}
	// A new code none of whose kinds registered gives its quota back.
	var unused []string
	for _, code := range fresh {
		if granted[code] == 0 {
			unused = append(unused, code)
		}
	}
	for code, k := range granted {
		c.subs[code] |= k
		t := h.topics[code]
		if t == nil {
			t = &topic{subs: map[*Consumer]Kinds{}}
			h.topics[code] = t
		}
		t.subs[c] = c.subs[code]
	}
	for _, w := range wants {
		if w.err == nil && w.entry != nil {
			c.held[demandKey{w.code.String(), w.kind}] = w.entry
		}
	}
	if c.acks {
		notices = append(notices, ackNotice(TypeSubscribed, sortedCodes(granted), kinds, now))
	}
	if resume != nil {
		notices = append(notices, c.resumeLocked(*resume, sortedCodes(granted), now)...)
	}
	for _, m := range notices {
		c.notifyLocked(m, now)
	}
	h.mu.Unlock()
	if c.quota != nil && len(unused) > 0 {
		c.quota.ReleaseCodes(len(unused))
	}
	if h.onSubscribe != nil {
		h.onSubscribe()
	}
}

// Unsubscribe removes codes (all their kinds) from the consumer, costing
// one rate-limit token per code; their registrations go back to Demand
// (whose linger keeps KIS from seeing a quick re-subscribe).
func (c *Consumer) Unsubscribe(codes []kisfeed.Code) {
	h := c.hub
	codes = kisfeed.UniqueCodes(codes)
	c.op.Lock()
	defer c.op.Unlock()
	if c.isClosed() || !c.allow(len(codes)) {
		return
	}
	var gone []string
	var rel []heldRef
	h.mu.Lock()
	for _, code := range codes {
		s := code.String()
		if _, ok := c.subs[s]; !ok {
			continue
		}
		rel = append(rel, c.dropCodeLocked(s)...)
		gone = append(gone, s)
	}
	if c.acks && !c.isDead() {
		now := h.cfg.Clock.Now()
		slices.Sort(gone)
		c.notifyLocked(ackNotice(TypeUnsubscribed, gone, 0, now), now)
	}
	h.mu.Unlock()
	for _, r := range rel {
		h.release(r.key, r.entry)
	}
	if c.quota != nil && len(gone) > 0 {
		c.quota.ReleaseCodes(len(gone))
	}
}

type heldRef struct {
	key   demandKey
	entry *demandEntry
}

// dropCodeLocked removes code from c (h.mu held) and returns the
// registrations to give back.
func (c *Consumer) dropCodeLocked(code string) []heldRef {
	var rel []heldRef
	if t := c.hub.topics[code]; t != nil {
		delete(t.subs, c)
	}
	delete(c.subs, code)
	for _, k := range []stream.Kind{stream.KindTrade, stream.KindBook} {
		key := demandKey{code, k}
		if e, ok := c.held[key]; ok {
			rel = append(rel, heldRef{key, e})
			delete(c.held, key)
		}
	}
	return rel
}

// Close ends the consumer: it leaves every code, gives back its demand
// and quota, and reports it gone. Safe to call more than once.
func (c *Consumer) Close() {
	h := c.hub
	c.op.Lock()
	defer c.op.Unlock()
	h.mu.Lock()
	if c.closed {
		h.mu.Unlock()
		return
	}
	c.closed = true
	h.dropLocked(c, "closed", "")
	delete(h.consumers, c)
	var rel []heldRef
	n := len(c.subs)
	for code := range c.subs {
		rel = append(rel, c.dropCodeLocked(code)...)
	}
	h.mu.Unlock()
	for _, r := range rel {
		h.release(r.key, r.entry)
	}
	if c.quota != nil && n > 0 {
		c.quota.ReleaseCodes(n)
	}
	c.mu.Lock()
	hw := c.highWater
	c.mu.Unlock()
	h.obs.QueueHighWater(c.transport, hw)
	h.obs.Connected(c.transport, -1)
}

// giveBack returns what a subscribe took when its consumer went away
// while it waited.
func (c *Consumer) giveBack(wants []*want, fresh []string) {
	for _, w := range wants {
		if w.err == nil {
			c.hub.release(demandKey{w.code.String(), w.kind}, w.entry)
		}
	}
	if c.quota != nil && len(fresh) > 0 {
		c.quota.ReleaseCodes(len(fresh))
	}
}

func (c *Consumer) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// isClosed reads closed under the hub's lock.
func (c *Consumer) isClosed() bool {
	c.hub.mu.Lock()
	defer c.hub.mu.Unlock()
	return c.closed
}

// Codes returns the consumer's codes and kinds.
func (c *Consumer) Codes() map[string]Kinds {
	c.hub.mu.Lock()
	defer c.hub.mu.Unlock()
	out := make(map[string]Kinds, len(c.subs))
	for k, v := range c.subs {
		out[k] = v
	}
	return out
}
