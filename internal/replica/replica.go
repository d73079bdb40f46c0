// Package replica runs serve as one of several replicas sharing the KIS
// sessions through NATS (NATS_URL set; issue 11, part 3).
//
// One Redis lease ([shared.Lease], key kisfeed:lease:stream:{keyid})
// decides which replica holds the KIS WebSocket sessions. The holder
// (its tenure, [Replica.Run]) builds a fresh internal/live stream, stamps
// the ids of its hub with a new epoch, publishes every event to its own
// hub and to NATS, and registers with KIS the demand of every replica
// (natsbus.WatchDemand, plus its own); when the tenure ends it closes the
// stream at once, before the lease can pass to anyone else. Every replica
// serves its own consumers: its hub's [fanout.Demand] is this package's
// proxy, which announces the wanted codes on NATS (PublishDemand) and
// subscribes to their events there, forwarding them into the hub
// (fanout.Hub.Forward). When the epoch changes (another replica took the
// session over) or NATS reconnects, every replica sends its consumers one
// gap event per code before the new data; ids never repeat, since every
// tenure has its own epoch.
//
// # One lease for every app key
//
// The lease's id is shared.AppKeyID over the sorted app keys, so one
// replica holds the sessions of every key. That is enough for "exactly
// one session per app key cluster-wide": a session for a key opens only
// inside a tenure, a tenure ends (and closes its sessions) before Redis
// lets the next one begin, and a process never runs two tenures at once;
// so at any instant at most one replica has any session open, hence at
// most one per key. Per-key leases would spread the keys' sessions (and
// their 41 registrations each) over replicas, and a dead holder would
// cost only its keys' consumers a gap; but the demand would then have to
// be split across holders (which codes go on which key is today decided
// by one kis/stream client that sees all keys) and every replica would
// see several epochs at once. With one holder the design stays that of a
// single process, moved.
package replica

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/fanout"
	"github.com/kisfeed/kisfeed/internal/live"
	"github.com/kisfeed/kisfeed/internal/natsbus"
	"github.com/kisfeed/kisfeed/internal/shared"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// GapReconnect is the reason of the gap events a replica sends its
// consumers after its NATS connection came back (events published while
// it was down are lost). A holder change uses [fanout.GapEpoch].
const GapReconnect = "nats_reconnected"

// OrderedQueue is the NATS delivery queue a replica's bus should have
// (natsbus.WithOrderedDelivery): events are forwarded in the order the
// holder published them, and 65,536 events (nats.go's own pending limit)
// cover seconds of a full KIS feed if the hub ever stalls.
const OrderedQueue = 65536

// Config is what [New] needs. Its Bus should deliver in order
// ([OrderedQueue]).
type Config struct {
	// Name is this replica's name (KISFEED_REPLICA): the lease holder and
	// the demand subject; unique among live replicas.
	Name string
	// AppKeys are every app key whose sessions the holder opens; the
	// lease id is derived from them (never the keys themselves).
	AppKeys []string
	// TTL is the lease's time to live (STREAM_LEASE_TTL).
	TTL time.Duration
	// Redis holds the lease.
	Redis goredis.UniversalClient
	// LeaseOptions are passed to shared.NewLease (tests: a key prefix).
	LeaseOptions []shared.LeaseOption
	// Bus is the NATS connection; wire its connection events to
	// [Replica.ConnEvent].
	Bus *natsbus.Bus
	// NewLive builds a new, unstarted stream for a tenure
	// (wiring.Stack.NewLive).
	NewLive func() (*live.Live, error)
	// Hub configures this replica's hub; its Demand is replaced by the
	// replica's proxy.
	Hub fanout.Config
	// Logger; discard when nil.
	Logger *slog.Logger
	// PerKey is the registrations one app key's session holds (KIS: 41,
	// the default); a replica refuses a code that would take the
	// cluster's demand past PerKey × len(AppKeys).
	PerKey int
	// OnTenure, when set, hears each tenure begin (holding true, once
	// its stream is started) and end (false, once its sessions are
	// closed): tests wait on it.
	OnTenure func(fence int64, holding bool)
}

type demandKey struct {
	code kisfeed.Code
	kind string // natsbus.KindTrade or KindBook
}

// Replica is one serve replica: its hub, the lease, the demand proxy and
// the NATS relay.
type Replica struct {
	cfg   Config
	hub   *fanout.Hub
	lease *shared.Lease
	log   *slog.Logger
	tag   string // a hash of the name: part of every epoch, a valid epoch token

	mu        sync.Mutex                // guards the fields below
	local     map[demandKey]int         // this replica's consumers' demand, refcounted
	subs      map[demandKey]func()      // NATS subscriptions; kind "gap" is the code's gap subject
	agg       natsbus.Demand            // every replica's demand, watched
	ownEpochs map[string]bool           // epochs of this replica's tenures: their NATS echo is skipped
	status    Status                    // what Status reports
	changed   chan struct{}             // wakes the tenure to re-register (buffered 1)
	lastEp    epoch                     // the newest epoch seen (own or NATS); guarded by fwdMu, not mu
	fwdMu     sync.Mutex                // serialises forwards and gap sends, so a gap precedes its epoch's events
	live      atomic.Pointer[live.Live] // the tenure's stream, nil when not holder
	gaps      atomic.Uint64             // gap events sent (codes × changes)
	forwarded atomic.Uint64             // NATS events forwarded into the hub
	skipped   atomic.Uint64             // NATS events dropped: own echo or a stale epoch
}

