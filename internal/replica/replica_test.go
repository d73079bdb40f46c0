package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/fanout"
	"github.com/kisfeed/kisfeed/internal/live"
	"github.com/kisfeed/kisfeed/internal/natsbus"
	"github.com/kisfeed/kisfeed/internal/shared"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// waitTimeout bounds a wait that does not span a lease's life: far above
// what a step needs, so it fires only when something is broken.
const waitTimeout = 20 * time.Second

// emuOpen is a trading day at 10:00 KST, whatever today is: the market
// clock starts there and runs at real speed, so the emulator trades.
var emuOpen = time.Date(2026, 11, 27, 10, 0, 0, 0, kisfeed.KST)

func TestEpochOrder(t *testing.T) {
	ttl := 6 * time.Second
	at := time.UnixMilli(1_700_000_000_000)
	tests := []struct {
		name string
		a, b epoch // is a newer than b?
		want bool
	}{
		{"higher fence", makeEpoch(8, at, "x"), makeEpoch(7, at.Add(-2*time.Second), "y"), true},
		{"lower fence", makeEpoch(7, at, "x"), makeEpoch(8, at.Add(2*time.Second), "y"), false},
		{"Redis lost the counter: later start wins", makeEpoch(1, at.Add(time.Minute), "x"), makeEpoch(40, at, "y"), true},
		{"an old tenure of a high fence loses to the restarted counter", makeEpoch(40, at, "y"), makeEpoch(1, at.Add(time.Minute), "x"), false},
		{"none yet", epoch{}, makeEpoch(1, at, "x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.newerThan(tt.b, ttl); got != tt.want {
				t.Errorf("%s newer than %s: got %v, want %v", tt.a.raw, tt.b.raw, got, tt.want)
			}
			p, ok := parseEpoch(tt.b.raw)
			if !ok || p != tt.b {
				t.Errorf("parseEpoch(%q) = %+v, %v; want %+v", tt.b.raw, p, ok, tt.b)
			}
		})
	}
}

// collector drains one consumer's queue in the background.
type collector struct {
	c *fanout.Consumer

	mu   sync.Mutex // guards msgs, err
	msgs []*fanout.Message
	err  error
	news chan struct{} // a token after each Take
}

func collect(ctx context.Context, c *fanout.Consumer) *collector {
	col := &collector{c: c, news: make(chan struct{}, 1)}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.Ready():
			}
			msgs, err := c.Take(nil)
			col.mu.Lock()
			col.msgs = append(col.msgs, msgs...)
			col.err = err
			col.mu.Unlock()
			select {
			case col.news <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return col
}

