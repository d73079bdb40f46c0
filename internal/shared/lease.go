package shared

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Lease is a fenced lease in Redis: at most one holder at a time owns it
// (the replica holding an app key's KIS WebSocket session), and each new
// tenure gets a fencing token larger than every earlier one, so whatever a
// tenure stamps with its fence (event ids, say) can be told apart from a
// stale holder's.
//
// The lease key holds "{holder}:{fence}" with a PX expiry; the fence comes
// from INCR on a separate key that never expires, taken in the same Lua
// script as the SET NX, so a fence is only ever spent on a tenure that
// began. Fences rise as long as Redis keeps that key: a Redis that loses its
// data (no persistence, a flush) starts again at 1; a tenure's identity
// should therefore also carry something of its own (the replica name, a
// start time), as the stream's event epoch does.
//
// Redis's clock decides when the key expires; a holder decides locally
// when to stop acting ([Lease.Run]): at the last successful renewal's send
// time + ttl − margin, which is before Redis can let anyone else in as
// long as the two clocks run at the same rate.
type Lease struct {
	rdb      goredis.UniversalClient
	key      string
	fenceKey string
	holder   string
	ttl      time.Duration
	margin   time.Duration
	now      func() time.Time // monotonic readings: the local deadline
	log      *slog.Logger

	state redisState // logs Redis failures once per change, not per attempt
}

// LeaseOption configures a [Lease].
type LeaseOption func(*Lease)

// WithLeasePrefix sets the key prefix (default [DefaultPrefix]).
func WithLeasePrefix(p string) LeaseOption {
	return func(l *Lease) { l.key, l.fenceKey = p, p }
}

// WithLeaseMargin sets how long before the lease's expiry (counted from the
// last renewal's send time) [Lease.Run] stops the tenure: the time the
// holder needs to stop acting (close its KIS session) plus the clock-rate
// difference it tolerates. Default ttl/6 (1 s for the stream's 6 s).
func WithLeaseMargin(d time.Duration) LeaseOption {
	return func(l *Lease) { l.margin = d }
}

// WithLeaseLogger sets the logger for tenure changes and Redis failures.
func WithLeaseLogger(lg *slog.Logger) LeaseOption {
	return func(l *Lease) {
		if lg != nil {
			l.log = lg
		}
	}
}

// AppKeyID returns the id under which Redis keys name an app key: a
// SHA-256 prefix in hex, never the key itself (the rate limiter's key uses
// the same).
func AppKeyID(appKey string) string {
	sum := sha256.Sum256([]byte(appKey))
	return hex.EncodeToString(sum[:8])
}

// NewLease returns the lease on the KIS stream session of the app key
// whose id is keyID (see [AppKeyID]), for holder (the replica's name; it
// must be unique among live replicas and must not contain ':'), expiring
// ttl after each acquisition or renewal. Keys, after the prefix:
// "lease:stream:{keyID}" (value "{holder}:{fence}") and
// "lease:fence:{keyID}" (the INCR counter).
func NewLease(rdb goredis.UniversalClient, keyID, holder string, ttl time.Duration, opts ...LeaseOption) (*Lease, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("shared lease: redis client: want non-nil")
	case keyID == "":
		return nil, errors.New("shared lease: key id: want non-empty")
	case holder == "" || strings.Contains(holder, ":"):
		return nil, fmt.Errorf("shared lease: holder %q: want non-empty, without ':'", holder)
	case ttl < 3*time.Millisecond:
		return nil, fmt.Errorf("shared lease: ttl %s: want >= 3ms (Redis PX is in ms, renewals every ttl/3)", ttl)
	}
	l := &Lease{
		rdb:      rdb,
		key:      DefaultPrefix,
		fenceKey: DefaultPrefix,
		holder:   holder,
		ttl:      ttl,
		margin:   ttl / 6,
		now:      time.Now,
		log:      slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(l)
	}
	if l.margin < 0 || l.margin >= ttl-ttl/3 {
		return nil, fmt.Errorf("shared lease: margin %s: want 0 <= margin < 2/3 of ttl %s (else a tenure ends before its first renewal)", l.margin, ttl)
	}
	l.key += "lease:stream:" + keyID
	l.fenceKey += "lease:fence:" + keyID
	return l, nil
}

