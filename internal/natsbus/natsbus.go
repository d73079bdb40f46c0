// Package natsbus moves kisfeed's stream events and the replicas' demand
// between replicas over core NATS. It moves bytes: what an event's payload
// holds (JSON from jsonview, with its id) is the caller's business.
//
// Subjects (the wire contract, stream-spec; ARCHITECTURE.md copies it):
//
//	kisfeed.v1.trade.{code}    trade events of one code
//	kisfeed.v1.book.{code}     order book events of one code
//	kisfeed.v1.gap.{code}      gap events of one code
//	kisfeed.v1.demand.{replica} one replica's full demand, JSON
//	                           {"replica": "...", "codes": {"005930": ["book", "trade"]}},
//	                           on change and every 5 s; an empty set is a goodbye
//	kisfeed.v1.demandsync      empty: a new watcher asks everybody to announce now
//
// Events go out only from the replica holding the app key's KIS session
// (a shared.Lease); [Bus.Publish] takes that tenure's context and refuses
// once it is done. Every replica subscribes per code to what its own
// consumers want ([Bus.Subscribe]), and the holders read everybody's
// demand ([Bus.WatchDemand]).
//
// Core NATS, not JetStream: events are live data that a gap event
// replaces when lost (consumers resume from each replica's in-memory ring,
// and a takeover starts a new epoch anyway), so at-most-once delivery with
// no storage, acks or consumer state is what fits; a stored stream would
// replay stale prices and add a disk write per tick. The demand is soft
// state, republished every 5 s and expired after 15 s, so it needs no
// persistence either.
//
// How serve uses it (internal/replica wires it, with [WithOrderedDelivery]):
//
//	bus, _ := natsbus.Connect(ctx, cfg.NATSURL, natsbus.WithName(replica),
//		natsbus.WithConnEvents(hub.onConn), natsbus.WithMetrics(...))
//	stop, _ := bus.WatchDemand(hub.setAggregate)  // from start-up, on every replica
//	bus.PublishDemand(replica, hub.localDemand()) // on every change of its consumers
//	unsub, _ := bus.Subscribe(codes, kinds, hub.deliver) // per wanted (code, kind)
//	lease, _ := shared.NewLease(rdb, shared.AppKeyID(appKey), replica, 6*time.Second)
//	go lease.Run(ctx, func(tctx context.Context, fence int64) {
//		// open the KIS session, register the aggregate, and for each event:
//		//     bus.Publish(tctx, kind, code, json) // refused once tctx ends
//	}, hub.sendGaps)
//
// Reconnects: nats.go reconnects forever; [WithConnEvents] reports
// disconnects and reconnects (the hub sends gap events after a reconnect,
// since what was published meanwhile is gone). Publishing while
// disconnected fails at once rather than buffering (ReconnectBufSize -1):
// a buffered event would reach consumers late, maybe after this replica's
// lease had passed to another.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kisfeed/kisfeed"
)

// Prefix starts every subject of this package by default (version 1 of
// the scheme); [WithPrefix] changes it.
const Prefix = "kisfeed.v1."

// The event kinds, each a subject's third token.
const (
	KindTrade = "trade"
	KindBook  = "book"
	KindGap   = "gap"
)

// allKinds are the event kinds [Bus.Subscribe] takes when given none.
var allKinds = []string{KindTrade, KindBook, KindGap}

// ErrKind is an event kind other than trade, book or gap.
var ErrKind = errors.New("natsbus: unknown event kind")

// ErrFenced is a publish refused because the publisher's tenure (its
// lease context) has ended: another replica may hold the session now.
var ErrFenced = errors.New("natsbus: publisher's lease tenure has ended")

// ConnEventKind says what happened to the connection.
type ConnEventKind int

// The connection events [WithConnEvents] reports.
const (
	// Disconnected: the connection to the server broke; nats.go is
	// reconnecting. Publishes fail and nothing is received meanwhile.
	Disconnected ConnEventKind = iota + 1
	// Reconnected: the connection is back and subscriptions are restored;
	// whatever was published meanwhile is lost (send gap events).
	Reconnected
	// Closed: the connection is closed for good ([Bus.Close]).
	Closed
)

