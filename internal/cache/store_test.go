package cache_test

import (
	"context"
	"errors"
	"github.com/kisfeed/kisfeed"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/cache"
)

// flakyStore is a Memory whose Get and Set fail while down is set, and
// counts the calls that reach it.
type flakyStore struct {
	m          *cache.Memory
	down       atomic.Bool
	gets, sets atomic.Int64
}

var errStoreDown = errors.New("store down")

func (f *flakyStore) Get(ctx context.Context, keys ...string) ([][]byte, error) {
	f.gets.Add(1)
	if f.down.Load() {
		return nil, errStoreDown
	}
	return f.m.Get(ctx, keys...)
}

func (f *flakyStore) Set(ctx context.Context, items ...cache.Item) error {
	f.sets.Add(1)
	if f.down.Load() {
		return errStoreDown
	}
	return f.m.Set(ctx, items...)
}

// TestFailover: writes reach both stores; while the primary fails, reads
// come from the fallback, the primary is skipped for the retry interval
// and then probed again, and each state change is logged once.
func TestFailover(t *testing.T) {
	t.Parallel()
	clk := newClock(kst(10, 0))
	primary := &flakyStore{m: cache.NewMemory(10, clk.Now)}
	fallback := cache.NewMemory(10, clk.Now)
	var logs syncBuffer
	f := cache.Failover(primary, fallback, cache.FailoverConfig{
		Retry: 5 * time.Second, Clock: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := t.Context()
	get := func(key string) string {
		t.Helper()
		vals, err := f.Get(ctx, key)
		if err != nil || len(vals) != 1 {
			t.Fatalf("Get(%q): got %q, %v; want one value, nil", key, vals, err)
		}
		return string(vals[0])
	}
	if err := f.Set(ctx, cache.Item{Key: "a", Value: []byte("1"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]cache.Store{"primary": primary.m, "fallback": fallback} {
		if vals, _ := s.Get(ctx, "a"); string(vals[0]) != "1" {
			t.Errorf("%s after Set: got %q, want \"1\" (writes are mirrored)", name, vals[0])
		}
	}

	primary.down.Store(true)
	if err := f.Set(ctx, cache.Item{Key: "b", Value: []byte("2"), TTL: time.Hour}); err != nil {
		t.Errorf("Set while the primary fails: got %v, want nil", err)
	}
	calls := primary.gets.Load() + primary.sets.Load()
	tests := []struct {
		key, want string
	}{{"a", "1"}, {"b", "2"}, {"c", ""}}
	for _, tt := range tests {
		if got := get(tt.key); got != tt.want {
			t.Errorf("Get(%q) while the primary fails: got %q, want %q (the fallback's)", tt.key, got, tt.want)
		}
	}
	if got := primary.gets.Load() + primary.sets.Load() - calls; got != 0 {
		t.Errorf("primary calls within the retry interval: got %d, want 0", got)
	}

	primary.down.Store(false)
	clk.Advance(5 * time.Second)
	if got := get("a"); got != "1" {
		t.Errorf("Get after the retry interval: got %q, want \"1\"", got)
	}
	if got := primary.gets.Load(); got == 0 {
		t.Errorf("primary gets after the retry interval: got 0, want the primary probed")
	}
	for _, line := range []string{"cache store failing", "cache store recovered"} {
		if got := strings.Count(logs.String(), line); got != 1 {
			t.Errorf("log lines %q: got %d, want 1\n%s", line, got, logs.String())
		}
	}
}

// TestTiered: Get answers from the local store first and asks the shared
// store only for the rest; Set writes the shared store only.
func TestTiered(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	local := cache.NewMemory(10, nil)
	shared := &flakyStore{m: cache.NewMemory(10, nil)}
	s := cache.Tiered(local, shared, time.Second)
	if err := local.Set(ctx, cache.Item{Key: "a", Value: []byte("local"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, cache.Item{Key: "a", Value: []byte("shared"), TTL: time.Hour},
		cache.Item{Key: "b", Value: []byte("shared"), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if n := local.Len(); n != 1 {
		t.Errorf("local entries after Set: got %d, want 1 (Set writes the shared store)", n)
	}
	vals, err := s.Get(ctx, "a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"local", "shared", ""}
	for i := range want {
		if string(vals[i]) != want[i] {
			t.Errorf("Get value %d: got %q, want %q", i, vals[i], want[i])
		}
	}
	shared.down.Store(true)
	if _, err := s.Get(ctx, "c"); !errors.Is(err, errStoreDown) {
		t.Errorf("Get of a key only the failing shared store could hold: got %v, want %v", err, errStoreDown)
	}
	gets := shared.gets.Load()
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Errorf("Get of a local key while the shared store fails: got %v, want nil", err)
	}
	if got := shared.gets.Load() - gets; got != 0 {
		t.Errorf("shared gets for a local key: got %d, want 0", got)
	}
}

// TestCacheTiered: a cache on an explicit Tiered store answers a repeat
// lookup from its local copies, without a shared-store read, until the
// local TTL passes.
func TestCacheTiered(t *testing.T) {
	t.Parallel()
	clk := newClock(kst(10, 0))
	shared := &flakyStore{m: cache.NewMemory(10, clk.Now)}
	e := newEnv(t, kst(10, 0), cache.Tiered(cache.NewMemory(10, clk.Now), shared, time.Second), cache.WithClock(kisfeed.Clock{Wall: clk.Now}))
	e.clk, e.up.now = clk, clk.Now
	e.quote(t, "005930")
	gets := shared.gets.Load()
	if q := e.quote(t, "005930"); q.Meta.Origin != "cache" {
		t.Errorf("second quote origin: got %q, want cache", q.Meta.Origin)
	}
	if got := shared.gets.Load() - gets; got != 0 {
		t.Errorf("shared gets for a hit on a local copy: got %d, want 0", got)
	}
	clk.Advance(2 * time.Second)
	if q := e.quote(t, "005930"); q.Meta.Origin != "cache" {
		t.Errorf("quote after the local TTL: got %q, want cache (from the shared store)", q.Meta.Origin)
	}
	if got := shared.gets.Load() - gets; got != 1 {
		t.Errorf("shared gets after the local TTL: got %d, want 1", got)
	}
	if got := e.up.calls.Load(); got != 1 {
		t.Errorf("upstream calls: got %d, want 1", got)
	}
}
