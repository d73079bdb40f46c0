package cache

import (
	"context"

	"github.com/kisfeed/kisfeed"
)

// upstreamMark marks fresh hits stale while the upstream is known to be
// unavailable ([WithUpstreamHealth]): the value is within its TTL, but
// nothing can refresh it now, and a client deciding whether to trust or
// retry it must be told so. It only changes the marking, never fails a
// hit. nil means the upstream is always available.
type upstreamMark func(context.Context) error

// origin is the origin of a fresh hit: "cache", or "stale" while the
// check reports the upstream unavailable.
func (m upstreamMark) origin(ctx context.Context) kisfeed.Origin {
	if m != nil && m(ctx) != nil {
		return kisfeed.OriginStale
	}
	return kisfeed.OriginCache
}
