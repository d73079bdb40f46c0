package shared

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key this package writes.
const DefaultPrefix = "kisfeed:"

// Open returns a client for rawURL (redis://[user:pass@]host:port/db or
// rediss://). It does not connect: the first command does, so a Redis that
// is down at start-up degrades requests rather than failing the process.
// Timeouts are short (1 s dial, 500 ms read/write) and failed commands are
// not retried, so an outage costs each request milliseconds, not seconds.
func Open(rawURL string) (*goredis.Client, error) {
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		// ParseURL errors may echo the URL; keep the password out.
		return nil, fmt.Errorf("redis url: want redis://host:port/db: %v", redactErr(err))
	}
	opt.DialTimeout = time.Second
	opt.ReadTimeout = 500 * time.Millisecond
	opt.WriteTimeout = 500 * time.Millisecond
	opt.PoolTimeout = time.Second
	opt.MaxRetries = -1   // no retries: callers degrade instead
	opt.DialerRetries = 1 // one dial per attempt: a refused port fails in ~1 ms
	return goredis.NewClient(opt), nil
}

// redactErr drops the error text when it might contain credentials.
func redactErr(err error) string {
	s := err.Error()
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '@' {
			return "malformed URL"
		}
	}
	return s
}

// DriverLogger adapts l to go-redis's logger interface, at debug level:
// the driver's own notices ("failed to dial") would otherwise go to stderr
// on every attempt while Redis is down, and the stores already log each
// state change once. Pass it to goredis.SetLogger in main.
func DriverLogger(l *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return driverLogger{l}
}

type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Printf(ctx context.Context, format string, v ...any) {
	d.l.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
