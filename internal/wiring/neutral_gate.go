package wiring

import (
	"context"
	"sync/atomic"

	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/kis"
)

// breakerGate is the KIS clients' [kis.RetryGate]: every failed attempt a
// client is about to retry reaches the circuit breaker at once, so a
// connection-level outage (resets, timeouts, 5xx) opens the circuit after
// BREAKER_FAILURES failed exchanges — a fraction of a second under load —
// instead of after BREAKER_FAILURES calls have each gone through all
// their retries (7.7–8.4 s into a 20 s outage, issue 13), and once it is
// open the clients stop retrying: a retry through an open circuit only
// delays the cache's stale copy. The breaker classifies each attempt as
// it does a call's result (rate-limit answers and local refusals do not
// count; see neutral).
//
// The factory builds the clients before the breaker that wraps them, so
// the gate is bound afterwards; until then (and with no breaker) it lets
// every retry run. Callers of the KIS clients (Stack.Clients) share them,
// so their failed attempts count too: they are failures of the same
// upstream.
type breakerGate struct {
	b atomic.Pointer[breaker.Breaker]
}

var _ kis.RetryGate = (*breakerGate)(nil)

func (g *breakerGate) AttemptFailed(ctx context.Context, _ string, err error) {
	if b := g.b.Load(); b != nil {
		b.AttemptFailed(ctx, err)
	}
}

func (g *breakerGate) RetryAllowed(ctx context.Context) bool {
	b := g.b.Load()
	return b == nil || b.RetryAllowed(ctx)
}
