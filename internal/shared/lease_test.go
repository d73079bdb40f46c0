package shared_test

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisfeed/kisfeed/internal/shared"
)

// waitTimeout bounds every wait on a channel in these tests: far above
// what any step needs, so it only fires when something is broken.
const waitTimeout = 5 * time.Second

func newLease(t *testing.T, rdb goredis.UniversalClient, prefix, holder string, ttl time.Duration) *shared.Lease {
	t.Helper()
	l, err := shared.NewLease(rdb, "k1", holder, ttl, shared.WithLeasePrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewLeaseRejects(t *testing.T) {
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	tests := []struct {
		name   string
		rdb    goredis.UniversalClient
		keyID  string
		holder string
		ttl    time.Duration
		opts   []shared.LeaseOption
		want   string
	}{
		{"nil client", nil, "k", "a", time.Second, nil, "redis client"},
		{"empty key id", rdb, "", "a", time.Second, nil, "key id"},
		{"empty holder", rdb, "k", "", time.Second, nil, "holder"},
		{"colon in holder", rdb, "k", "a:b", time.Second, nil, "holder"},
		{"tiny ttl", rdb, "k", "a", time.Millisecond, nil, "ttl"},
		{"margin too big", rdb, "k", "a", 3 * time.Second, []shared.LeaseOption{shared.WithLeaseMargin(2 * time.Second)}, "margin"},
		{"negative margin", rdb, "k", "a", 3 * time.Second, []shared.LeaseOption{shared.WithLeaseMargin(-1)}, "margin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := shared.NewLease(tc.rdb, tc.keyID, tc.holder, tc.ttl, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestAppKeyID(t *testing.T) {
	id := shared.AppKeyID("PSsecretappkey")
	if len(id) != 16 || strings.Contains(id, "secret") {
		t.Fatalf("AppKeyID = %q, want 16 hex chars, not the key", id)
	}
	if shared.AppKeyID("other") == id {
		t.Fatal("two app keys share an id")
	}
}

// TestLeaseAcquireRenewRelease walks one lease through its states with two
// holders on separate connections, as two replicas would be.
func TestLeaseAcquireRenewRelease(t *testing.T) {
	mk, prefix := testRedis(t)
	ctx := t.Context()
	a := newLease(t, mk(), prefix, "a", time.Minute)
	b := newLease(t, mk(), prefix, "b", time.Minute)

	if h, f, err := a.Holder(ctx); err != nil || h != "" || f != 0 {
		t.Fatalf("Holder before any = %q, %d, %v; want \"\", 0, nil", h, f, err)
	}
	f1, ok, err := a.Acquire(ctx)
	if err != nil || !ok || f1 <= 0 {
		t.Fatalf("a.Acquire = %d, %v, %v; want a fence > 0, true", f1, ok, err)
	}
	if _, ok, err := b.Acquire(ctx); err != nil || ok {
		t.Fatalf("b.Acquire while a holds = %v, %v; want false, nil", ok, err)
	}
	if _, ok, err := a.Acquire(ctx); err != nil || ok {
		t.Fatalf("a.Acquire again while holding = %v, %v; want false (no re-entry)", ok, err)
	}
	if h, f, err := b.Holder(ctx); err != nil || h != "a" || f != f1 {
		t.Fatalf("Holder = %q, %d, %v; want a, %d", h, f, err, f1)
	}
	if ok, err := a.Renew(ctx, f1); err != nil || !ok {
		t.Fatalf("a.Renew(%d) = %v, %v; want true", f1, ok, err)
	}
	if ok, err := b.Renew(ctx, f1); err != nil || ok {
		t.Fatalf("b.Renew(a's fence) = %v, %v; want false", ok, err)
	}
	if ok, err := a.Renew(ctx, f1+1); err != nil || ok {
		t.Fatalf("a.Renew(wrong fence) = %v, %v; want false", ok, err)
	}
	if err := b.Release(ctx, f1); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := a.Holder(ctx); h != "a" {
		t.Fatalf("after b released a's fence, holder = %q; want a (not b's to release)", h)
	}
	if err := a.Release(ctx, f1); err != nil {
		t.Fatal(err)
	}
	if h, _, err := a.Holder(ctx); err != nil || h != "" {
		t.Fatalf("after release, holder = %q, %v; want none", h, err)
	}
	f2, ok, err := b.Acquire(ctx)
	if err != nil || !ok || f2 <= f1 {
		t.Fatalf("b.Acquire after release = %d, %v, %v; want a fence > %d", f2, ok, err, f1)
	}
	if ok, err := a.Renew(ctx, f1); err != nil || ok {
		t.Fatalf("stale a.Renew(%d) after b took over = %v, %v; want false", f1, ok, err)
	}
	if err := a.Release(ctx, f1); err != nil {
		t.Fatal(err)
	}
	if h, f, _ := a.Holder(ctx); h != "b" || f != f2 {
		t.Fatalf("stale release removed b's tenure: holder %q, %d", h, f)
	}
}

// tenure is what one Run's callbacks report.
type tenure struct {
	fence int64
	ctx   context.Context
	at    time.Time
}

// runLease starts l.Run on ctx, reporting each acquisition on acquired
// and each loss on lost (with the time it was reported).
func runLease(t *testing.T, ctx context.Context, l *shared.Lease) (acquired chan tenure, lost chan time.Time, stopped chan error) {
	t.Helper()
	acquired = make(chan tenure, 8)
	lost = make(chan time.Time, 8)
	stopped = make(chan error, 1)
	go func() {
		stopped <- l.Run(ctx, func(tctx context.Context, fence int64) {
			acquired <- tenure{fence, tctx, time.Now()}
			<-tctx.Done()
		}, func() { lost <- time.Now() })
	}()
	return acquired, lost, stopped
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestLeaseRunTakeover: a holder that stops reaching Redis (its client
// closed, as a killed or partitioned process) stops acting by its local
// clock before the other replica's Run takes the lease under a higher
// fence, and never releases it: the lease expires by its ttl.
func TestLeaseRunTakeover(t *testing.T) {
	mk, prefix := testRedis(t)
	// Short, but not so short that a CI machine's scheduling stalls
	// (the suite runs with -race on two shared cores) outlast the margin
	// and make a lose the lease legitimately while it should hold it.
	const ttl = time.Second
	rdbA := mk()
	a := newLease(t, rdbA, prefix, "a", ttl)
	b := newLease(t, mk(), prefix, "b", ttl)

	ctxA, cancelA := context.WithCancel(t.Context())
	defer cancelA()
	acqA, lostA, stopA := runLease(t, ctxA, a)
	ta := recv(t, acqA, "a's tenure")

	ctxB, cancelB := context.WithCancel(t.Context())
	defer cancelB()
	acqB, _, stopB := runLease(t, ctxB, b)

	// a keeps the lease across several renewals while b competes: wait
	// for the key's TTL to be refreshed (PTTL back above what is left
	// after one interval) three times.
	watch := mk()
	for range 3 {
		waitRenewed(t, watch, prefix, a, ta.fence)
	}
	select {
	case tb := <-acqB:
		t.Fatalf("b acquired (fence %d) while a renews", tb.fence)
	default:
	}

	killed := time.Now()
	_ = rdbA.Close() // a can no longer renew nor release
	<-recv(t, ctxDone(ta.ctx), "a's tenure context cancelled")
	lostAt := recv(t, lostA, "a's onLost")
	tb := recv(t, acqB, "b's tenure after a's lease expired")
	if tb.fence <= ta.fence {
		t.Fatalf("b's fence %d, want > a's %d", tb.fence, ta.fence)
	}
	if !lostAt.Before(tb.at) {
		t.Fatalf("a stopped acting at %s, after b started at %s: two holders at once", lostAt, tb.at)
	}
	t.Logf("ttl %s: a lost locally %s after its Redis vanished; b acquired %s after (bound ttl+ttl/3 = %s)",
		ttl, lostAt.Sub(killed).Round(time.Millisecond), tb.at.Sub(killed).Round(time.Millisecond), ttl+ttl/3)

	cancelA()
	if err := recv(t, stopA, "a's Run to return"); err != context.Canceled {
		t.Fatalf("a's Run = %v, want context.Canceled", err)
	}
	// b's graceful stop releases: the lease is free at once.
	cancelB()
	recv(t, stopB, "b's Run to return")
	if h, _, err := b.Holder(t.Context()); err != nil || h != "" {
		t.Fatalf("after b's Run stopped, holder = %q, %v; want released", h, err)
	}
}

func ctxDone(ctx context.Context) <-chan (<-chan struct{}) {
	ch := make(chan (<-chan struct{}), 1)
	go func() { <-ctx.Done(); ch <- ctx.Done() }()
	return ch
}

// waitRenewed waits until the lease's PTTL shows a renewal for fence: it
// is polled with Redis's blocking-free reads at the renew interval's
// pace, bounded by waitTimeout (a condition, not a sleep for time to pass).
func waitRenewed(t *testing.T, rdb *goredis.Client, prefix string, l *shared.Lease, fence int64) {
	t.Helper()
	ctx := t.Context()
	var low time.Duration
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(l.Interval() / 10)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		h, f, err := l.Holder(ctx)
		if err != nil || h != l.Name() || f != fence {
			t.Fatalf("holder = %q, %d, %v; want %s, %d", h, f, err, l.Name(), fence)
		}
		if pttl, err := rdb.PTTL(ctx, prefix+"lease:stream:k1").Result(); err == nil {
			if low == 0 || pttl < low {
				low = pttl
			}
			if low > 0 && pttl > low+l.Interval()/2 {
				return // extended after it had run down
			}
		}
		<-tick.C
	}
	t.Fatal("timed out waiting for a renewal")
}

// TestLeaseRunHandsOver: a tenure whose work returns releases the lease,
// and a stopped Run releases it, so the next holder need not wait a ttl.
func TestLeaseRunHandsOver(t *testing.T) {
	mk, prefix := testRedis(t)
	ttl := time.Minute // a takeover within the test proves a release
	a := newLease(t, mk(), prefix, "a", ttl)
	b := newLease(t, mk(), prefix, "b", ttl)
	ctx := t.Context()

	acqA := make(chan int64, 1)
	ctxA, cancelA := context.WithCancel(ctx)
	defer cancelA()
	stopA := make(chan error, 1)
	go func() {
		stopA <- a.Run(ctxA, func(_ context.Context, fence int64) {
			acqA <- fence // return at once: the work "failed"
			cancelA()     // and a gives up competing
		}, nil)
	}()
	fa := recv(t, acqA, "a's tenure")
	recv(t, stopA, "a's Run")

	ctxB, cancelB := context.WithCancel(ctx)
	defer cancelB()
	acqB, _, stopB := runLease(t, ctxB, b)
	tb := recv(t, acqB, "b's tenure after a's work returned")
	if tb.fence <= fa {
		t.Fatalf("b's fence %d, want > %d", tb.fence, fa)
	}
	cancelB()
	recv(t, stopB, "b's Run")
	<-tb.ctx.Done()
	if h, _, _ := a.Holder(ctx); h != "" {
		t.Fatalf("after b's Run stopped, holder %q; want released", h)
	}
}

// TestLeaseRunNoLongerOurs: when a renewal finds another tenure in the
// key (here the key was deleted, as a Redis failover that lost it would,
// and b took it), Run ends a's tenure at once rather than at its deadline.
func TestLeaseRunNoLongerOurs(t *testing.T) {
	mk, prefix := testRedis(t)
	admin := mk()
	// Renewals every 500 ms; the local deadline (1.25 s) would end the
	// tenure too, a little later, so this checks the outcome, not the path.
	a := newLease(t, mk(), prefix, "a", 1500*time.Millisecond)
	b := newLease(t, mk(), prefix, "b", time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	acq, lost, stopped := runLease(t, ctx, a)
	ta := recv(t, acq, "a's tenure")
	if err := admin.Del(t.Context(), prefix+"lease:stream:k1").Err(); err != nil {
		t.Fatal(err)
	}
	fb, ok, err := b.Acquire(t.Context())
	if err != nil || !ok || fb <= ta.fence {
		t.Fatalf("b.Acquire = %d, %v, %v; want a fence > %d", fb, ok, err, ta.fence)
	}
	recv(t, lost, "a's onLost")
	select {
	case <-ta.ctx.Done():
	default:
		t.Fatal("onLost ran with a's tenure context still live")
	}
	cancel()
	recv(t, stopped, "a's Run")
	if h, f, _ := b.Holder(t.Context()); h != "b" || f != fb {
		t.Fatalf("holder %q, %d; want b, %d (a's stop must not release b's tenure)", h, f, fb)
	}
}
