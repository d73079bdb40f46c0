package natsbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kisfeed/kisfeed"
)

// Demand is what a replica's consumers want, or all replicas' together:
// for each code, the event kinds (sorted, no repeats; see [Demand.Add]).
type Demand map[kisfeed.Code][]string

// Add adds kinds of code to d, keeping each code's kinds sorted and
// unique. It returns d, made if nil.
func (d Demand) Add(code kisfeed.Code, kinds ...string) Demand {
	if d == nil {
		d = Demand{}
	}
	ks := slices.Concat(d[code], kinds)
	slices.Sort(ks)
	d[code] = slices.Compact(ks)
	return d
}

// Merge returns the union of d and o, a new value.
func (d Demand) Merge(o Demand) Demand {
	out := Demand{}
	for _, src := range []Demand{d, o} {
		for c, ks := range src {
			out.Add(c, ks...)
		}
	}
	return out
}

// Equal reports whether d and o want the same kinds of the same codes
// (nil and empty are equal).
func (d Demand) Equal(o Demand) bool {
	return maps.EqualFunc(d, o, slices.Equal)
}

// Codes returns d's codes, sorted.
func (d Demand) Codes() []kisfeed.Code {
	cs := slices.Collect(maps.Keys(d))
	slices.SortFunc(cs, func(a, b kisfeed.Code) int { return strings.Compare(a.String(), b.String()) })
	return cs
}

// normalized is d with each code's kinds sorted and unique and codes
// without kinds left out: the form Equal compares.
func (d Demand) normalized() Demand {
	out := Demand{}
	for c, ks := range d {
		if len(ks) > 0 {
			out.Add(c, ks...)
		}
	}
	return out
}

// demandMsg is the JSON on kisfeed.v1.demand.{replica}.
type demandMsg struct {
	Replica string              `json:"replica"`
	Codes   map[string][]string `json:"codes"`
}

// SyncSubject returns the subject on which a new watcher asks every
// replica to announce its demand now ([Bus.WatchDemand] does on start),
// so that it knows the whole demand in one round trip instead of within
// one republication period. It is outside the demand.* wildcard.
func (b *Bus) SyncSubject() string { return b.cfg.prefix + "demandsync" }

// DemandSubject returns the subject replica's demand goes on.
func (b *Bus) DemandSubject(replica string) string { return b.cfg.prefix + "demand." + replica }

func checkReplica(replica string) error {
	if replica == "" || strings.ContainsAny(replica, ".*> \t\r\n") {
		return fmt.Errorf("natsbus: replica name %q: want non-empty, without '.', '*', '>' or spaces (it is a subject token)", replica)
	}
	return nil
}

// PublishDemand announces replica's full demand: at once if it changed,
// and again every 5 s (and after a reconnect) until the bus closes, so a
// holder that starts (or takes over) later learns it within one period.
// Call it with the whole set on every change; an empty d says this
// replica wants nothing. Close sends an empty demand as a goodbye.
func (b *Bus) PublishDemand(replica string, d Demand) error {
	if err := checkReplica(replica); err != nil {
		return err
	}
	d = d.normalized()
	b.demandMu.Lock()
	changed := replica != b.demandReplica || !d.Equal(b.demand) || !b.demandLoop
	b.demandReplica, b.demand = replica, d
	if !b.demandLoop {
		select {
		case <-b.stop:
			b.demandMu.Unlock()
			return errors.New("natsbus: publish demand: bus closed")
		default:
		}
		sub, err := b.nc.Subscribe(b.SyncSubject(), func(*nats.Msg) { b.republishDemand() })
		if err != nil {
			b.demandMu.Unlock()
			return fmt.Errorf("natsbus: publish demand: sync subscription: %w", err)
		}
		b.demandLoop = true
		b.wg.Add(1)
		go b.demandTicker(sub)
	}
	b.demandMu.Unlock()
	if !changed {
		return nil
	}
	return b.sendDemand(replica, d)
}

// demandTicker republishes the current demand every period until Close,
// then drops sub, the answer to sync requests.
func (b *Bus) demandTicker(sub *nats.Subscription) {
	defer b.wg.Done()
	defer func() { _ = sub.Unsubscribe() }()
	t := time.NewTicker(b.cfg.demandEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.republishDemand()
		}
	}
}

// republishDemand sends the current demand, if any was ever set; errors
// are logged, since the next period retries.
func (b *Bus) republishDemand() {
	b.demandMu.Lock()
	replica, d, on := b.demandReplica, b.demand, b.demandLoop
	b.demandMu.Unlock()
	if !on {
		return
	}
	if err := b.sendDemand(replica, d); err != nil {
		b.cfg.log.Warn("nats: demand not republished; retrying next period", "err", err)
	}
}

