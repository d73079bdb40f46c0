package shared_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kisfeed/kisfeed/internal/shared"
)

// token stands for kis.Token, which this package must not import: a
// record with a secret and the time Redis keeps it until.
type token struct {
	Value  string    `json:"value"`
	Type   string    `json:"type"`
	Retain time.Time `json:"retain"`
}

func retainUntil(t token) time.Time { return t.Retain }

// memStore is the local fallback: records in a map, a channel lock per id.
type memStore struct {
	mu    sync.Mutex
	recs  map[string]token
	locks map[string]chan struct{}
}

func newMemStore() *memStore {
	return &memStore{recs: map[string]token{}, locks: map[string]chan struct{}{}}
}

func (m *memStore) Load(_ context.Context, id string) (*token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.recs[id]
	if !ok {
		return nil, nil
	}
	return &t, nil
}

func (m *memStore) Save(_ context.Context, id string, t *token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[id] = *t
	return nil
}

func (m *memStore) Lock(ctx context.Context, id string) (func(), error) {
	m.mu.Lock()
	l, ok := m.locks[id]
	if !ok {
		l = make(chan struct{}, 1)
		m.locks[id] = l
	}
	m.mu.Unlock()
	select {
	case l <- struct{}{}:
		return sync.OnceFunc(func() { <-l }), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// newStore builds a token store on rdb with a fresh in-memory fallback.
func newStore(t *testing.T, rdb goredis.UniversalClient, opts ...shared.TokenOption) *shared.TokenStore[token] {
	t.Helper()
	s, err := shared.NewTokenStore(rdb, newMemStore(), retainUntil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testRedis returns a new client on KISFEED_TEST_REDIS_URL (each call a
// separate connection pool, as separate processes would have) and a
// unique prefix whose keys are removed at cleanup.
func testRedis(t *testing.T) (func() *goredis.Client, string) {
	t.Helper()
	url := os.Getenv("KISFEED_TEST_REDIS_URL")
	if url == "" {
		t.Skip("KISFEED_TEST_REDIS_URL not set: skipping real-Redis test")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "kisfeedtest:shared:" + hex.EncodeToString(b) + ":"
	var mu sync.Mutex
	var clients []*goredis.Client
	mk := func() *goredis.Client {
		rdb, err := shared.Open(url)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if err := rdb.Ping(t.Context()).Err(); err != nil {
			t.Fatalf("redis ping: %v", err)
		}
		mu.Lock()
		clients = append(clients, rdb)
		mu.Unlock()
		return rdb
	}
	admin := mk()
	t.Cleanup(func() {
		ctx := context.Background()
		for _, pat := range []string{prefix + "*", "rate:" + prefix + "*"} {
			iter := admin.Scan(ctx, 0, pat, 500).Iterator()
			for iter.Next(ctx) {
				admin.Del(ctx, iter.Val())
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range clients {
			c.Close()
		}
	})
	return mk, prefix
}

// deadRedis is a client on a port where nothing listens.
func deadRedis(t *testing.T) *goredis.Client {
	rdb, err := shared.Open("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestTokenStoreRoundTrip(t *testing.T) {
	t.Parallel()
	mk, prefix := testRedis(t)
	rdb := mk()
	now := time.Now()
	s := newStore(t, rdb, shared.WithTokenPrefix(prefix))
	ctx := t.Context()

	got, err := s.Load(ctx, "id1")
	if err != nil || got != nil {
		t.Fatalf("Load of nothing: got %v, %v; want nil, nil", got, err)
	}
	tok := &token{Value: "secret-jwt", Type: "Bearer", Retain: now.Add(2 * time.Hour).Truncate(time.Second)}
	if err := s.Save(ctx, "id1", tok); err != nil {
		t.Fatal(err)
	}
	// Another process (another client) sees it.
	other := newStore(t, mk(), shared.WithTokenPrefix(prefix))
	got, err = other.Load(ctx, "id1")
	if err != nil || got == nil {
		t.Fatalf("Load: got %v, %v; want the token", got, err)
	}
	if got.Value != tok.Value || !got.Retain.Equal(tok.Retain) || got.Type != "Bearer" {
		t.Errorf("Load: got %v, want %v", got, tok)
	}
	ttl, err := rdb.PTTL(ctx, prefix+"kis:token:id1").Result()
	if err != nil || ttl < 119*time.Minute || ttl > 2*time.Hour {
		t.Errorf("TTL: got %v, %v; want about 2h (retainUntil)", ttl, err)
	}
	// A record retained for less than a second (or already past) still
	// lives a second, so a sharer can read what was just written.
	past := &token{Type: "Bearer", Retain: now.Add(-time.Minute)}
	if err := s.Save(ctx, "id1", past); err != nil {
		t.Fatal(err)
	}
	ttl, _ = rdb.PTTL(ctx, prefix+"kis:token:id1").Result()
	if ttl <= 0 || ttl > time.Second {
		t.Errorf("TTL of a record retained until the past: got %v, want (0, 1s]", ttl)
	}
	// The record is its JSON form, whatever T is (kis.Token's keys are
	// fixed by kis's TestTokenJSON).
	raw, err := rdb.Get(ctx, prefix+"kis:token:id1").Result()
	if want := `"type":"Bearer"`; err != nil || !strings.Contains(raw, want) {
		t.Errorf("stored record: got %q, %v; want JSON with %s", raw, err, want)
	}
}

// lockHook reports, for the commands of one client that Redis answered,
// each run of the lock renewal script (EVALSHA or EVAL with one key, the
// owner and a TTL; the unlock script has no TTL) on renewed, true when it
// extended the lock, false when it found it gone or someone else's; and
// each SET NX that found the key taken on refused. Failed commands and
// NOSCRIPT before the EVAL are not reported.
type lockHook struct{ renewed, refused chan bool }

func (lockHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (lockHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func (h lockHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		name := strings.ToLower(cmd.Name())
		switch c := cmd.(type) {
		case *goredis.Cmd:
			if h.renewed != nil && err == nil && (name == "evalsha" || name == "eval") && len(cmd.Args()) == 6 {
				n, _ := c.Int64()
				select {
				case h.renewed <- n == 1:
				default:
				}
			}
		case *goredis.BoolCmd:
			if h.refused != nil && err == nil && name == "set" && !c.Val() {
				select {
				case h.refused <- true:
				default:
				}
			}
		}
		return err
	}
}

// patientRedis is a client on url with the go-redis default timeouts (3 s
// reads), not shared.Open's 500 ms: on a loaded machine under -race a
// round trip to the local Redis took longer than 500 ms now and then, and
// the store then treats Redis as down, which is TestRedisDownDegrades's
// subject, not TestTokenStoreLock's.
func patientRedis(t *testing.T) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(os.Getenv("KISFEED_TEST_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestTokenStoreLock: while A holds the lock, renewing it, B cannot get
// it; once A releases it, a waiting B gets it.
//
// Nothing here waits on a timer. B's attempt is not bounded by a timeout
// but stopped once Redis has extended A's lock (A's renewal script
// answered 1: the key was still A's and got a new TTL) and has then
// refused B's SET NX twice, both observed on the clients with go-redis
// hooks. The lock TTL (1.5 s, renewed every 500 ms) is only a margin: the
// lock lapses only if a renewal cannot get through for a second.
//
// It used a 90 ms TTL (renewals every 30 ms, each given 30 ms), shared.Open's
// 500 ms read timeout and a fixed 400 ms attempt. On a loaded machine
// under -race no renewal got through within 90 ms now and then, the lock
// expired and B took it; or B's SET NX timed out after 500 ms and B fell
// back to its local lock. Either way: "second Lock while held: got <nil>,
// want DeadlineExceeded".
func TestTokenStoreLock(t *testing.T) {
	t.Parallel()
	const ttl = 1500 * time.Millisecond
	_, prefix := testRedis(t) // the prefix, and its keys removed at cleanup
	rdbA, rdbB := patientRedis(t), patientRedis(t)
	renewed := make(chan bool, 100)
	refused := make(chan bool, 1)
	rdbA.AddHook(lockHook{renewed: renewed})
	rdbB.AddHook(lockHook{refused: refused})
	a := newStore(t, rdbA, shared.WithTokenPrefix(prefix), shared.WithLockTTL(ttl))
	var logsB logBuf // says whether B fell back to its local lock
	b := newStore(t, rdbB, shared.WithTokenPrefix(prefix), shared.WithLockTTL(ttl),
		shared.WithTokenLogger(slog.New(slog.NewTextHandler(&logsB, nil))))
	ctx := t.Context()

	unlockA, err := a.Lock(ctx, "id")
	if err != nil {
		t.Fatal(err)
	}
	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	tried := make(chan error, 1)
	go func() {
		unlock, err := b.Lock(bctx, "id")
		if err == nil {
			unlock()
		}
		tried <- err
	}()
	// Refusals of B after A's first renewal; the one before it is drained.
	refusals := -1
	for refusals < 2 {
		select {
		case ok := <-renewed:
			if !ok {
				t.Fatal("A's renewal found its lock gone: it lapsed while held")
			}
			if refusals < 0 {
				refusals = 0
				select {
				case <-refused:
				default:
				}
			}
		case <-refused:
			if refusals >= 0 {
				refusals++
			}
		case err := <-tried:
			t.Fatalf("second Lock while held: got %v, want it to wait while A renews (B's log: %q)", err, logsB.String())
		}
	}
	stopB()
	if err := <-tried; !errors.Is(err, context.Canceled) {
		t.Fatalf("second Lock while held: got %v, want it still waiting when stopped", err)
	}
	// B waits, A releases, B gets it.
	got := make(chan error, 1)
	go func() {
		unlockB, err := b.Lock(ctx, "id")
		if err == nil {
			unlockB()
		}
		got <- err
	}()
	unlockA()
	unlockA() // idempotent
	if err := <-got; err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
}

func TestTokenStoreUnlockOnlyOwnLock(t *testing.T) {
	t.Parallel()
	mk, prefix := testRedis(t)
	rdb := mk()
	s := newStore(t, rdb, shared.WithTokenPrefix(prefix), shared.WithLockTTL(time.Second))
	ctx := t.Context()
	unlock, err := s.Lock(ctx, "id")
	if err != nil {
		t.Fatal(err)
	}
	// The lock expired and someone else took it (simulated).
	key := prefix + "kis:token:id:lock"
	if err := rdb.Set(ctx, key, "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	unlock()
	if v, _ := rdb.Get(ctx, key).Result(); v != "someone-else" {
		t.Errorf("lock owner after our unlock: got %q, want someone-else's lock kept", v)
	}
}

// TestTokenStoreConcurrentIssuance runs the issuance protocol of the kis
// client (load, lock, re-load, issue, save) from 6 stores at once: exactly
// one issues.
func TestTokenStoreConcurrentIssuance(t *testing.T) {
	t.Parallel()
	mk, prefix := testRedis(t)
	ctx := t.Context()
	var mu sync.Mutex
	issued := 0
	var wg sync.WaitGroup
	for range 6 {
		s := newStore(t, mk(), shared.WithTokenPrefix(prefix))
		wg.Go(func() {
			if tok, _ := s.Load(ctx, "id"); tok != nil {
				return
			}
			unlock, err := s.Lock(ctx, "id")
			if err != nil {
				t.Error(err)
				return
			}
			defer unlock()
			if tok, _ := s.Load(ctx, "id"); tok != nil {
				return
			}
			mu.Lock()
			issued++
			mu.Unlock()
			_ = s.Save(ctx, "id", &token{Value: "v", Type: "Bearer", Retain: time.Now().Add(time.Hour)})
		})
	}
	wg.Wait()
	if issued != 1 {
		t.Errorf("issuances: got %d, want 1", issued)
	}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRedisDownDegrades(t *testing.T) {
	t.Parallel()
	var logs logBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	rdb := deadRedis(t)
	ctx := t.Context()

	s := newStore(t, rdb, shared.WithTokenLogger(log))
	tok := &token{Value: "secret-jwt", Type: "Bearer", Retain: time.Now().Add(time.Hour)}
	if err := s.Save(ctx, "id", tok); err != nil {
		t.Fatalf("Save with Redis down: %v", err)
	}
	got, err := s.Load(ctx, "id")
	if err != nil || got == nil || got.Value != tok.Value {
		t.Errorf("Load with Redis down: got %v, %v; want the locally kept token", got, err)
	}
	unlock, err := s.Lock(ctx, "id")
	if err != nil {
		t.Fatalf("Lock with Redis down: %v", err)
	}
	unlock()

	l, err := shared.NewLimiter(rdb, "app-key", 10, shared.WithLimiterLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := l.Wait(ctx); err != nil {
			t.Fatalf("limiter Wait with Redis down: %v", err)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "redis token store failing"); n != 1 {
		t.Errorf("token store failing logs: got %d, want 1\n%s", n, out)
	}
	if n := strings.Count(out, "redis rate limiter failing"); n != 1 {
		t.Errorf("limiter failing logs: got %d, want 1\n%s", n, out)
	}
	if strings.Contains(out, "secret-jwt") {
		t.Errorf("logs contain the token value:\n%s", out)
	}
}

func TestLimiterRejectsBadInput(t *testing.T) {
	rdb := deadRedis(t)
	for _, rate := range []float64{0, -1} {
		if _, err := shared.NewLimiter(rdb, "k", rate); err == nil {
			t.Errorf("rate %v: got nil error, want one", rate)
		}
	}
	if _, err := shared.NewLimiter(rdb, "", 1); err == nil {
		t.Errorf("empty app key: got nil error, want one")
	}
}

// TestLimiterShared checks that limiters on separate connections for one
// app key share one budget at the configured rate, and that a different
// app key has its own.
//
// Not checked by counting the grants Wait makes in 1.5 s: that measures
// the machine as much as the limiter (under -race on two loaded cores, 30
// grants instead of ≥ 40, the budget idle while the workers waited for a
// core), and the timestamps a worker takes after Wait returns are the
// machine's too, not Redis's. Redis's own answers are checked instead,
// one Allow at a time, against Redis's clock (TIME): the limit as Redis
// is asked to enforce it (rate, burst), that after one grant no limiter
// on the key is granted again within the window Redis reports
// (RetryAfter) and that this window is exactly one spacing from the
// grant (the budget is used, not throttled below the rate), and that
// Wait is granted again once the window has passed.
func TestLimiterShared(t *testing.T) {
	t.Parallel()
	mk, prefix := testRedis(t)
	ctx := t.Context()
	clock := mk()
	redisNow := func() time.Time {
		t.Helper()
		now, err := clock.Time(ctx).Result()
		if err != nil {
			t.Fatalf("redis TIME: %v", err)
		}
		return now
	}
	newLimiters := func(appKey string, perSecond float64) []*shared.Limiter {
		t.Helper()
		var ls []*shared.Limiter
		for range 3 { // three "processes", each with its own connection pool
			l, err := shared.NewLimiter(mk(), appKey, perSecond, shared.WithLimiterPrefix(prefix))
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, l)
		}
		return ls
	}

	// The limit as Redis is asked to enforce it: burst 1 (evenly spaced,
	// no bursts), one request per 1/rate.
	const rate = 40.0
	for i, l := range newLimiters("app-key-rate", rate) {
		lim := shared.LimitOf(l)
		want := time.Second / 40
		if lim.Burst != 1 || lim.Rate != 1 || lim.Period != want || l.Interval() != want {
			t.Errorf("limiter %d: limit %v (interval %v), want 1 req/%v, burst 1 (%v/s)", i, lim, l.Interval(), want, rate)
		}
	}

	// Sharing, at one request a minute so that no scheduling stall of a
	// loaded machine can reach the end of the window: after one grant,
	// every other Allow on the key, from any of the three limiters, is
	// refused, with a RetryAfter that ends exactly one spacing after the
	// grant by Redis's clock.
	const slow = 1.0 / 60
	spacing := time.Duration(float64(time.Second) / slow)
	ls := newLimiters("app-key-1", slow)
	before := redisNow()
	res, err := shared.AllowOnce(ctx, ls[0])
	if err != nil || res.Allowed != 1 || res.Remaining != 0 {
		t.Fatalf("first Allow: %+v, %v; want allowed 1, remaining 0", res, err)
	}
	for i := range 9 {
		l := ls[(i+1)%len(ls)]
		res, err := shared.AllowOnce(ctx, l)
		elapsed := redisNow().Sub(before)
		if err != nil {
			t.Fatalf("Allow %d: %v", i, err)
		}
		if res.Allowed != 0 || res.Remaining != 0 {
			t.Errorf("Allow %d (limiter %d) %v after the grant: allowed %d, remaining %d; want 0, 0 (the key's one slot is taken)",
				i, (i+1)%len(ls), elapsed, res.Allowed, res.Remaining)
		}
		if res.RetryAfter > spacing || res.RetryAfter < spacing-elapsed {
			t.Errorf("Allow %d: RetryAfter %v, %v after the grant; want in [%v, %v] (next slot one spacing after the grant)",
				i, res.RetryAfter, elapsed, spacing-elapsed, spacing)
		}
	}
	// Another app key is not slowed by the first one's traffic.
	other := newLimiters("app-key-2", slow)
	if res, err := shared.AllowOnce(ctx, other[1]); err != nil || res.Allowed != 1 {
		t.Errorf("other key's first Allow: %+v, %v; want allowed (own budget)", res, err)
	}

	// Granted again once RetryAfter has passed: Wait sleeps the
	// RetryAfter Redis reports and must then get the slot. Here with a
	// 200 ms spacing; a stall only makes the slot more due.
	fast := newLimiters("app-key-3", 5)
	const fastSpacing = 200 * time.Millisecond
	start := redisNow() // ≤ the first grant
	if res, err := shared.AllowOnce(ctx, fast[0]); err != nil || res.Allowed != 1 {
		t.Fatalf("first Allow: %+v, %v; want allowed", res, err)
	}
	res, err = shared.AllowOnce(ctx, fast[1])
	if err != nil || res.Allowed != 0 || res.RetryAfter <= 0 || res.RetryAfter > fastSpacing {
		t.Fatalf("second Allow: %+v, %v; want refused with a RetryAfter in (0, %v]", res, err, fastSpacing)
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	if err := fast[1].Wait(wctx); err != nil {
		t.Fatalf("Wait after RetryAfter %v: %v", res.RetryAfter, err)
	}
	// Wait took a slot (it did not return nil on a Redis failure): it
	// came at least one spacing after the first grant, so the next is
	// due at least two spacings after start. A grant before that, by
	// Redis's clock, means Wait took nothing; one after it (a stall of
	// the test between the calls) proves nothing either way.
	res, err = shared.AllowOnce(ctx, fast[2])
	end := redisNow() // ≥ this Allow
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed != 0 && end.Sub(start) < 2*fastSpacing {
		t.Errorf("Allow after Wait's grant, %v after the first grant: %+v; want refused (Wait took the slot)", end.Sub(start), res)
	}
}

// TestLimiterRefusesPastDeadline: a shared slot that would come after the
// caller's deadline is refused at once with ErrPastDeadline (which the kis
// client reports as kis.ErrLimiterDeadline) while
// the caller's context is still live. Before, Wait slept until the
// deadline and failed with context.DeadlineExceeded, leaving the caller no
// time to answer from a cache.
func TestLimiterRefusesPastDeadline(t *testing.T) {
	t.Parallel()
	mk, prefix := testRedis(t)
	l, err := shared.NewLimiter(mk(), "app-key-deadline", 0.5, shared.WithLimiterPrefix(prefix)) // one slot per 2 s
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(t.Context()); err != nil { // takes the slot
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err = l.Wait(ctx)
	if !errors.Is(err, shared.ErrPastDeadline) {
		t.Errorf("err: got %v, want shared.ErrPastDeadline", err)
	}
	if ctx.Err() != nil {
		t.Errorf("refused only after the deadline (%v), want at once", ctx.Err())
	}
}

func TestNewTokenStoreRejectsMissingParts(t *testing.T) {
	rdb := deadRedis(t)
	tests := []struct {
		name     string
		rdb      goredis.UniversalClient
		fallback shared.Store[token]
		retain   func(token) time.Time
		want     string
	}{
		{"no client", nil, newMemStore(), retainUntil, "Redis client"},
		{"no fallback", rdb, nil, retainUntil, "fallback"},
		{"no retainUntil", rdb, newMemStore(), nil, "retainUntil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := shared.NewTokenStore(tt.rdb, tt.fallback, tt.retain)
			if err == nil || s != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, %v; want nil and an error naming %q", s, err, tt.want)
			}
		})
	}
}
