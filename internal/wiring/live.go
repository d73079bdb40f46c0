package wiring

import (
	"fmt"
	"log/slog"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/cache"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/live"
	"github.com/kisfeed/kisfeed/internal/shared"
	"github.com/kisfeed/kisfeed/kis"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// startLive starts the real-time stream (internal/live) over the cache c
// for a stack that asked for it (Deps.Stream: serve). It always starts in
// KIS and embedded modes, STREAM_CODES or not: the client opens a KIS
// session only once a code is acquired, so with nothing acquired it costs
// a goroutine per app key and no connection, and the next consumers
// (streams to clients) only acquire codes. Synthetic mode has no stream.
func (u *Stack) startLive(cfg config.Config, deps Deps, log *slog.Logger, clk kisfeed.Clock, c *cache.Cache) error {
	codes, err := cfg.StreamCodeList()
	if err != nil {
		return err
	}
	if u.Mode == config.ModeMock {
		if len(codes) > 0 {
			log.Info("STREAM_CODES ignored: ENABLE_KIS_API=false serves the synthetic market, which has no real-time stream", "codes", len(codes))
		}
		return nil
	}
	lc := live.Config{
		RESTBaseURL: u.BaseURL, WSURL: cfg.WebSocketURL(u.BaseURL),
		Watchdog: cfg.StreamWatchdog, SubscribeRate: cfg.StreamSubscribeRate,
		Codes: codes, Cache: c, Source: "kis", Observer: deps.StreamObserver,
		Logger: log.With("component", "stream"), Clock: clk,
	}
	if cfg.StreamTRs == "integrated" {
		lc.TRs = stream.Integrated
	}
	if u.Mode == config.ModeEmbedded {
		// The built-in emulator serves the WebSocket on its REST listener
		// and is new with every process: approval keys in memory, as its
		// tokens are.
		lc.Keys = DemoStreamCredentials()
		lc.ApprovalStore = kis.NewMemoryApprovalKeyStore()
	} else {
		keys, err := cfg.Keys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			lc.Keys = append(lc.Keys, stream.Credentials{AppKey: k.Key, AppSecret: k.Secret.Reveal()})
		}
		if lc.ApprovalStore, err = u.approvalStore(cfg, deps, log); err != nil {
			return err
		}
	}
	if deps.StreamOnLease {
		// Replicas: the lease holder builds a fresh stream for each tenure
		// and closes it when the tenure ends (internal/replica); nothing
		// connects to KIS before that.
		u.NewLive = func() (*live.Live, error) { return live.New(lc) }
		return nil
	}
	l, err := live.New(lc)
	if err != nil {
		return err
	}
	if err := l.Start(); err != nil {
		_ = l.Close()
		return err
	}
	u.Live = l
	// Appended after the cache's Close, so it runs first: the sessions
	// and the write-through stop before the cache they write into.
	u.closers = append(u.closers, l.Close)
	return nil
}

// approvalStore picks the approval key store as tokenStore picks the
// token store: KIS_APPROVAL_FILE, else approval-keys.json next to the
// token file, else memory; with REDIS_URL, Redis in front of that,
// shared by every replica (one approval key per app key, KIS issues them
// at most once a second).
func (u *Stack) approvalStore(cfg config.Config, deps Deps, log *slog.Logger) (kis.ApprovalKeyStore, error) {
	var local kis.ApprovalKeyStore
	path := cfg.ApprovalPath()
	if path != "" {
		fs, err := kis.NewFileApprovalKeyStore(path)
		switch {
		case err == nil:
			local = fs
		case cfg.ApprovalFile != "":
			return nil, fmt.Errorf("KIS_APPROVAL_FILE=%s: %w", cfg.ApprovalFile, err)
		default:
			log.Warn("no approval key file; approval keys will not survive a restart", "err", err)
		}
	}
	if local == nil {
		local = kis.NewMemoryApprovalKeyStore()
	}
	if u.redis == nil {
		return local, nil
	}
	return shared.NewTokenStore(u.redis, local, kis.ApprovalKey.RetainUntil,
		shared.WithTokenPrefix(redisPrefix(deps)),
		shared.WithTokenLogger(log.With("component", "redis-approval-keys")))
}

// DemoStreamCredentials are the built-in emulator's app keys for the stream:
// DemoAppKey, then DemoAppKey-2 … -DemoStreamKeys.
func DemoStreamCredentials() []stream.Credentials {
	keys := []stream.Credentials{{AppKey: DemoAppKey, AppSecret: DemoAppSecret}}
	for i := 2; i <= DemoStreamKeys; i++ {
		keys = append(keys, stream.Credentials{AppKey: fmt.Sprintf("%s-%d", DemoAppKey, i), AppSecret: DemoAppSecret})
	}
	return keys
}