// Interval returns the renewal (and acquisition retry) interval, ttl/3.
func (l *Lease) Interval() time.Duration { return l.ttl / 3 }

// Name returns the holder name this lease acquires for.
func (l *Lease) Name() string { return l.holder }

// acquireScript takes the lease if nobody holds it, spending a fence only
// then. KEYS: lease, fence. ARGV: holder, ttl ms. Returns the fence, or 0.
var acquireScript = goredis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 1 then
	return 0
end
local f = redis.call("INCR", KEYS[2])
redis.call("SET", KEYS[1], ARGV[1] .. ":" .. f, "PX", ARGV[2])
return f
`)

// renewScript extends the lease only if it still holds this holder's
// tenure value. KEYS: lease. ARGV: "{holder}:{fence}", ttl ms.
var leaseRenewScript = goredis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`)

// leaseReleaseScript deletes the lease only if it still holds this
// tenure's value.
var leaseReleaseScript = goredis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

func (l *Lease) value(fence int64) string {
	return l.holder + ":" + strconv.FormatInt(fence, 10)
}

// Acquire takes the lease if nobody holds it and returns the new tenure's
// fence (> every earlier fence) with ok true; ok is false when someone
// (this holder included, under an earlier fence) still holds it. err is a
// Redis failure: the lease may then be held or not.
func (l *Lease) Acquire(ctx context.Context) (fence int64, ok bool, err error) {
	f, err := acquireScript.Run(ctx, l.rdb, []string{l.key, l.fenceKey}, l.holder, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return 0, false, fmt.Errorf("shared lease: acquire: %w", err)
	}
	return f, f > 0, nil
}

// Renew extends the tenure fence by ttl if this holder still holds the
// lease under that fence; ok false means it does not (it expired, maybe
// taken by another): stop acting at once.
func (l *Lease) Renew(ctx context.Context, fence int64) (ok bool, err error) {
	n, err := leaseRenewScript.Run(ctx, l.rdb, []string{l.key}, l.value(fence), l.ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("shared lease: renew: %w", err)
	}
	return n == 1, nil
}

// Release ends the tenure fence if it is still current, so another
// replica can take over at once instead of after the ttl. Releasing a
// tenure already lost is not an error.
func (l *Lease) Release(ctx context.Context, fence int64) error {
	if err := leaseReleaseScript.Run(ctx, l.rdb, []string{l.key}, l.value(fence)).Err(); err != nil {
		return fmt.Errorf("shared lease: release: %w", err)
	}
	return nil
}

// Holder returns who holds the lease now and under which fence; holder ""
// and fence 0 when nobody does.
func (l *Lease) Holder(ctx context.Context) (holder string, fence int64, err error) {
	v, err := l.rdb.Get(ctx, l.key).Result()
	if errors.Is(err, goredis.Nil) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("shared lease: holder: %w", err)
	}
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("shared lease: holder: malformed value %q", v)
	}
	f, err := strconv.ParseInt(v[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("shared lease: holder: malformed fence in %q", v)
	}
	return v[:i], f, nil
}

