package shared

import (
	"context"

	"github.com/go-redis/redis_rate/v10"
)

// LimitOf returns the GCRA limit l asks Redis to enforce.
func LimitOf(l *Limiter) redis_rate.Limit { return l.limit }

// AllowOnce is one of Wait's Redis calls, returning Redis's answer so a
// test can inspect each grant or refusal instead of timing Wait.
func AllowOnce(ctx context.Context, l *Limiter) (*redis_rate.Result, error) {
	return l.rl.Allow(ctx, l.key, l.limit)
}
