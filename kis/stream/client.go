package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis"
)

// Client holds one WebSocket session per app key and the registrations
// spread over them. Build it with [New], register codes with
// [Client.Subscribe] (before or during [Client.Run]), and run it.
type Client struct {
	cfg  Config
	o    options
	keys []*keyState
	wide *wideLog

	// mu guards every keyState's regs and ops.
	mu sync.Mutex

	running                                         atomic.Bool
	frames, records, parseErrors, reconnects, gapsN atomic.Int64
}

// reg is one registration: a code on a TR.
type reg struct{ code, tr string }

// op is one message a live session still has to send.
type op struct {
	reg
	subscribe bool // false: unsubscribe
}

// keyState is one app key: its approval keys, its registrations and the
// state of its session.
type keyState struct {
	id       string // "key1": the label metrics and logs use, never the key
	approver *kis.Approver
	regs     map[reg]*regState // guarded by Client.mu
	ops      []op              // guarded by Client.mu
	wake     chan struct{}     // cap 1: regs or ops changed

	up         atomic.Bool
	reconnects atomic.Int64
}

// regState is what the client knows of one registration.
type regState struct {
	acked bool // the live session's server acknowledged it
}

func (k *keyState) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// New checks cfg and the options and builds a Client; it connects nothing
// until [Client.Run].
func New(cfg Config, opts ...Option) (*Client, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("kis stream: %w", err)
		}
	}
	c := &Client{cfg: cfg, o: o, wide: &wideLog{log: o.log}}
	for i, k := range cfg.Keys {
		ap, err := kis.NewApprover(kis.ApproverConfig{BaseURL: cfg.RESTBaseURL, AppKey: k.AppKey,
			AppSecret: k.AppSecret, Store: cfg.ApprovalStore, HTTPClient: o.httpClient, Log: o.log})
		if err != nil {
			return nil, fmt.Errorf("kis stream: keys[%d]: %w", i, err)
		}
		c.keys = append(c.keys, &keyState{id: "key" + strconv.Itoa(i+1), approver: ap,
			regs: map[reg]*regState{}, wake: make(chan struct{}, 1)})
	}
	return c, nil
}