// Status is what a replica reports in /v1/status.
type Status struct {
	// Name is this replica's name.
	Name string `json:"replica"`
	// Holder says this replica holds the KIS sessions now.
	Holder bool `json:"holder"`
	// Epoch is the epoch of the ids this replica assigns while holder
	// (empty otherwise), Fence the lease's fencing token of that tenure.
	Epoch string `json:"epoch,omitempty"`
	Fence int64  `json:"fence,omitempty"`
	// Since is when the current tenure began (holder only).
	Since time.Time `json:"since,omitzero"`
	// Tenures counts the tenures this replica has held.
	Tenures int `json:"tenures"`
	// Gaps counts the gap events sent to consumers on holder changes and
	// NATS reconnects; Forwarded the events relayed from NATS; Skipped
	// those dropped (own echo, a stale holder's epoch).
	Gaps      uint64 `json:"gaps"`
	Forwarded uint64 `json:"forwarded"`
	Skipped   uint64 `json:"skipped"`
}

// New builds the replica and its hub; [Replica.Run] competes for the
// lease.
func New(cfg Config) (*Replica, error) {
	switch {
	case cfg.Bus == nil || cfg.Redis == nil || cfg.NewLive == nil:
		return nil, errors.New("replica: want a bus, a Redis client and NewLive")
	case len(cfg.AppKeys) == 0:
		return nil, errors.New("replica: want at least one app key")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lease, err := shared.NewLease(cfg.Redis, LeaseID(cfg.AppKeys), cfg.Name, cfg.TTL,
		append([]shared.LeaseOption{shared.WithLeaseLogger(log)}, cfg.LeaseOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	h := fnv.New32a()
	h.Write([]byte(cfg.Name))
	r := &Replica{cfg: cfg, lease: lease, log: log, tag: strconv.FormatUint(uint64(h.Sum32()), 36),
		local: map[demandKey]int{}, subs: map[demandKey]func(){}, ownEpochs: map[string]bool{},
		changed: make(chan struct{}, 1), status: Status{Name: cfg.Name}}
	if cfg.PerKey <= 0 {
		cfg.PerKey = 41
	}
	r.cfg.PerKey = cfg.PerKey
	hc := cfg.Hub
	hc.Demand = fanout.DemandFunc(r.acquire)
	if r.hub, err = fanout.NewHub(hc); err != nil {
		return nil, err
	}
	return r, nil
}

// LeaseID is the stream lease's id for a set of app keys: shared.AppKeyID
// over the sorted keys (for one key, that key's id). Every replica with
// the same keys computes the same id.
func LeaseID(appKeys []string) string {
	ks := slices.Clone(appKeys)
	slices.Sort(ks)
	return shared.AppKeyID(strings.Join(ks, "\n"))
}

// Hub is the replica's hub: mount its SSE and WebSocket handlers.
func (r *Replica) Hub() *fanout.Hub { return r.hub }

// Status reports whether this replica holds the sessions, and its counters.
func (r *Replica) Status() Status {
	r.mu.Lock()
	s := r.status
	r.mu.Unlock()
	s.Gaps, s.Forwarded, s.Skipped = r.gaps.Load(), r.forwarded.Load(), r.skipped.Load()
	return s
}

// LiveStats are the KIS client's figures while this replica holds the
// sessions, empty otherwise.
func (r *Replica) LiveStats() stream.Stats {
	if l := r.live.Load(); l != nil {
		return l.Stats().Stream
	}
	return stream.Stats{}
}

// Run watches the demand of every replica and competes for the lease
// until ctx ends; then it closes the hub's consumers' NATS subscriptions
// and returns. A holder's tenure ends (sessions closed) before Run
// returns, and the lease is released so another replica takes over at
// once.
func (r *Replica) Run(ctx context.Context) error {
	// Watch from start-up: a replica taking over from a dead holder must
	// already know the dead one's last demand.
	stop, err := r.cfg.Bus.WatchDemand(func(d natsbus.Demand) {
		r.mu.Lock()
		r.agg = d
		r.mu.Unlock()
		r.signal()
	})
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	defer stop()
	err = r.lease.Run(ctx, r.tenure, nil)
	r.mu.Lock()
	for k, unsub := range r.subs {
		unsub()
		delete(r.subs, k)
	}
	r.mu.Unlock()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// ConnEvent hears the NATS connection (natsbus.WithConnEvents): after a
// reconnect, whatever was published meanwhile is gone, so a replica that
// does not hold the sessions sends its consumers a gap event per code.
func (r *Replica) ConnEvent(e natsbus.ConnEvent) {
	if e.Kind != natsbus.Reconnected {
		return
	}
	r.mu.Lock()
	holder := r.status.Holder
	r.mu.Unlock()
	if holder {
		return // its consumers are fed by its own stream, not NATS: they missed nothing
	}
	go func() { // off nats.go's callback goroutine: GapAll takes the hub's lock
		r.fwdMu.Lock()
		defer r.fwdMu.Unlock()
		n := r.hub.GapAll(GapReconnect)
		r.gaps.Add(uint64(n))
		r.log.Info("nats reconnected: gap events sent", "codes", n)
	}()
}

func (r *Replica) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// kindName is the NATS kind of a registration kind.
func kindName(k stream.Kind) string {
	if k == stream.KindBook {
		return natsbus.KindBook
	}
	return natsbus.KindTrade
}

// acquire is the hub's Demand: it records what this replica's consumers
// want, subscribes to it on NATS and announces it to the holder. It
// refuses, with the KIS client's *stream.SubscriptionLimitError, a code
// that would take every replica's demand (as last announced) past the
// app keys' registrations: the holder, which registers after the fact,
// could not refuse it to this consumer. Two replicas admitting the last
// registration at once can still overshoot; the holder then logs what
// KIS refused.
func (r *Replica) acquire(ctx context.Context, code kisfeed.Code, kinds ...stream.Kind) (func(), error) {
	if len(kinds) == 0 {
		kinds = []stream.Kind{stream.KindTrade, stream.KindBook}
	}
	var keys []demandKey
	r.mu.Lock()
	if err := r.checkLimitLocked(code, kinds); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	for _, k := range kinds {
		key := demandKey{code, kindName(k)}
		if r.local[key] == 0 {
			if err := r.subscribeLocked(key); err != nil {
				r.mu.Unlock()
				r.releaseKeys(keys)
				return nil, err
			}
		}
		r.local[key]++
		keys = append(keys, key)
	}
	d := r.localDemandLocked()
	r.mu.Unlock()
	r.announce(d)
	// The subscription must be known to the server before the holder
	// registers the code, or the first events could pass us by.
	if err := r.cfg.Bus.Flush(ctx); err != nil {
		r.log.Warn("nats flush after subscribe", "err", err)
	}
	var once sync.Once
	return func() { once.Do(func() { r.releaseKeys(keys) }) }, nil
}

// checkLimitLocked refuses kinds of code when the cluster's demand has no
// registration left for them (r.mu held).
func (r *Replica) checkLimitLocked(code kisfeed.Code, kinds []stream.Kind) error {
	all := r.agg.Merge(r.localDemandLocked())
	inUse := 0
	for _, ks := range all {
		inUse += len(ks)
	}
	want := 0
	for _, k := range kinds {
		if !slices.Contains(all[code], kindName(k)) {
			want++
		}
	}
	if want > 0 && inUse+want > r.cfg.PerKey*len(r.cfg.AppKeys) {
		return &stream.SubscriptionLimitError{Keys: len(r.cfg.AppKeys), PerKey: r.cfg.PerKey, InUse: inUse, Want: want}
	}
	return nil
}

// subscribeLocked subscribes to key's events and, with the code's first
// kind, to its gaps (r.mu held).
func (r *Replica) subscribeLocked(key demandKey) error {
	unsub, err := r.cfg.Bus.Subscribe([]kisfeed.Code{key.code}, []string{key.kind}, r.onEvent)
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	r.subs[key] = unsub
	gk := demandKey{key.code, natsbus.KindGap}
	if r.subs[gk] == nil {
		if unsub, err := r.cfg.Bus.Subscribe([]kisfeed.Code{key.code}, []string{natsbus.KindGap}, r.onEvent); err == nil {
			r.subs[gk] = unsub
		}
	}
	return nil
}

func (r *Replica) releaseKeys(keys []demandKey) {
	if len(keys) == 0 {
		return
	}
	r.mu.Lock()
	for _, key := range keys {
		if r.local[key]--; r.local[key] > 0 {
			continue
		}
		delete(r.local, key)
		if unsub := r.subs[key]; unsub != nil {
			unsub()
			delete(r.subs, key)
		}
		gk := demandKey{key.code, natsbus.KindGap}
		if r.local[demandKey{key.code, natsbus.KindTrade}] == 0 && r.local[demandKey{key.code, natsbus.KindBook}] == 0 {
			if unsub := r.subs[gk]; unsub != nil {
				unsub()
				delete(r.subs, gk)
			}
		}
	}
	d := r.localDemandLocked()
	r.mu.Unlock()
	r.announce(d)
}

// localDemandLocked is this replica's demand as NATS carries it (r.mu held).
func (r *Replica) localDemandLocked() natsbus.Demand {
	d := natsbus.Demand{}
	for k := range r.local {
		d.Add(k.code, k.kind)
	}
	return d
}

// announce publishes this replica's demand and wakes a tenure in
// progress (the holder registers its own demand without waiting for the
// NATS echo).
func (r *Replica) announce(d natsbus.Demand) {
	if err := r.cfg.Bus.PublishDemand(r.cfg.Name, d); err != nil {
		r.log.Warn("demand not announced; republished within 5 s", "err", err)
	}
	r.signal()
}
