package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// Defaults of the options.
const (
	// DefaultWatchdog is how long a session may stay silent (no data, no
	// PINGPONG) before it is reconnected. KIS's PINGPONG cadence is
	// unconfirmed (REFERENCE §k); community clients see one every ~10 s,
	// so 30 s is three missed PINGPONGs: long enough that a quiet market
	// never trips it, short enough that a dead TCP connection (no close
	// frame, no RST) costs half a minute rather than the OS's minutes.
	DefaultWatchdog = 30 * time.Second
	// DefaultSubscribeRate and DefaultSubscribeBurst pace subscribe and
	// unsubscribe messages per session. KIS warns that subscribe storms
	// block an app key or IP (REFERENCE §k.1) without saying what a storm
	// is; its legacy samples send ~2/s. 10/s with a burst of 5 restores a
	// full session (41 registrations) in about 3.6 s, inside the 5 s the
	// reconnect goal allows, while staying a modest, steady rate; it is an
	// option so an operator can slow it if KIS complains.
	DefaultSubscribeRate  = 10.0
	DefaultSubscribeBurst = 5
	// DefaultDialTimeout bounds the WebSocket handshake.
	DefaultDialTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds one message write (subscribe, PINGPONG).
	DefaultWriteTimeout = 5 * time.Second
	// maxFrame bounds one message; KIS's largest frames (a few dozen
	// trades at the close) are far below it.
	maxFrame = 1 << 20
)

// DefaultBackoff is the reconnect backoff: full jitter, ceilings from 1 s
// doubling to 60 s.
var DefaultBackoff = Backoff{Base: time.Second, Max: time.Minute}

// Backoff is exponential backoff with full jitter: the wait before retry
// n (0-based) is uniform in [0, min(Max, Base·2ⁿ)]. Full jitter spreads
// the reconnects of many sessions dropped at once (KIS's weekly restart)
// so they do not hit the server in step.
type Backoff struct {
	Base, Max time.Duration
	// Rand returns a number in [0, 1); nil is math/rand/v2's Float64.
	// Tests inject a fixed source.
	Rand func() float64
}

// Ceiling is the largest wait before retry n.
func (b Backoff) Ceiling(n int) time.Duration {
	d := b.Base
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Delay returns the wait before retry n.
func (b Backoff) Delay(n int) time.Duration {
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * float64(b.Ceiling(n)))
}

// options collect what the Option functions set.
type options struct {
	log        *slog.Logger
	observer   Observer
	now        func() time.Time
	backoff    Backoff
	watchdog   time.Duration
	rate       float64
	burst      int
	httpClient *http.Client
	dial       time.Duration
	write      time.Duration
}

func defaultOptions() options {
	return options{
		log:      slog.New(slog.DiscardHandler),
		observer: NopObserver{},
		now:      time.Now,
		backoff:  DefaultBackoff,
		watchdog: DefaultWatchdog,
		rate:     DefaultSubscribeRate,
		burst:    DefaultSubscribeBurst,
		dial:     DefaultDialTimeout,
		write:    DefaultWriteTimeout,
	}
}

// Option configures a [Client]; each rejects bad input with an error from
// [New].
type Option func(*options) error

// WithLogger sets the logger (default: discard). Approval keys and
// secrets are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger: want non-nil")
		}
		o.log = l
		return nil
	}
}

// WithObserver sets the observer of sessions, frames, errors and lag
// (default: none).
func WithObserver(obs Observer) Option {
	return func(o *options) error {
		if obs == nil {
			return errors.New("observer: want non-nil")
		}
		o.observer = obs
		return nil
	}
}

// WithClock sets the market clock (default time.Now): it stamps
// Event.Received, dates books (KIS sends only HHMMSS) and measures lag. In
// embedded mode the wiring hands in the shifted market clock so lag is
// measured against the emulator's time.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("clock: want non-nil")
		}
		o.now = now
		return nil
	}
}

// WithBackoff sets the reconnect backoff (default [DefaultBackoff]).
func WithBackoff(b Backoff) Option {
	return func(o *options) error {
		if b.Base <= 0 || b.Max < b.Base {
			return fmt.Errorf("backoff %s…%s: want 0 < base ≤ max", b.Base, b.Max)
		}
		o.backoff = b
		return nil
	}
}

// WithWatchdog sets how long a session may be silent (no data and no
// PINGPONG) before it is reconnected (default [DefaultWatchdog]).
func WithWatchdog(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("watchdog %s: want > 0", d)
		}
		o.watchdog = d
		return nil
	}
}

// WithSubscribePace sets the rate (messages per second) and burst of
// subscribe/unsubscribe messages per session (default 10/s, burst 5).
func WithSubscribePace(perSecond float64, burst int) Option {
	return func(o *options) error {
		if !(perSecond > 0) || burst < 1 {
			return fmt.Errorf("subscribe pace %v/s burst %d: want rate > 0 and burst ≥ 1", perSecond, burst)
		}
		o.rate, o.burst = perSecond, burst
		return nil
	}
}

// WithHTTPClient sets the HTTP client for approval issuance and the
// WebSocket handshake (default: a 10 s timeout client for approval, the
// default client for the handshake).
func WithHTTPClient(h *http.Client) Option {
	return func(o *options) error {
		if h == nil {
			return errors.New("http client: want non-nil")
		}
		o.httpClient = h
		return nil
	}
}

// Observer hears what the client does, for metrics; its methods are
// called synchronously (Frame, Lag per frame and record on the hot path)
// and must be cheap and safe for concurrent use. key is the key id
// ("key1", the 1-based position in Config.Keys), never the app key.
// Embed [NopObserver] to implement only some methods.
type Observer interface {
	// SessionUp and SessionDown report a key's session opening and closing
	// (reason as in Reconnect); a gauge of sessions per key.
	SessionUp(key string)
	SessionDown(key, reason string)
	// Registrations reports how many registrations key holds now.
	Registrations(key string, n int)
	// Frame reports one data frame of trID holding records records.
	Frame(trID string, records int)
	// ParseError reports a frame or record the parser refused; reason is
	// one of the Reason constants.
	ParseError(reason string)
	// Reconnect reports a key's session about to be re-established and
	// why: "dropped", "closed", "watchdog", "key_in_use",
	// "approval_refused", "dial", "approval", "write".
	Reconnect(key, reason string)
	// Gap reports one gap event.
	Gap(code string)
	// Lag reports receive time − execution time of one trade record
	// (seconds resolution on the execution side).
	Lag(trID string, d time.Duration)
	// SubscribeRefused reports a registration KIS refused (msgCode such
	// as OPSP0008, OPSP8993).
	SubscribeRefused(key, trID, msgCode string)
}

// NopObserver is an [Observer] that does nothing.
type NopObserver struct{}

// SessionUp implements [Observer].
func (NopObserver) SessionUp(string) {}

// SessionDown implements [Observer].
func (NopObserver) SessionDown(string, string) {}

// Registrations implements [Observer].
func (NopObserver) Registrations(string, int) {}

// Frame implements [Observer].
func (NopObserver) Frame(string, int) {}

// ParseError implements [Observer].
func (NopObserver) ParseError(string) {}

// Reconnect implements [Observer].
func (NopObserver) Reconnect(string, string) {}

// Gap implements [Observer].
func (NopObserver) Gap(string) {}

// Lag implements [Observer].
func (NopObserver) Lag(string, time.Duration) {}

// SubscribeRefused implements [Observer].
func (NopObserver) SubscribeRefused(string, string, string) {}
