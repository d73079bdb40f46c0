package cache

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// Redis is a [Store] on a Redis server, shared by every replica. Values
// expire through Redis TTLs.
type Redis struct {
	rdb goredis.UniversalClient
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on rdb. The caller owns rdb and closes it.
func NewRedis(rdb goredis.UniversalClient) *Redis { return &Redis{rdb: rdb} }

// Get reads every key with one MGET.
func (s *Redis) Get(ctx context.Context, keys ...string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis mget: %w", err)
	}
	out := make([][]byte, len(keys))
	for i, v := range vals {
		if s, ok := v.(string); ok && i < len(out) {
			out[i] = []byte(s)
		}
	}
	return out, nil
}

// Set writes every item in one pipeline (SET key value PX ttl).
func (s *Redis) Set(ctx context.Context, items ...Item) error {
	switch len(items) {
	case 0:
		return nil
	case 1:
		if items[0].TTL <= 0 {
			return nil
		}
		if err := s.rdb.Set(ctx, items[0].Key, items[0].Value, items[0].TTL).Err(); err != nil {
			return fmt.Errorf("redis set: %w", err)
		}
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, it := range items {
			if it.TTL > 0 {
				p.Set(ctx, it.Key, it.Value, it.TTL)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis pipeline set: %w", err)
	}
	return nil
}