// waitFor waits until cond holds over the messages so far.
func (col *collector) waitFor(t *testing.T, d time.Duration, what string, cond func([]*fanout.Message) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		col.mu.Lock()
		ok, err := cond(col.msgs), col.err
		col.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			t.Fatalf("%s: consumer ended: %v", what, err)
		}
		select {
		case <-col.news:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func isData(m *fanout.Message) bool { return m.Type == fanout.TypeTrade || m.Type == fanout.TypeBook }

// node is one replica's stack: its own Redis client (closed to simulate
// a kill), bus, replica and tenure notifications.
type node struct {
	name    string
	rdb     *goredis.Client
	bus     *natsbus.Bus
	rep     *Replica
	cancel  context.CancelFunc
	done    chan struct{}
	tenures chan bool
	began   chan time.Time
}

func testEnv(t *testing.T) (redisURL, natsURL, id string) {
	t.Helper()
	redisURL, natsURL = os.Getenv("KISFEED_TEST_REDIS_URL"), os.Getenv("KISFEED_TEST_NATS_URL")
	if redisURL == "" || natsURL == "" {
		t.Skip("KISFEED_TEST_REDIS_URL and KISFEED_TEST_NATS_URL must both be set: skipping the two-replica test")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return redisURL, natsURL, hex.EncodeToString(b)
}

// TestTwoReplicas: two replica stacks over one emulator, Redis and NATS.
// Consumers on both get events; the holder is then killed (its Redis
// connection cut, so the lease is not released, and its context
// cancelled): the other replica takes the lease after it expires, every
// surviving consumer gets a gap event and then data of the new epoch,
// no id repeats, and the emulator never saw two sessions for the app key.
func TestTwoReplicas(t *testing.T) {
	redisURL, natsURL, id := testEnv(t)
	const appKey, appSecret = "replica-app-key", "replica-app-secret"
	const ttl = time.Second // the shortest STREAM_LEASE_TTL; see natsbus's replicas test
	start := time.Now()
	market := func() time.Time { return emuOpen.Add(time.Since(start)) }
	emu, base := emulatortest.Start(t, emulator.WithAppKey(appKey, appSecret), emulator.WithMarketClock(market),
		emulator.WithFeedInterval(20*time.Millisecond))
	clk := kisfeed.NewClock(time.Now, market)
	prefix := "test" + id + ".kisfeed.v1."
	leasePrefix := "kisfeedtest:" + id + ":"
	admin, err := shared.Open(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	keyID := LeaseID([]string{appKey})
	t.Cleanup(func() {
		admin.Del(context.Background(), leasePrefix+"lease:stream:"+keyID, leasePrefix+"lease:fence:"+keyID)
		_ = admin.Close()
	})

	startNode := func(name string) *node {
		t.Helper()
		n := &node{name: name, done: make(chan struct{}), tenures: make(chan bool, 8), began: make(chan time.Time, 8)}
		if n.rdb, err = shared.Open(redisURL); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.rdb.Close() })
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		n.bus, err = natsbus.Connect(ctx, natsURL, natsbus.WithPrefix(prefix), natsbus.WithName(name),
			natsbus.WithOrderedDelivery(OrderedQueue))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.bus.Close() })
		n.rep, err = New(Config{
			Name: name, AppKeys: []string{appKey}, TTL: ttl, Redis: n.rdb, Bus: n.bus,
			LeaseOptions: []shared.LeaseOption{shared.WithLeasePrefix(leasePrefix)},
			NewLive: func() (*live.Live, error) {
				return live.New(live.Config{
					Keys: []stream.Credentials{{AppKey: appKey, AppSecret: appSecret}}, RESTBaseURL: base,
					WSURL: "ws" + base[len("http"):] + "/tryitout", Linger: -1, Clock: clk,
					StreamOptions: []stream.Option{stream.WithBackoff(stream.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond})},
				})
			},
			Hub: fanout.Config{Clock: clk},
			OnTenure: func(_ int64, holding bool) {
				if holding {
					n.began <- time.Now()
				}
				n.tenures <- holding
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(context.Background())
		n.cancel = rcancel
		go func() {
			defer close(n.done)
			_ = n.rep.Run(rctx)
		}()
		t.Cleanup(func() {
			n.rep.Hub().Close()
			rcancel()
			<-n.done
		})
		return n
	}
	recvWithin := func(ch <-chan bool, d time.Duration, what string) bool {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(d):
			t.Fatalf("timed out waiting for %s", what)
			return false
		}
	}

	a := startNode("a")
	if !recvWithin(a.tenures, waitTimeout, "a's tenure") {
		t.Fatal("a's first tenure event is an end")
	}
	b := startNode("b")

	codes := []kisfeed.Code{kisfeed.MustParseCode("005930"), kisfeed.MustParseCode("000660")}
	const perReplica = 5
	var onA, onB []*collector
	for _, n := range []*node{a, b} {
		for range perReplica {
			c, err := n.rep.Hub().Subscribe(t.Context(), fanout.Request{Codes: codes, Kinds: fanout.AllKinds, Transport: "sse"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			col := collect(t.Context(), c)
			if n == a {
				onA = append(onA, col)
			} else {
				onB = append(onB, col)
			}
		}
	}
	hasData := func(ms []*fanout.Message) bool {
		for _, m := range ms {
			if isData(m) {
				return true
			}
		}
		return false
	}
	for i, col := range append(append([]*collector{}, onA...), onB...) {
		col.waitFor(t, waitTimeout, "data at consumer "+string(rune('0'+i)), hasData)
	}
	if st := b.rep.Status(); st.Holder || st.Forwarded == 0 {
		t.Fatalf("b before the kill: %+v, want not holder, events forwarded from NATS", st)
	}
	epochA := a.rep.Status().Epoch

	// kill -9: a's Redis connection goes first, so nothing releases the
	// lease; then its process "dies" (its sessions close with it, as the
	// kernel closes a killed process's sockets).
	killed := time.Now()
	_ = a.rdb.Close()
	a.cancel()
	<-a.done
	var tookOver time.Time
	select {
	case tookOver = <-b.began:
	case <-time.After(waitTimeout + ttl + ttl/3):
		t.Fatal("b did not take the lease over")
	}
	takeover := tookOver.Sub(killed)
	t.Logf("b holds the KIS session %s after the kill (lease ttl %s, bound ttl + ttl/3 = %s)", takeover.Round(time.Millisecond), ttl, ttl+ttl/3)
	epochB := b.rep.Status().Epoch
	if epochB == "" || epochB == epochA {
		t.Fatalf("b's epoch %q after a's %q: want a new one", epochB, epochA)
	}

	// Every surviving consumer: a gap event, then data of b's epoch; no id
	// twice in its whole stream.
	for i, col := range onB {
		col.waitFor(t, waitTimeout, "gap then new data at b's consumer "+string(rune('0'+i)), func(ms []*fanout.Message) bool {
			gap := -1
			for j, m := range ms {
				if m.Type == fanout.TypeGap && m.ID == "" {
					gap = j
				}
				if gap >= 0 && j > gap && isData(m) {
					id, err := fanout.ParseID(m.ID)
					return err == nil && id.Epoch == epochB
				}
			}
			return false
		})
		col.mu.Lock()
		seen := map[string]bool{}
		lastSeq := map[string]uint64{} // per epoch: ids increase across codes, in delivery order
		gapAt, firstNew := -1, -1
		for j, m := range col.msgs {
			if m.ID == "" {
				if m.Type == fanout.TypeGap && gapAt < 0 {
					gapAt = j
				}
				continue
			}
			if seen[m.ID] {
				t.Errorf("b's consumer %d: id %s twice", i, m.ID)
			}
			seen[m.ID] = true
			id, _ := fanout.ParseID(m.ID)
			if id.Seq <= lastSeq[id.Epoch] {
				t.Errorf("b's consumer %d: id %s after seq %d of its epoch: out of order", i, m.ID, lastSeq[id.Epoch])
			}
			lastSeq[id.Epoch] = id.Seq
			if id.Epoch == epochB && firstNew < 0 {
				firstNew = j
			}
		}
		col.mu.Unlock()
		if gapAt < 0 || firstNew < gapAt {
			t.Errorf("b's consumer %d: gap at %d, first event of the new epoch at %d; want the gap first", i, gapAt, firstNew)
		}
	}
	ws := emu.Stats().WebSocket
	if ws.MaxSessionsPerAppKey != 1 || ws.InUseRejections != 0 {
		t.Errorf("emulator: max sessions per app key %d, opsp8996 %d; want 1 and 0", ws.MaxSessionsPerAppKey, ws.InUseRejections)
	}
	if ws.SessionsOpened < 2 {
		t.Errorf("emulator: %d sessions opened, want a's and b's", ws.SessionsOpened)
	}
	t.Logf("emulator: sessions opened %d, max concurrent %d, max per app key %d, opsp8996 %d",
		ws.SessionsOpened, ws.SessionsMaxConcurrent, ws.MaxSessionsPerAppKey, ws.InUseRejections)
}

// TestSubscriptionLimit: a replica refuses a code that would take the
// cluster's demand past the app keys' registrations, with the KIS
// client's typed error (the hub turns it into a subscription_limit error
// event), and admits it again once a registration is free.
func TestSubscriptionLimit(t *testing.T) {
	redisURL, natsURL, id := testEnv(t)
	rdb, err := shared.Open(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	bus, err := natsbus.Connect(ctx, natsURL, natsbus.WithPrefix("test"+id+".kisfeed.v1."))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	rep, err := New(Config{Name: "solo", AppKeys: []string{"k"}, TTL: time.Second, Redis: rdb, Bus: bus, PerKey: 3,
		NewLive: func() (*live.Live, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	samsung, hynix := kisfeed.MustParseCode("005930"), kisfeed.MustParseCode("000660")
	var releases []func()
	steps := []struct {
		name  string
		code  kisfeed.Code
		kinds []stream.Kind
		want  bool // admitted
	}{
		{"both kinds of one code: 2 of 3", samsung, nil, true},
		{"the same code again: nothing new", samsung, []stream.Kind{stream.KindTrade}, true},
		{"a trade: 3 of 3", hynix, []stream.Kind{stream.KindTrade}, true},
		{"its book: a 4th", hynix, []stream.Kind{stream.KindBook}, false},
	}
	for _, s := range steps {
		rel, err := rep.acquire(ctx, s.code, s.kinds...)
		if s.want != (err == nil) {
			t.Fatalf("%s: err %v, want admitted %v", s.name, err, s.want)
		}
		if err != nil {
			var le *stream.SubscriptionLimitError
			if !errors.As(err, &le) || le.InUse != 3 || le.PerKey*le.Keys != 3 || le.Want != 1 {
				t.Fatalf("%s: err %v, want a SubscriptionLimitError: 3 in use of 3, 1 wanted", s.name, err)
			}
			continue
		}
		releases = append(releases, rel)
	}
	releases[2]() // hynix's trade
	if _, err := rep.acquire(ctx, hynix, stream.KindBook); err != nil {
		t.Fatalf("after a release: %v, want admitted", err)
	}
}