// kindsOrDefault returns kinds without duplicates, or both kinds.
func kindsOrDefault(kinds []Kind) ([]Kind, error) {
	if len(kinds) == 0 {
		return []Kind{KindTrade, KindBook}, nil
	}
	var out []Kind
	for _, k := range kinds {
		if k != KindTrade && k != KindBook {
			return nil, fmt.Errorf("kis stream: kind %d: want KindTrade or KindBook", int(k))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Subscribe registers code for kinds (both trades and books when none is
// given). Each kind is one registration of KIS's 41 per session; a code's
// registrations go to the key already holding the code when it has room,
// else to the least loaded key. It returns once the registrations are
// placed; the session sends them (paced) and restores them after every
// reconnect. Registering what is already registered is a no-op. When the
// keys cannot hold them all, nothing is registered and the error is a
// [*SubscriptionLimitError] (errors.Is [ErrSubscriptionLimit]).
func (c *Client) Subscribe(ctx context.Context, code string, kinds ...Kind) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := kisfeed.ValidateCode(code); err != nil {
		return fmt.Errorf("kis stream: subscribe: %w", err)
	}
	ks, err := kindsOrDefault(kinds)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var want []reg
	for _, k := range ks {
		r := reg{code, c.cfg.TRs.of(k)}
		if c.holderLocked(r) == nil {
			want = append(want, r)
		}
	}
	placed, err := c.placeLocked(code, want)
	if err != nil {
		return err
	}
	for i, r := range want {
		k := placed[i]
		k.regs[r] = &regState{}
		k.ops = append(k.ops, op{r, true})
		k.signal()
		c.o.observer.Registrations(k.id, len(k.regs))
	}
	return nil
}

// holderLocked returns the key holding r, nil when none does.
func (c *Client) holderLocked(r reg) *keyState {
	for _, k := range c.keys {
		if _, ok := k.regs[r]; ok {
			return k
		}
	}
	return nil
}

// placeLocked picks a key for each registration in want (all or none).
func (c *Client) placeLocked(code string, want []reg) ([]*keyState, error) {
	load := make(map[*keyState]int, len(c.keys))
	var home *keyState // a key already streaming code
	inUse := 0
	for _, k := range c.keys {
		load[k] = len(k.regs)
		inUse += len(k.regs)
		for r := range k.regs {
			if home == nil && r.code == code {
				home = k
			}
		}
	}
	out := make([]*keyState, len(want))
	for i := range want {
		pick := home
		if pick == nil || load[pick] >= c.cfg.MaxPerSession {
			pick = nil
			for _, k := range c.keys {
				if load[k] < c.cfg.MaxPerSession && (pick == nil || load[k] < load[pick]) {
					pick = k
				}
			}
		}
		if pick == nil {
			return nil, &SubscriptionLimitError{Keys: len(c.keys), PerKey: c.cfg.MaxPerSession, InUse: inUse, Want: len(want)}
		}
		load[pick]++
		home = pick
		out[i] = pick
	}
	return out, nil
}

// Unsubscribe removes code's registrations for kinds (both when none is
// given) and, on a live session, tells KIS. Removing what is not
// registered is a no-op.
func (c *Client) Unsubscribe(ctx context.Context, code string, kinds ...Kind) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ks, err := kindsOrDefault(kinds)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, kind := range ks {
		r := reg{code, c.cfg.TRs.of(kind)}
		k := c.holderLocked(r)
		if k == nil {
			continue
		}
		delete(k.regs, r)
		k.ops = append(k.ops, op{r, false})
		k.signal()
		c.o.observer.Registrations(k.id, len(k.regs))
	}
	return nil
}

// Run holds a session for every key that has registrations, reconnecting
// as needed, until ctx is done; then it closes every session, waits for
// its goroutines (resync calls included) and returns ctx's error. A
// Client runs once at a time.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("kis stream: Run already running")
	}
	defer c.running.Store(false)
	var wg, resyncs sync.WaitGroup
	for _, k := range c.keys {
		wg.Go(func() { c.runKey(ctx, k, &resyncs) })
	}
	wg.Wait()
	resyncs.Wait()
	return ctx.Err()
}

// Stats are a Client's counters.
type Stats struct {
	Keys        []KeyStats
	Frames      int64 // data frames framed
	Records     int64 // records decoded into events
	ParseErrors int64 // frames or records refused
	Reconnects  int64
	Gaps        int64 // gap events
}

// KeyStats describe one app key's session.
type KeyStats struct {
	ID            string // "key1" …
	Connected     bool
	Registrations int   // registrations the key holds
	Acknowledged  int   // of which the live session's server acknowledged
	Reconnects    int64 // reconnects of this key's session
	KeysIssued    int64 // approval keys this client issued for it
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	s := Stats{Frames: c.frames.Load(), Records: c.records.Load(), ParseErrors: c.parseErrors.Load(),
		Reconnects: c.reconnects.Load(), Gaps: c.gapsN.Load()}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.keys {
		ks := KeyStats{ID: k.id, Connected: k.up.Load(), Registrations: len(k.regs),
			Reconnects: k.reconnects.Load(), KeysIssued: k.approver.Issued()}
		for _, st := range k.regs {
			if st.acked {
				ks.Acknowledged++
			}
		}
		s.Keys = append(s.Keys, ks)
	}
	return s
}

// resetOpsLocked queues a subscribe for every registration of k (a new
// session starts empty) in a stable order, all unacknowledged.
func (k *keyState) resetOpsLocked() {
	k.ops = k.ops[:0]
	for r, st := range k.regs {
		st.acked = false
		k.ops = append(k.ops, op{r, true})
	}
	slices.SortFunc(k.ops, func(a, b op) int {
		return cmp.Or(cmp.Compare(a.code, b.code), cmp.Compare(a.tr, b.tr))
	})
}