// String names the event kind.
func (k ConnEventKind) String() string {
	switch k {
	case Disconnected:
		return "disconnected"
	case Reconnected:
		return "reconnected"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("ConnEventKind(%d)", int(k))
}

// ConnEvent is a change of the connection's state.
type ConnEvent struct {
	Kind ConnEventKind
	Err  error // why a Disconnected happened, if known
}

// Metrics are hooks for counters; nil fields are skipped. They are called
// on the bus's goroutines and must not block.
type Metrics struct {
	// Published counts an event published (demand messages excluded).
	Published func(kind string)
	// Received counts an event handed to a Subscribe handler.
	Received func(kind string)
	// Dropped counts events NATS dropped for a subscription whose
	// handler fell behind its pending limits (a slow consumer).
	Dropped func(kind string, n int)
}

// Handler receives one event. Calls for one subject are in order and one
// at a time; calls for different subjects may run concurrently. payload
// is the handler's to keep.
type Handler func(kind string, code kisfeed.Code, payload []byte)

// Bus is one connection to NATS. Its methods are safe for concurrent use.
type Bus struct {
	nc  *nats.Conn
	cfg config

	subsMu sync.Mutex                       // guards subs
	subs   map[*nats.Subscription]*eventSub // for the slow-consumer callback

	demandMu      sync.Mutex // guards the fields below
	demandReplica string
	demand        Demand
	demandLoop    bool // the republishing goroutine is running

	ordered chan *nats.Msg // the one delivery queue of WithOrderedDelivery, nil without

	stop     chan struct{} // closed by Close: ends the bus's goroutines
	wg       sync.WaitGroup
	closeOne sync.Once
}

// Connect connects to the NATS server at url (nats://host:port, or a
// comma-separated list) and returns the bus. It fails when the server does
// not answer before ctx ends (or within 2 s without a deadline); once
// connected, nats.go reconnects forever.
func Connect(ctx context.Context, url string, opts ...Option) (*Bus, error) {
	cfg := config{
		prefix:        Prefix,
		name:          "kisfeed",
		pendingMsgs:   nats.DefaultSubPendingMsgsLimit,
		pendingBytes:  nats.DefaultSubPendingBytesLimit,
		reconnectWait: 250 * time.Millisecond,
		log:           slog.New(slog.DiscardHandler),
		now:           time.Now,
		demandEvery:   5 * time.Second,
		demandExpiry:  15 * time.Second,
		sweepEvery:    time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case cfg.prefix == "" || !strings.HasSuffix(cfg.prefix, ".") || strings.ContainsAny(cfg.prefix, "*> "):
		return nil, fmt.Errorf("natsbus: subject prefix %q: want tokens ending in '.', no wildcards", cfg.prefix)
	case cfg.pendingMsgs <= 0 || cfg.pendingBytes <= 0:
		return nil, fmt.Errorf("natsbus: pending limits %d msgs, %d bytes: want > 0", cfg.pendingMsgs, cfg.pendingBytes)
	case cfg.ordered < 0:
		return nil, fmt.Errorf("natsbus: ordered delivery queue %d: want >= 0", cfg.ordered)
	case cfg.demandEvery <= 0 || cfg.demandExpiry <= cfg.demandEvery || cfg.sweepEvery <= 0:
		return nil, fmt.Errorf("natsbus: demand timing every %s, expiry %s, sweep %s: want all > 0 and expiry > every",
			cfg.demandEvery, cfg.demandExpiry, cfg.sweepEvery)
	}
	b := &Bus{cfg: cfg, subs: map[*nats.Subscription]*eventSub{}, stop: make(chan struct{})}
	timeout := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	nopts := []nats.Option{
		nats.Name(cfg.name),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.reconnectWait),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			cfg.log.Warn("nats disconnected; reconnecting", "err", err)
			b.connEvent(ConnEvent{Kind: Disconnected, Err: err})
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			cfg.log.Info("nats reconnected")
			b.republishDemand()
			b.connEvent(ConnEvent{Kind: Reconnected})
		}),
		nats.ClosedHandler(func(*nats.Conn) { b.connEvent(ConnEvent{Kind: Closed}) }),
		nats.ErrorHandler(b.asyncError),
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, nopts...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			// nats.go's errors do not echo the URL (which may hold a
			// password); keep it that way by not adding it.
			return nil, fmt.Errorf("natsbus: connect: %w", r.err)
		}
		b.nc = r.nc
		if cfg.ordered > 0 {
			b.ordered = make(chan *nats.Msg, cfg.ordered)
			b.wg.Add(1)
			go b.deliverOrdered()
		}
		return b, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("natsbus: connect: %w", ctx.Err())
	}
}

func (b *Bus) connEvent(e ConnEvent) {
	if b.cfg.connEvents != nil {
		b.cfg.connEvents(e)
	}
}

