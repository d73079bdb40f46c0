package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Guard holds the configured keys and their quota state. It is safe for
// concurrent use; one Guard serves a process for its lifetime, so each
// key's buckets persist across requests.
type Guard struct {
	keys []*Principal
}

// New returns a Guard over keys (from [ParseKeys]). With no keys it
// returns nil: no access control, which callers check for.
func New(keys []Key) *Guard {
	if len(keys) == 0 {
		return nil
	}
	g := &Guard{}
	for _, k := range keys {
		g.keys = append(g.keys, newPrincipal(k))
	}
	return g
}

// Authenticate returns the key whose hash matches token's, or nil. Every
// configured hash is compared, in constant time and without stopping at a
// match, so the time taken says nothing about which key (or how much of a
// hash) matched. Comparing hashes rather than keys also keeps the key's
// length out of the timing.
func (g *Guard) Authenticate(token string) *Principal {
	if g == nil || token == "" {
		return nil
	}
	h := sha256.Sum256([]byte(token))
	var found *Principal
	for _, p := range g.keys {
		if subtle.ConstantTimeCompare(h[:], p.key.Hash[:]) == 1 {
			found = p
		}
	}
	return found
}

// Principal is an authenticated key with its quota state: what a request
// made with the key may do and spend. Its methods are safe for concurrent
// use.
type Principal struct {
	key Key
	// misses is the cache-miss bucket; nil when the key has no miss limit.
	misses *rate.Limiter

	mu       sync.Mutex // guards streamed
	streamed int        // codes the key's consumers stream now
}

var _ StreamQuota = (*Principal)(nil)

func newPrincipal(k Key) *Principal {
	p := &Principal{key: k}
	if k.Quota.MissRate > 0 {
		p.misses = rate.NewLimiter(rate.Limit(k.Quota.MissRate), max(k.Quota.MissBurst, 1))
	}
	return p
}

// Name is the key's configured name, safe to log.
func (p *Principal) Name() string { return p.key.Name }

// Has reports whether the key holds scope s.
func (p *Principal) Has(s Scope) bool { return p.key.Has(s) }

// Quota returns the key's quota.
func (p *Principal) Quota() Quota { return p.key.Quota }

// MissWait returns how long the key must wait at now before its next
// request may go on: 0 while its miss bucket holds a whole token, else the
// time until it does. The bucket is charged only after a request turned
// out to miss ([Principal.ChargeMiss]), because whether it will miss is
// known only once the cache has been asked; so a key is refused once it
// has spent its misses, cache hits included, until the bucket refills.
func (p *Principal) MissWait(now time.Time) time.Duration {
	if p.misses == nil {
		return 0
	}
	tokens := p.misses.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(p.misses.Limit()) * float64(time.Second)))
}

// CheckMiss is [Principal.MissWait] as an error: nil while the key may
// go on, else a *QuotaError with the wait as RetryAfter.
func (p *Principal) CheckMiss(now time.Time) error {
	wait := p.MissWait(now)
	if wait <= 0 {
		return nil
	}
	q := p.key.Quota
	return &QuotaError{Key: p.key.Name, Quota: "cache-miss", RetryAfter: wait,
		Detail: fmt.Sprintf("%s/s, burst %d; cached answers are free, misses ask the upstream",
			strconv.FormatFloat(q.MissRate, 'g', -1, 64), q.MissBurst)}
}

// ChargeMiss takes n misses from the key's bucket at now. The bucket may
// go below zero — the upstream was already asked, concurrent requests of
// one key may all have passed [Principal.MissWait] — and the debt is paid
// back by waiting: a key is charged for every miss it caused.
func (p *Principal) ChargeMiss(now time.Time, n int) {
	if p.misses == nil || n <= 0 {
		return
	}
	// ReserveN takes tokens even when that leaves the bucket negative, as
	// long as n fits the burst; larger charges are split.
	for n > 0 {
		c := min(n, p.misses.Burst())
		p.misses.ReserveN(now, c)
		n -= c
	}
}

// StreamQuota limits the codes a key's consumers may stream at once. The
// real-time fan-out (internal/fanout) calls AcquireCodes before it
// registers a consumer's codes and ReleaseCodes when the consumer leaves
// or unsubscribes; the limit is the key's, across all its consumers.
type StreamQuota interface {
	// AcquireCodes counts n more streamed codes for the key, or returns a
	// *QuotaError and counts nothing when that would pass its limit.
	AcquireCodes(n int) error
	// ReleaseCodes gives back n codes taken by AcquireCodes.
	ReleaseCodes(n int)
}

// AcquireCodes implements [StreamQuota].
func (p *Principal) AcquireCodes(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if limit := p.key.Quota.StreamCodes; limit > 0 && p.streamed+n > limit {
		return &QuotaError{Key: p.key.Name, Quota: "streamed codes",
			Detail: fmt.Sprintf("%d codes streamed now, %d more asked, limit %d", p.streamed, n, limit)}
	}
	p.streamed += n
	return nil
}

// ReleaseCodes implements [StreamQuota].
func (p *Principal) ReleaseCodes(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.streamed = max(p.streamed-n, 0)
}

// QuotaError is a request refused because its key spent a quota.
type QuotaError struct {
	Key        string        // the key's name
	Quota      string        // "cache-miss", "streamed codes"
	Detail     string        // what was spent and the limit
	RetryAfter time.Duration // when trying again may succeed; 0 = not by waiting
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("key %s spent its %s quota (%s)", e.Key, e.Quota, e.Detail)
}