// Run competes for the lease until ctx ends. It tries to acquire every
// ttl/3; once it holds the lease it calls onAcquired in a new goroutine
// with a tenure context and the fence, and renews every ttl/3.
//
// The tenure context is cancelled, and then onLost (if not nil) is called,
// as soon as a renewal says the lease is no longer ours, or when the local
// deadline passes without a successful renewal (Redis down or slow): the
// last successful renewal's (or the acquisition's) send time + ttl −
// margin. So a holder stops acting before Redis lets another replica in,
// even if it cannot reach Redis. Run waits for onAcquired to return before
// competing again, so one process never runs two tenures at once:
// onAcquired must return soon after its context is cancelled.
//
// If onAcquired returns by itself (its work failed), Run releases the
// lease and competes again after one interval. When ctx ends, Run cancels
// the tenure, waits for onAcquired, releases the lease (so a graceful stop
// hands over at once; a killed process leaves it to expire) and returns
// ctx's error.
func (l *Lease) Run(ctx context.Context, onAcquired func(ctx context.Context, fence int64), onLost func()) error {
	interval := l.Interval()
	t := time.NewTimer(0)
	defer t.Stop()
	wait := func(d time.Duration) bool {
		t.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		start := l.now()
		fence, ok, err := l.acquire(ctx)
		if ctx.Err() == nil {
			l.note(err)
		}
		if !ok {
			if !wait(interval) {
				return ctx.Err()
			}
			continue
		}
		l.log.Info("lease: acquired", "lease", l.key, "holder", l.holder, "fence", fence)
		ended := l.tenure(ctx, fence, start, onAcquired, onLost)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ended && !wait(interval) {
			return ctx.Err()
		}
	}
}

func (l *Lease) note(err error) {
	l.state.note(l.log, err, "lease: redis failing; a tenure ends at its local deadline", "lease: redis recovered")
}

// acquire is Acquire bounded by one interval, so a hung Redis call cannot
// outlive the lease it would grant.
func (l *Lease) acquire(ctx context.Context) (int64, bool, error) {
	actx, cancel := context.WithTimeout(ctx, l.Interval())
	defer cancel()
	return l.Acquire(actx)
}

// tenure runs one tenure that began (Acquire sent) at start. It returns
// true when onAcquired ended the tenure by returning, false when the lease
// was lost or ctx ended.
func (l *Lease) tenure(ctx context.Context, fence int64, start time.Time, onAcquired func(context.Context, int64), onLost func()) bool {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		onAcquired(tctx, fence)
	}()
	release := func() {
		// The caller's ctx may be done: release on a short context of
		// our own, as the token store's unlock does.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), l.Interval())
		defer rcancel()
		if err := l.Release(rctx, fence); err != nil {
			l.log.Warn("lease: release failed; it will expire", "lease", l.key, "fence", fence, "err", err)
		}
	}
	deadline := start.Add(l.ttl - l.margin)
	interval := l.Interval()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-done
			release()
			return false
		case <-done:
			release()
			l.log.Info("lease: tenure ended by its holder", "lease", l.key, "fence", fence)
			return true
		case <-t.C:
		}
		now := l.now()
		left := deadline.Sub(now)
		if left <= 0 {
			l.lose(cancel, done, onLost, fence, "renewals failed until the local deadline")
			return false
		}
		// A renewal that answers after the deadline is useless: bound it.
		rctx, rcancel := context.WithTimeout(ctx, left)
		ok, err := l.Renew(rctx, fence)
		rcancel()
		if ctx.Err() == nil {
			l.note(err)
		}
		switch {
		case err == nil && ok:
			deadline = now.Add(l.ttl - l.margin)
			t.Reset(interval)
		case err == nil:
			l.lose(cancel, done, onLost, fence, "lease no longer ours")
			return false
		default:
			if ctx.Err() != nil {
				continue // handled at the top of the loop
			}
			// Retry sooner than the interval, but wake for the deadline.
			next := min(interval/2, max(deadline.Sub(l.now()), 0))
			t.Reset(next)
		}
	}
}

// lose ends a tenure that is no longer safe: the context first (the holder
// stops acting), then onLost, then waits for onAcquired to return.
func (l *Lease) lose(cancel context.CancelFunc, done <-chan struct{}, onLost func(), fence int64, why string) {
	cancel()
	l.log.Warn("lease: lost", "lease", l.key, "fence", fence, "why", why)
	if onLost != nil {
		onLost()
	}
	<-done
}
