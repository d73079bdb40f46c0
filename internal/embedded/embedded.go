// Package embedded owns the built-in KIS emulator: package emulator served
// on a loopback port inside this process, for the commands' embedded mode
// (no KIS_APP_KEY set). cmd/kisfeed hands [Start] to the wiring only in
// that mode, so the production path never starts an emulator by itself.
package embedded

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/internal/httpserve"
)

// shutdownTimeout bounds the drain of the emulator's in-flight requests
// on Close.
const shutdownTimeout = 2 * time.Second

// Emulator is a running built-in emulator. Close it when done.
type Emulator struct {
	// Server is the emulator itself (counters, outages, faults).
	Server *emulator.Server
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string

	stop   context.CancelFunc
	served chan error
}

// StreamKeys is how many app keys the built-in emulator registers: appKey
// and appKey-2 … appKey-N with the same secret. REST uses appKey alone;
// the real-time stream spreads its registrations over all of them (41 per
// key, KIS's cap), as it would over KIS_APP_KEYS, so the built-in
// emulator can stream 60 codes' trades and books at once. The wiring
// builds the same names (wiring.DemoStreamKeys).
const StreamKeys = 3

// New starts the emulator on 127.0.0.1 with real-server behaviour, the
// given seed and rate, and the app keys [StreamKeys] names. Quotes, books
// and minute bars follow market; token and rate windows keep the real
// clock.
func New(seed int64, market func() time.Time, appKey, appSecret string, rate float64) (*Emulator, error) {
	opts := []emulator.Option{
		emulator.WithSeed(seed),
		emulator.WithMarketClock(market),
		emulator.WithServerKind(emulator.KindReal),
		emulator.WithRate(rate),
		emulator.WithAppKey(appKey, appSecret),
	}
	for i := 2; i <= StreamKeys; i++ {
		opts = append(opts, emulator.WithAppKey(fmt.Sprintf("%s-%d", appKey, i), appSecret))
	}
	emu, err := emulator.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("built-in emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("built-in emulator: listen: %w", err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	// WebSocket sessions are hijacked connections Shutdown does not see.
	srv.RegisterOnShutdown(func() { _ = emu.Close() })
	ctx, stop := context.WithCancel(context.Background())
	e := &Emulator{Server: emu, URL: "http://" + ln.Addr().String(), stop: stop, served: make(chan error, 1)}
	go func() { e.served <- httpserve.Run(ctx, srv, ln, shutdownTimeout) }() // ends in Close
	return e, nil
}

// Close shuts the emulator's HTTP server down and waits for it. Call it
// once.
func (e *Emulator) Close() error {
	e.stop()
	return <-e.served
}

// Start is [New] in the shape the wiring takes (wiring.Deps.StartEmulator):
// the base URL and how to stop it.
func Start(seed int64, market func() time.Time, appKey, appSecret string, rate float64) (baseURL string, stop func() error, err error) {
	e, err := New(seed, market, appKey, appSecret, rate)
	if err != nil {
		return "", nil, err
	}
	return e.URL, e.Close, nil
}
