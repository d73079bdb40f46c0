package natsbus

import (
	"log/slog"
	"time"
)

// config is what the [Option]s set; Connect fills in the defaults.
type config struct {
	prefix        string
	name          string
	connEvents    func(ConnEvent)
	metrics       Metrics
	pendingMsgs   int
	pendingBytes  int
	reconnectWait time.Duration
	log           *slog.Logger
	now           func() time.Time
	demandEvery   time.Duration
	demandExpiry  time.Duration
	sweepEvery    time.Duration
	ordered       int // > 0: one delivery queue of this many messages for every event subscription
}

// Option configures [Connect].
type Option func(*config)

// WithPrefix sets the subject prefix (default [Prefix]); tests use their
// own so that they do not hear each other. It must end with '.'.
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithName sets the connection's name as the server shows it.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithConnEvents reports disconnects, reconnects and the final close.
// f runs on nats.go's callback goroutine and must not block.
func WithConnEvents(f func(ConnEvent)) Option { return func(c *config) { c.connEvents = f } }

// WithMetrics sets the counter hooks.
func WithMetrics(m Metrics) Option { return func(c *config) { c.metrics = m } }

// WithPendingLimits bounds what one subscription may hold undelivered
// (messages and bytes; default 65,536 and 64 MiB, nats.go's own). Past
// either, NATS drops the subscription's new messages and
// [Metrics].Dropped counts them: a stuck handler costs its own events,
// never the connection.
func WithPendingLimits(msgs, bytes int) Option {
	return func(c *config) { c.pendingMsgs, c.pendingBytes = msgs, bytes }
}

// WithOrderedDelivery makes [Bus.Subscribe]'s handlers run on one
// goroutine in the order the server sent the messages, across every
// subject, instead of one goroutine per subscription (nats.go's default,
// which reorders events of different codes and kinds). A replica
// forwarding the holder's events needs it: event ids increase across all
// codes, and a consumer resuming from its last id must not have missed a
// lower one of another code that was still on its way. size bounds the
// queue (messages); past it NATS drops new events and [Metrics].Dropped
// counts them, and [WithPendingLimits] does not apply.
func WithOrderedDelivery(size int) Option { return func(c *config) { c.ordered = size } }

// WithReconnectWait sets the pause between reconnect attempts (default 250 ms:
// the lease ttl is seconds, and a replica should be back well within it).
func WithReconnectWait(d time.Duration) Option { return func(c *config) { c.reconnectWait = d } }

// WithLogger sets the logger for connection changes and bad messages.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithClock sets the wall clock that dates demand and expires silent
// replicas' (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithDemandTiming sets how often [Bus.PublishDemand] republishes (default
// 5 s), after how long without a message [Bus.WatchDemand] forgets a
// replica's demand (default 15 s: three missed republications), and how
// often it looks (default 1 s).
func WithDemandTiming(every, expiry, sweep time.Duration) Option {
	return func(c *config) { c.demandEvery, c.demandExpiry, c.sweepEvery = every, expiry, sweep }
}