// Close says goodbye to the other replicas (an empty demand, so holders
// drop this replica's codes now rather than after the expiry), stops the
// bus's goroutines, and closes the connection after flushing what was
// published.
func (b *Bus) Close() error {
	var err error
	b.closeOne.Do(func() {
		close(b.stop)
		b.wg.Wait()
		b.demandMu.Lock()
		replica, announced := b.demandReplica, b.demandLoop
		b.demandMu.Unlock()
		if announced {
			if perr := b.sendDemand(replica, nil); perr != nil {
				b.cfg.log.Warn("nats: demand goodbye not sent", "err", perr)
			}
		}
		if ferr := b.nc.FlushTimeout(time.Second); ferr != nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
			err = fmt.Errorf("natsbus: close: %w", ferr)
		}
		// Count the last drops while nats.go still answers for them.
		b.subsMu.Lock()
		for s, es := range b.subs {
			es.reportDrops(b.cfg.metrics)
			delete(b.subs, s)
		}
		b.subsMu.Unlock()
		b.nc.Close()
	})
	return err
}

// Subject returns the subject of kind's events for code.
func (b *Bus) Subject(kind string, code kisfeed.Code) string {
	return b.cfg.prefix + kind + "." + code.String()
}

func checkKind(kind string) error {
	switch kind {
	case KindTrade, KindBook, KindGap:
		return nil
	}
	return fmt.Errorf("%w %q: want trade, book or gap", ErrKind, kind)
}

// Publish sends payload as kind's event for code, if ctx (the publisher's
// lease tenure, from shared.Lease.Run) is still live; else it returns an
// error wrapping [ErrFenced] and sends nothing. It also fails, rather than
// buffering, while the connection is down.
//
// The check narrows, but does not close, the window in which a replica
// that lost its lease still publishes: a message that passed the check is
// written to the socket at once (nats.go's flusher), so it can trail the
// loss only by a pause of this process between the check and the write.
// shared.Lease.Run ends a tenure ttl/6 before Redis lets another replica
// in, so such a message overlaps the next holder's only if the process
// stalls longer than that margin (1 s at the stream's 6 s ttl). Consumers
// see the epoch in each event's id and can drop an older epoch's events
// after a newer one's; that is the hub's final fence.
func (b *Bus) Publish(ctx context.Context, kind string, code kisfeed.Code, payload []byte) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if code.IsZero() {
		return fmt.Errorf("natsbus: publish %s: zero code", kind)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("natsbus: publish %s %s: %w (%w)", kind, code, ErrFenced, context.Cause(ctx))
	}
	if err := b.nc.Publish(b.Subject(kind, code), payload); err != nil {
		return fmt.Errorf("natsbus: publish %s %s: %w", kind, code, err)
	}
	if f := b.cfg.metrics.Published; f != nil {
		f(kind)
	}
	return nil
}

// deliverOrdered runs the handlers of every event subscription, one
// message at a time in arrival order (WithOrderedDelivery), until Close.
func (b *Bus) deliverOrdered() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stop:
			return
		case m := <-b.ordered:
			b.subsMu.Lock()
			es := b.subs[m.Sub]
			b.subsMu.Unlock()
			if es != nil { // nil: unsubscribed since
				es.cb(m)
			}
		}
	}
}

// eventSub is one NATS subscription of [Bus.Subscribe].
type eventSub struct {
	kind string
	cb   nats.MsgHandler // the handler, for ordered delivery

	mu       sync.Mutex // guards reported, slow
	reported int        // drops already passed to Metrics.Dropped
	slow     bool       // a slow-consumer episode not yet counted in full
	sub      *nats.Subscription
}

// reportDrops passes the drops since the last report to m.Dropped.
func (es *eventSub) reportDrops(m Metrics) {
	es.mu.Lock()
	defer es.mu.Unlock()
	n, err := es.sub.Dropped()
	if err != nil {
		// Unsubscribed or closed: nats.go no longer counts; what was
		// reported is final.
		return
	}
	if d := n - es.reported; d > 0 && m.Dropped != nil {
		m.Dropped(es.kind, d)
	}
	es.reported = n
	es.slow = false
}

// asyncError is nats.go's error callback; a slow consumer starts a drop
// episode, counted now and again when the subscription next delivers
// (nats.go reports an episode once, however many it drops).
func (b *Bus) asyncError(_ *nats.Conn, s *nats.Subscription, err error) {
	if s == nil || !errors.Is(err, nats.ErrSlowConsumer) {
		b.cfg.log.Warn("nats async error", "err", err)
		return
	}
	b.subsMu.Lock()
	es := b.subs[s]
	b.subsMu.Unlock()
	if es == nil {
		return
	}
	b.cfg.log.Warn("nats slow consumer: dropping events", "subject", s.Subject)
	es.reportDrops(b.cfg.metrics)
	es.mu.Lock()
	es.slow = true
	es.mu.Unlock()
}

