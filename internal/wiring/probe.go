package wiring

import (
	"context"
	"sync/atomic"

	"github.com/kisfeed/kisfeed/kis"
)

// probeCode is the stock whose price the breaker's recovery probe asks
// for: Samsung Electronics, the most liquid KOSPI listing, known to the
// real server, the mock server and the emulator's universe alike.
const probeCode = "005930"

// recoveryProbe is the circuit breaker's recovery probe (see
// breaker.WithProbe): one current-price request (inquire-price) for
// probeCode through the KIS clients in turn. It is a real API request, so
// it sees what callers would — resets, 5xx, timeouts, refused tokens —
// where the TCP reachability check sees only a listening port; it waits
// for a rate slot like any request (the client's limiter, and the shared
// Redis one when configured), so it spends one slot per probe interval,
// only while the circuit is open; and the clients' retry gate allows it
// no retry while the circuit is open, so a probe is one request. Not
// kis.Source.Quote, which can add a master-file download to look the name
// up, nor IsTradingDay, which the client answers from its cached calendar
// (and the mock server lacks): neither is one request every time.
func recoveryProbe(clients []*kis.Client) func(context.Context) error {
	var next atomic.Uint64
	return func(ctx context.Context) error {
		c := clients[(next.Add(1)-1)%uint64(len(clients))]
		_, _, err := c.Price(ctx, probeCode)
		return err
	}
}
