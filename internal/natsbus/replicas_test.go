package natsbus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/shared"
)

// registration is one call a holder makes to (fake) KIS: register this
// aggregate under this tenure.
type registration struct {
	fence  int64
	demand Demand
}

// tenureInfo is a replica's tenure as the test sees it.
type tenureInfo struct {
	fence int64
	ctx   context.Context
	at    time.Time
}

// replica is the part of a kisfeed serve replica this test needs: a bus,
// a lease on app key "key1", its consumers' demand, and a fake registrar
// standing for the KIS session (what it would register, and when).
type replica struct {
	name  string
	bus   *Bus
	rdb   *goredis.Client
	lease *shared.Lease

	mu      sync.Mutex // guards agg, holding
	agg     Demand     // everybody's demand, watched from start-up
	holding int64      // the fence of the tenure in progress, 0 if none

	registered chan registration // the fake registrar's calls
	aggs       chan Demand       // every aggregate it watched
	acquired   chan tenureInfo
	lost       chan time.Time
}

func startReplica(t *testing.T, ctx context.Context, name, natsURL, prefix string, rdb *goredis.Client, leasePrefix string, ttl time.Duration, demand Demand) *replica {
	t.Helper()
	r := &replica{
		name:       name,
		bus:        connect(t, natsURL, prefix, WithName(name)),
		rdb:        rdb,
		registered: make(chan registration, 64),
		aggs:       make(chan Demand, 64),
		acquired:   make(chan tenureInfo, 4),
		lost:       make(chan time.Time, 4),
	}
	var err error
	r.lease, err = shared.NewLease(rdb, "key1", name, ttl, shared.WithLeasePrefix(leasePrefix))
	if err != nil {
		t.Fatal(err)
	}
	// Watch first, so this replica knows every other's demand before it
	// ever holds the lease.
	if _, err := r.bus.WatchDemand(func(d Demand) {
		r.mu.Lock()
		r.agg = d
		fence := r.holding
		r.mu.Unlock()
		r.aggs <- d
		if fence != 0 {
			r.registered <- registration{fence, d}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.bus.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.bus.PublishDemand(name, demand); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.lease.Run(ctx, func(tctx context.Context, fence int64) {
			r.mu.Lock()
			r.holding = fence
			agg := r.agg
			r.mu.Unlock()
			r.registered <- registration{fence, agg} // the session registers what is wanted now
			r.acquired <- tenureInfo{fence, tctx, time.Now()}
			<-tctx.Done()
			r.mu.Lock()
			r.holding = 0
			r.mu.Unlock()
		}, func() { r.lost <- time.Now() })
	}()
	return r
}

// publishAll publishes one trade per code of d under tenure ti, the
// payload naming the publisher and its fence.
func (r *replica) publishAll(ti tenureInfo, d Demand) error {
	for _, c := range d.Codes() {
		if err := r.bus.Publish(ti.ctx, KindTrade, c, fmt.Appendf(nil, "%s:%d", r.name, ti.fence)); err != nil {
			return err
		}
	}
	return nil
}

// waitRegistered reads r's registrations until one under fence equals want.
func waitRegistered(t *testing.T, r *replica, fence int64, want Demand) {
	t.Helper()
	timeout := time.After(waitTimeout)
	var last registration
	for {
		select {
		case reg := <-r.registered:
			if reg.fence == fence && reg.demand.Equal(want) {
				return
			}
			last = reg
		case <-timeout:
			t.Fatalf("%s: timed out waiting to register %v under fence %d; last %v", r.name, want, fence, last)
		}
	}
}

func testRedisURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("KISFEED_TEST_REDIS_URL")
	if url == "" {
		t.Skip("KISFEED_TEST_REDIS_URL not set: skipping the two-replica test")
	}
	return url
}

// TestTwoReplicas: A holds the lease and publishes events for everyone's
// demand; B serves its consumers from NATS. A is then cut off from Redis
// and NATS at once, as a process killed with -9 (it neither releases nor
// says goodbye): A stops acting by its own clock, B takes the lease when
// it expires, under a higher fence, and registers A's last demand with
// its own; A's stale tenure can no longer publish.
func TestTwoReplicas(t *testing.T) {
	natsURL, prefix := testNATS(t)
	redisURL := testRedisURL(t)
	tests := []struct {
		name string
		ttl  time.Duration
		long bool
	}{
		// 1 s, not less: on a loaded CI machine a scheduling stall longer
		// than the margin (ttl/6) would make a lose the lease before the
		// kill, legitimately, and the test's story with it.
		{"test ttl 1s", time.Second, false},
		{"stream ttl 6s", 6 * time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("-short: skipping the 6 s ttl takeover")
			}
			leasePrefix := "kisfeedtest:" + strings.TrimSuffix(prefix, ".") + ":" + fmt.Sprint(tc.ttl.Milliseconds()) + ":"
			open := func() *goredis.Client {
				rdb, err := shared.Open(redisURL)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = rdb.Close() })
				return rdb
			}
			admin := open()
			t.Cleanup(func() {
				ctx := context.Background()
				admin.Del(ctx, leasePrefix+"lease:stream:key1", leasePrefix+"lease:fence:key1")
			})
			busPrefix := prefix + fmt.Sprint(tc.ttl.Milliseconds()) + "."
			ss, sk, lg := mustCode("005930"), mustCode("000660"), mustCode("003550")
			demandA := Demand{ss: {KindTrade}, sk: {KindTrade}}
			demandB := Demand{sk: {KindTrade}, lg: {KindTrade}}
			both := demandA.Merge(demandB)

			ctx := t.Context()
			ctxA, killA := context.WithCancel(ctx)
			defer killA()
			rdbA := open()
			a := startReplica(t, ctxA, "a", natsURL, busPrefix, rdbA, leasePrefix, tc.ttl, demandA)
			ta := recv(t, a.acquired, "a's tenure")

			// B starts second: A holds the lease, B only serves.
			b := startReplica(t, ctx, "b", natsURL, busPrefix, open(), leasePrefix, tc.ttl, demandB)
			waitRegistered(t, a, ta.fence, both)
			waitDemand(t, b.aggs, both, "b to know a's demand") // from its sync request
			events := make(chan event, 64)
			unsub, err := b.bus.Subscribe(demandB.Codes(), []string{KindTrade}, collect(events))
			if err != nil {
				t.Fatal(err)
			}
			defer unsub()
			if err := b.bus.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := a.publishAll(ta, both); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("a:%d", ta.fence)
			for range demandB {
				if e := recv(t, events, "a's event at b"); e.payload != want {
					t.Fatalf("b got %q, want %q", e.payload, want)
				}
			}

			// kill -9: A's connections vanish; nothing is released.
			killed := time.Now()
			_ = rdbA.Close()
			a.bus.nc.Close()
			// Waits that span the lease's life get its ttl on top.
			limit := waitTimeout + tc.ttl + tc.ttl/3
			lostAt := recvWithin(t, a.lost, limit, "a to stop acting")
			<-ta.ctx.Done()
			if err := a.publishAll(ta, both); !errors.Is(err, ErrFenced) {
				t.Fatalf("a's stale publish: err %v, want ErrFenced", err)
			}
			tb := recvWithin(t, b.acquired, limit, "b's tenure")
			if tb.fence <= ta.fence {
				t.Fatalf("b's fence %d, want > a's %d", tb.fence, ta.fence)
			}
			if !lostAt.Before(tb.at) {
				t.Fatalf("a stopped at %s, after b began at %s", lostAt, tb.at)
			}
			// B registers A's last demand with its own: A never said goodbye,
			// and its entry lives until the 15 s expiry.
			waitRegistered(t, b, tb.fence, both)
			t.Logf("ttl %s: a stopped acting %s after the kill, b took over %s after it (fence %d → %d; bound ttl + ttl/3 = %s)",
				tc.ttl, lostAt.Sub(killed).Round(time.Millisecond), tb.at.Sub(killed).Round(time.Millisecond),
				ta.fence, tb.fence, tc.ttl+tc.ttl/3)

			if err := b.publishAll(tb, both); err != nil {
				t.Fatal(err)
			}
			want = fmt.Sprintf("b:%d", tb.fence)
			for range demandB {
				if e := recv(t, events, "b's event"); e.payload != want {
					t.Fatalf("b's consumers got %q after the takeover, want %q (nothing from a's stale tenure)", e.payload, want)
				}
			}
			if h, f, err := b.lease.Holder(ctx); err != nil || h != "b" || f != tb.fence {
				t.Fatalf("holder %q, %d, %v; want b, %d", h, f, err, tb.fence)
			}
		})
	}
}

func mustCode(s string) kisfeed.Code {
	c, err := kisfeed.ParseCode(s)
	if err != nil {
		panic(err)
	}
	return c
}
