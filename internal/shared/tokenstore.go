package shared

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Store is the local store a [TokenStore] falls back to while Redis
// fails: the same three calls on records of type T (kis.TokenStore is one
// for T = kis.Token).
type Store[T any] interface {
	// Load returns the record under id, or nil, nil when there is none.
	Load(ctx context.Context, id string) (*T, error)
	// Save stores v under id, replacing any previous record.
	Save(ctx context.Context, id string, v *T) error
	// Lock serialises issuance for id; the caller must call unlock.
	Lock(ctx context.Context, id string) (unlock func(), err error)
}

// TokenStore keeps one token record of type T per id in Redis, as JSON,
// and serialises issuance across every process sharing the Redis. It
// knows nothing of T but its JSON form and how long to keep it, so
// *TokenStore[kis.Token] is a kis.TokenStore without this package
// importing kis. Build it with [NewTokenStore].
type TokenStore[T any] struct {
	tokenSettings
	rdb         goredis.UniversalClient
	fallback    Store[T]
	retainUntil func(T) time.Time

	state redisState
}

// tokenSettings are the options of every [TokenStore], whatever its T.
type tokenSettings struct {
	prefix  string
	lockTTL time.Duration
	poll    time.Duration
	log     *slog.Logger
	now     func() time.Time
}

// TokenOption configures a [TokenStore].
type TokenOption func(*tokenSettings)

// WithTokenPrefix sets the key prefix (default [DefaultPrefix]).
func WithTokenPrefix(p string) TokenOption { return func(s *tokenSettings) { s.prefix = p } }

// WithLockTTL sets how long an issuance lock lives without renewal
// (default 10 s). The holder renews it every third of that, so a crashed
// holder blocks the others for at most one TTL.
func WithLockTTL(d time.Duration) TokenOption {
	return func(s *tokenSettings) {
		if d >= 30*time.Millisecond {
			s.lockTTL = d
		}
	}
}

// WithTokenLogger sets the logger for Redis state changes. Tokens are
// never logged.
func WithTokenLogger(l *slog.Logger) TokenOption {
	return func(s *tokenSettings) {
		if l != nil {
			s.log = l
		}
	}
}

// WithTokenClock sets the clock used for TTLs (time.Now by default).
func WithTokenClock(now func() time.Time) TokenOption {
	return func(s *tokenSettings) {
		if now != nil {
			s.now = now
		}
	}
}

// NewTokenStore returns a token store on rdb; the caller closes rdb.
// fallback keeps a copy of every record and serves while Redis fails;
// retainUntil says how long Redis keeps a record (the token's owner knows:
// for KIS, kis.Token.RetainUntil).
func NewTokenStore[T any](rdb goredis.UniversalClient, fallback Store[T], retainUntil func(T) time.Time, opts ...TokenOption) (*TokenStore[T], error) {
	switch {
	case rdb == nil:
		return nil, errors.New("shared token store: want a Redis client")
	case fallback == nil:
		return nil, errors.New("shared token store: want a local fallback store")
	case retainUntil == nil:
		return nil, errors.New("shared token store: want a retainUntil func")
	}
	s := &TokenStore[T]{
		tokenSettings: tokenSettings{prefix: DefaultPrefix, lockTTL: 10 * time.Second, poll: 25 * time.Millisecond,
			log: slog.New(slog.DiscardHandler), now: time.Now},
		rdb: rdb, fallback: fallback, retainUntil: retainUntil,
	}
	for _, o := range opts {
		o(&s.tokenSettings)
	}
	return s, nil
}

// key is the record's Redis key. "kis:token:" predates the generic store
// and stays, so that replicas of other versions share the same record.
func (s *TokenStore[T]) key(id string) string { return s.prefix + "kis:token:" + id }

// note records whether Redis answered and logs state changes once.
func (s *TokenStore[T]) note(err error) {
	s.state.note(s.log, err, "redis token store failing; using the local token store", "redis token store recovered")
}

// Load returns the record under id, or nil, nil (kis.TokenStore's Load).
func (s *TokenStore[T]) Load(ctx context.Context, id string) (*T, error) {
	raw, err := s.rdb.Get(ctx, s.key(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		s.note(nil)
		return nil, nil
	}
	s.note(err)
	if err != nil {
		return s.fallback.Load(ctx, id)
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		// A corrupt entry costs one issuance, not an outage.
		return nil, nil
	}
	return v, nil
}

// Save stores v under id (kis.TokenStore's Save), in Redis until
// retainUntil(v) (at least a second) and in the fallback store.
func (s *TokenStore[T]) Save(ctx context.Context, id string, v *T) error {
	if v == nil {
		return errors.New("save token: nil token")
	}
	_ = s.fallback.Save(ctx, id, v) // keep the local copy current for outages
	ttl := s.retainUntil(*v).Sub(s.now())
	if ttl < time.Second {
		ttl = time.Second
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	err = s.rdb.Set(ctx, s.key(id), raw, ttl).Err()
	s.note(err)
	return nil // the fallback holds it; Redis failures are logged by note
}

// unlockScript deletes the lock only if we still own it.
var unlockScript = goredis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// renewScript extends the lock only if we still own it.
var renewScript = goredis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// Lock (kis.TokenStore's Lock) waits (polling, ctx-aware) until
// it owns the Redis lock for id, and keeps renewing it until unlock. If
// Redis fails, it falls back to the local store's lock.
func (s *TokenStore[T]) Lock(ctx context.Context, id string) (func(), error) {
	key := s.key(id) + ":lock"
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	owner := hex.EncodeToString(b)
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		ok, err := s.rdb.SetNX(ctx, key, owner, s.lockTTL).Result()
		if err != nil && ctx.Err() == nil {
			s.note(err)
			return s.fallback.Lock(ctx, id)
		}
		if err != nil {
			return nil, ctx.Err()
		}
		s.note(nil)
		if ok {
			break
		}
		if t == nil {
			t = time.NewTimer(s.poll)
		} else {
			t.Reset(s.poll)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // renews the lock until unlock; owned by the unlock func
		defer close(done)
		tick := time.NewTicker(s.lockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				rctx, cancel := context.WithTimeout(context.Background(), s.lockTTL/3)
				_ = renewScript.Run(rctx, s.rdb, []string{key}, owner, s.lockTTL.Milliseconds()).Err()
				cancel()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
			uctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = unlockScript.Run(uctx, s.rdb, []string{key}, owner).Err()
		})
	}, nil
}
