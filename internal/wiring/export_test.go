package wiring

import (
	goredis "github.com/redis/go-redis/v9"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/batch"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/shared"
)

// The parts of a Stack its callers do not see, for this package's
// external tests.

func BreakerOf(u *Stack) *breaker.Breaker { return u.breaker }
func BatcherOf(u *Stack) *batch.Source    { return u.batcher }
func RedisOf(u *Stack) *goredis.Client    { return u.redis }
func DirectOf(u *Stack) kisfeed.Source    { return u.direct }

// SharedLimitersOf returns the Redis-shared limiters, one per client.
func SharedLimitersOf(u *Stack) []*shared.Limiter { return u.limiters }