func (b *Bus) sendDemand(replica string, d Demand) error {
	msg := demandMsg{Replica: replica, Codes: make(map[string][]string, len(d))}
	for c, ks := range d {
		msg.Codes[c.String()] = ks
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("natsbus: demand: %w", err)
	}
	if err := b.nc.Publish(b.DemandSubject(replica), data); err != nil {
		return fmt.Errorf("natsbus: publish demand: %w", err)
	}
	return nil
}

// decodeDemand parses a demand message; codes that do not parse are
// skipped (a newer replica's may use a form this one does not know), as
// are unknown kinds.
func decodeDemand(data []byte) (string, Demand, error) {
	var msg demandMsg
	if err := json.Unmarshal(data, &msg); err != nil {
		return "", nil, fmt.Errorf("natsbus: demand message: %w", err)
	}
	if err := checkReplica(msg.Replica); err != nil {
		return "", nil, err
	}
	d := Demand{}
	for s, ks := range msg.Codes {
		c, err := kisfeed.ParseCode(s)
		if err != nil {
			continue
		}
		for _, k := range ks {
			if checkKind(k) == nil {
				d.Add(c, k)
			}
		}
	}
	return msg.Replica, d, nil
}

// demandEntry is one replica's last demand and when it came.
type demandEntry struct {
	d    Demand
	seen time.Time
}

// demandWatch aggregates every replica's demand for WatchDemand.
type demandWatch struct {
	b *Bus
	h func(Demand)

	mu      sync.Mutex // guards entries, last; held while h runs, so calls are serial
	entries map[string]demandEntry
	last    Demand
}

// WatchDemand calls h with the union of every replica's demand (this
// one's included, as it comes back from NATS) each time it changes: when
// a replica announces a new set, says goodbye, or falls silent for 15 s
// (by the bus's clock, [WithClock]). On start it asks every replica to
// announce at once ([Bus.SyncSubject]). Calls are serial; h must not call
// back into the watch. stop ends it (as does Close).
//
// Every replica should watch from start-up, not only while it holds a
// lease: a replica that takes over from a dead holder must already know
// that holder's last demand, which nobody will announce again (it is kept
// until it expires).
func (b *Bus) WatchDemand(h func(aggregate Demand)) (stop func(), err error) {
	if h == nil {
		return nil, errors.New("natsbus: watch demand: nil handler")
	}
	w := &demandWatch{b: b, h: h, entries: map[string]demandEntry{}, last: Demand{}}
	sub, err := b.nc.Subscribe(b.cfg.prefix+"demand.*", func(m *nats.Msg) {
		replica, d, err := decodeDemand(m.Data)
		if err != nil {
			b.cfg.log.Warn("nats: bad demand message", "subject", m.Subject, "err", err)
			return
		}
		w.update(replica, d)
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: watch demand: %w", err)
	}
	// Ask everybody to announce now; the flush makes sure the server
	// knows our subscription before the answers come.
	if err := b.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("natsbus: watch demand: %w", err)
	}
	if err := b.nc.Publish(b.SyncSubject(), nil); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("natsbus: watch demand: sync request: %w", err)
	}
	done := make(chan struct{})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(b.cfg.sweepEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-b.stop:
				return
			case <-t.C:
				w.sweep()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			_ = sub.Unsubscribe() // fails only once closed
		})
	}, nil
}

func (w *demandWatch) update(replica string, d Demand) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(d) == 0 {
		delete(w.entries, replica)
	} else {
		w.entries[replica] = demandEntry{d: d, seen: w.b.cfg.now()}
	}
	w.publishLocked()
}

func (w *demandWatch) sweep() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.b.cfg.now()
	for r, e := range w.entries {
		if now.Sub(e.seen) > w.b.cfg.demandExpiry {
			w.b.cfg.log.Info("nats: replica's demand expired", "replica", r, "silent_for", now.Sub(e.seen))
			delete(w.entries, r)
		}
	}
	w.publishLocked()
}

// publishLocked calls h if the aggregate changed.
func (w *demandWatch) publishLocked() {
	agg := Demand{}
	for _, e := range w.entries {
		agg = agg.Merge(e.d)
	}
	if agg.Equal(w.last) {
		return
	}
	w.last = agg
	w.h(agg.Merge(nil)) // a copy: h may keep it
}
