package shared

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
)

// ErrPastDeadline is a slot refused because it would come after the
// caller's deadline; the kis client reports it as kis.ErrLimiterDeadline
// (any limiter refusal with the caller's context still live is one).
var ErrPastDeadline = errors.New("shared limiter: next slot is past the deadline")

// Limiter is a rate limiter (a kis.Limiter) shared through Redis by every
// process using one app key: a GCRA limit with burst 1, so requests leave
// evenly spaced at 1/rate seconds whichever replica sends them. Redis's
// clock (TIME in the Lua script) is the only clock, so replica clock skew
// does not matter.
type Limiter struct {
	rl     *redis_rate.Limiter
	prefix string
	key    string
	limit  redis_rate.Limit
	log    *slog.Logger

	state redisState
}

// LimiterOption configures a [Limiter].
type LimiterOption func(*Limiter)

// WithLimiterPrefix sets the key prefix (default [DefaultPrefix]).
func WithLimiterPrefix(p string) LimiterOption {
	return func(l *Limiter) { l.prefix = p }
}

// WithLimiterLogger sets the logger for Redis state changes.
func WithLimiterLogger(lg *slog.Logger) LimiterOption {
	return func(l *Limiter) {
		if lg != nil {
			l.log = lg
		}
	}
}

// NewLimiter returns a limiter allowing perSecond requests per second (> 0,
// fractions allowed) for appKey across every process sharing rdb. The key
// in Redis carries a hash of appKey, not the key itself.
func NewLimiter(rdb goredis.UniversalClient, appKey string, perSecond float64, opts ...LimiterOption) (*Limiter, error) {
	if !(perSecond > 0) {
		return nil, fmt.Errorf("shared limiter: rate %v: want > 0", perSecond)
	}
	if appKey == "" {
		return nil, fmt.Errorf("shared limiter: app key: want non-empty")
	}
	sum := sha256.Sum256([]byte(appKey))
	// GCRA depends only on the emission interval Period/Rate and the
	// burst; Rate 1 per 1/perSecond expresses any real rate exactly.
	interval := time.Duration(float64(time.Second) / perSecond)
	l := &Limiter{
		rl:     redis_rate.NewLimiter(rdb),
		prefix: DefaultPrefix,
		limit:  redis_rate.Limit{Rate: 1, Burst: 1, Period: interval},
		log:    slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(l)
	}
	l.key = l.prefix + "kis:rate:" + hex.EncodeToString(sum[:8])
	return l, nil
}

// Interval returns the spacing between two requests.
func (l *Limiter) Interval() time.Duration { return l.limit.Period }

func (l *Limiter) note(err error) {
	l.state.note(l.log, err, "redis rate limiter failing; pacing this process on its own", "redis rate limiter recovered")
}

// Wait (kis.Limiter's Wait) asks Redis for a slot and sleeps the
// RetryAfter Redis returns until one is granted or ctx ends. A slot that
// would come after ctx's deadline is refused at once with an error
// wrapping [ErrPastDeadline], without taking it (the kis client
// moves the deadline earlier by its service-time estimate, so a slot is
// taken only by a request that can finish). When Redis
// fails it returns nil (the client's own pacing still applies) and logs
// the state change once.
func (l *Limiter) Wait(ctx context.Context) error {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		res, err := l.rl.Allow(ctx, l.key, l.limit)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			l.note(err)
			return nil
		}
		l.note(nil)
		if res.Allowed > 0 {
			return nil
		}
		wait := res.RetryAfter
		if wait <= 0 {
			wait = time.Millisecond
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// Refuse now rather than sleep until the deadline: the slot
			// was not taken (a denied GCRA request changes nothing in
			// Redis), and the caller learns at once that it cannot be
			// served in time, with time left to answer from a cache.
			return fmt.Errorf("%w: next shared slot in %s", ErrPastDeadline, wait.Round(time.Millisecond))
		}
		if t == nil {
			t = time.NewTimer(wait)
		} else {
			t.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