// Subscribe calls h with the events of kinds (trade, book, gap; none
// means all three) for codes, until the returned unsubscribe is called
// (or the bus closes). Each (kind, code) is its own NATS subscription, so
// the server sends only what this replica's consumers want and one stuck
// code drops only its own events; no codes means every code (one wildcard
// subscription per kind, kisfeed.v1.{kind}.*, the subject parsed per
// message).
//
// Measured (BenchmarkDelivery, 2 shared cores, local server, 300-byte
// events over 40 codes, a replica wanting 5): per-code subscriptions cost
// 0.62 µs per published event, a wildcard with a local filter 1.33 µs, as
// the wildcard makes the server send and the client parse every code's
// events. Subscribing costs ~6.6 µs per subject (BenchmarkSubscribe: 100
// codes × 2 kinds, subscribe and unsubscribe, 1.3 ms), paid on demand
// changes only. So the hub should subscribe once per (code, kind) its
// consumers want, not per consumer, and leave the wildcard to "all codes".
func (b *Bus) Subscribe(codes []kisfeed.Code, kinds []string, h Handler) (unsubscribe func(), err error) {
	if h == nil {
		return nil, errors.New("natsbus: subscribe: nil handler")
	}
	if len(kinds) == 0 {
		kinds = allKinds
	}
	for _, k := range kinds {
		if err := checkKind(k); err != nil {
			return nil, fmt.Errorf("natsbus: subscribe: %w", err)
		}
	}
	var made []*eventSub
	unsub := func() {
		b.subsMu.Lock()
		for _, es := range made {
			delete(b.subs, es.sub)
		}
		b.subsMu.Unlock()
		for _, es := range made {
			es.reportDrops(b.cfg.metrics)
			_ = es.sub.Unsubscribe() // fails only once closed: then it is gone anyway
		}
	}
	add := func(kind, subject string, cb nats.MsgHandler) error {
		es := &eventSub{kind: kind}
		// Register before subscribing: a slow-consumer callback may come
		// as soon as messages flow.
		b.subsMu.Lock()
		defer b.subsMu.Unlock()
		es.cb = func(m *nats.Msg) {
			es.mu.Lock()
			slow := es.slow
			es.mu.Unlock()
			if slow {
				es.reportDrops(b.cfg.metrics)
			}
			cb(m)
		}
		var s *nats.Subscription
		var err error
		if b.ordered != nil {
			s, err = b.nc.ChanSubscribe(subject, b.ordered)
		} else {
			s, err = b.nc.Subscribe(subject, es.cb)
		}
		if err != nil {
			return fmt.Errorf("natsbus: subscribe %s: %w", subject, err)
		}
		es.sub = s
		if b.ordered != nil {
			b.subs[s] = es
			made = append(made, es)
			return nil
		}
		if err := s.SetPendingLimits(b.cfg.pendingMsgs, b.cfg.pendingBytes); err != nil {
			_ = s.Unsubscribe()
			return fmt.Errorf("natsbus: subscribe %s: pending limits: %w", subject, err)
		}
		b.subs[s] = es
		made = append(made, es)
		return nil
	}
	received := b.cfg.metrics.Received
	for _, kind := range kinds {
		if len(codes) == 0 {
			prefix := b.cfg.prefix + kind + "."
			err = add(kind, prefix+"*", func(m *nats.Msg) {
				code, perr := kisfeed.ParseCode(strings.TrimPrefix(m.Subject, prefix))
				if perr != nil {
					b.cfg.log.Warn("nats: event on a subject with a bad code", "subject", m.Subject)
					return
				}
				if received != nil {
					received(kind)
				}
				h(kind, code, m.Data)
			})
		}
		for _, code := range codes {
			if code.IsZero() {
				err = fmt.Errorf("natsbus: subscribe %s: zero code", kind)
				break
			}
			if err = add(kind, b.Subject(kind, code), func(m *nats.Msg) {
				if received != nil {
					received(kind)
				}
				h(kind, code, m.Data)
			}); err != nil {
				break
			}
		}
		if err != nil {
			unsub()
			return nil, err
		}
	}
	var once sync.Once
	return func() { once.Do(unsub) }, nil
}

// Flush waits until the server has processed everything this bus sent
// (its subscriptions included) or ctx ends.
func (b *Bus) Flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		// nats.go wants a deadline here.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("natsbus: flush: %w", err)
	}
	return nil
}
