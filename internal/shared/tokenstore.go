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

	"github.com/kisfeed/kisfeed/kis"
)

// TokenStore is a [kis.TokenStore] in Redis. Build it with [NewTokenStore].
type TokenStore struct {
	rdb      goredis.UniversalClient
	prefix   string
	lockTTL  time.Duration
	poll     time.Duration
	fallback kis.TokenStore
	log      *slog.Logger
	now      func() time.Time

	mu   sync.Mutex // guards down
	down bool
}

var _ kis.TokenStore = (*TokenStore)(nil)

// TokenOption configures a [TokenStore].
type TokenOption func(*TokenStore)

// WithTokenPrefix sets the key prefix (default [DefaultPrefix]).
func WithTokenPrefix(p string) TokenOption { return func(s *TokenStore) { s.prefix = p } }

// WithLockTTL sets how long an issuance lock lives without renewal
// (default 10 s). The holder renews it every third of that, so a crashed
// holder blocks the others for at most one TTL.
func WithLockTTL(d time.Duration) TokenOption {
	return func(s *TokenStore) {
		if d >= 30*time.Millisecond {
			s.lockTTL = d
		}
	}
}

// WithFallback sets the store used while Redis fails (default: an
// in-memory store).
func WithFallback(f kis.TokenStore) TokenOption {
	return func(s *TokenStore) {
		if f != nil {
			s.fallback = f
		}
	}
}

// WithTokenLogger sets the logger for Redis state changes. Tokens are
// never logged.
func WithTokenLogger(l *slog.Logger) TokenOption {
	return func(s *TokenStore) {
		if l != nil {
			s.log = l
		}
	}
}

// WithTokenClock sets the clock used for TTLs (time.Now by default).
func WithTokenClock(now func() time.Time) TokenOption {
	return func(s *TokenStore) {
		if now != nil {
			s.now = now
		}
	}
}

// NewTokenStore returns a token store on rdb; the caller closes rdb.
func NewTokenStore(rdb goredis.UniversalClient, opts ...TokenOption) *TokenStore {
	s := &TokenStore{
		rdb: rdb, prefix: DefaultPrefix, lockTTL: 10 * time.Second, poll: 25 * time.Millisecond,
		fallback: kis.NewMemoryTokenStore(), log: slog.New(slog.DiscardHandler), now: time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// storedToken is the JSON form. Value is the secret access token.
type storedToken struct {
	Value    string    `json:"value"`
	Type     string    `json:"type"`
	Expires  time.Time `json:"expires"`
	IssuedAt time.Time `json:"issued_at"`
}

func (s *TokenStore) key(id string) string { return s.prefix + "kis:token:" + id }

// note records whether Redis answered and logs state changes once.
func (s *TokenStore) note(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	down := err != nil
	if down == s.down {
		return
	}
	s.down = down
	if down {
		s.log.Warn("redis token store failing; using the local token store", "err", err)
	} else {
		s.log.Info("redis token store recovered")
	}
}

// Load implements [kis.TokenStore]: the token under id, or nil, nil.
func (s *TokenStore) Load(ctx context.Context, id string) (*kis.Token, error) {
	raw, err := s.rdb.Get(ctx, s.key(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		s.note(nil)
		return nil, nil
	}
	s.note(err)
	if err != nil {
		return s.fallback.Load(ctx, id)
	}
	var st storedToken
	if err := json.Unmarshal(raw, &st); err != nil {
		// A corrupt entry costs one issuance, not an outage.
		return nil, nil
	}
	return &kis.Token{Value: st.Value, Type: st.Type, Expires: st.Expires, IssuedAt: st.IssuedAt}, nil
}

// Save implements [kis.TokenStore]. The entry lives until the token
// expires, and at least until a minute after its issuance so the
// issuance pacing (kis.TokenIssueInterval) survives a revocation.
func (s *TokenStore) Save(ctx context.Context, id string, t *kis.Token) error {
	if t == nil {
		return errors.New("save token: nil token")
	}
	_ = s.fallback.Save(ctx, id, t) // keep the local copy current for outages
	now := s.now()
	until := t.Expires
	if keep := t.IssuedAt.Add(2 * kis.TokenIssueInterval); keep.After(until) {
		until = keep
	}
	ttl := until.Sub(now)
	if ttl < time.Second {
		ttl = time.Second
	}
	raw, err := json.Marshal(storedToken{Value: t.Value, Type: t.Type, Expires: t.Expires, IssuedAt: t.IssuedAt})
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

// Lock implements [kis.TokenStore]: it waits (polling, ctx-aware) until
// it owns the Redis lock for id, and keeps renewing it until unlock. If
// Redis fails, it falls back to the local store's lock.
func (s *TokenStore) Lock(ctx context.Context, id string) (func(), error) {
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
