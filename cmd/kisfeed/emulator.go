package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/httpserve"
)

// emulatorFlags are the flags of "kisfeed emulator".
type emulatorFlags struct {
	addr          string
	server        string
	seed          int64
	rate          float64
	tokenTTL      time.Duration
	tokenInterval time.Duration
	latency       string
	fault         string
	appKeys       []string
	speed         float64
	pingInterval  time.Duration
	pingTimeout   time.Duration
	feedInterval  time.Duration
	wsFault       string
}

// emulatorLong is the --help text of "kisfeed emulator".
const emulatorLong = `Run a KIS Open API emulator: the REST endpoints kisfeed uses (OAuth token,
quotations, stock info, holidays, master files), wire-compatible with KIS —
same paths, tr_ids, headers, envelopes, field names, error codes and rate
limits — serving a deterministic synthetic market (same --seed, same numbers).

Any non-empty app key/secret is accepted unless --app-key registers some.
Token rules follow KIS: 24 h tokens, the same token again within 6 h, and
EGW00133 (HTTP 403) for a second tokenP call within 60 s. Each app key is
limited to --rate requests per second (sliding 1-second window; over the
limit: HTTP 500 EGW00201).

WebSocket (real-time, REFERENCE §h) on the same address: ws://ADDR/tryitout
or ws://ADDR/. Get a key with POST /oauth2/Approval (body field "secretkey",
1 per second per app key, valid 24 h), then send subscribe JSON. One session
per app key (a second gets OPSP8996), 41 registrations per session
(OPSP0008). Trades (H0STCNT0) and books (H0STASP0; on --server real also
H0UNCNT0/H0UNASP0) flow 09:00-15:30 KST of trading days and agree with
inquire-price and inquire-asking-price-exp-ccn at the same instant. The
server sends PINGPONG every --ping-interval; answer with the same text or a
pong, or the session is dropped after --ping-timeout of silence.

Market time: KISFEED_MARKET_TIME (e.g. "2026-11-27 09:00", KST) starts the
synthetic market at that instant instead of now; --speed 60 then plays an
hour of trading in a minute, for REST and WebSocket alike.

When ready it prints exactly one line to stdout, "listening on http://ADDR",
with the bound address (so --addr 127.0.0.1:0 picks a free port); logs go to
stderr. SIGINT/SIGTERM shut it down gracefully.

Faults (--fault, comma separated; also at run time, see below):
  latency=DIST       added delay: 20ms | uniform:5ms-50ms | normal:20ms,5ms
  error=F            fraction of data calls answered HTTP 500 EGW00001
  rate-limit=F       fraction answered EGW00201 although under the limit
  reset=F            fraction of connections reset without a response
  outage=D           reset every request for D from start
  expire-tokens      expire all tokens at start
  corrupt=F          fraction of responses with one corrupted number
  seed=N             seed of the fault RNG (reproducible faults)
F is a fraction (0.05) or a percentage (5%).

WebSocket faults (--ws-fault, comma separated; also POST /_emulator/ws/faults):
  extra-fields=TR:N  append N fields to every record of TR (H0STCNT0:3)
  drop-every=D       drop every session every D (TCP closed, no close frame)
  garbage-every=D    send every session an unparseable frame every D
  stall-after=D      each session goes silent (keeps the TCP open) after D

Admin API (never faulted or limited):
  GET  /_emulator/stats              counters (JSON)
  POST /_emulator/faults             body: a fault spec or JSON; DELETE clears
  POST /_emulator/outage?for=30s     reset every request for 30s
  POST /_emulator/expire-tokens      expire every token now
  POST /_emulator/expire-approval-keys  expire every approval key now
  GET  /_emulator/ws/sessions        open WebSocket sessions
  POST /_emulator/ws/drop            drop every session now (1006)
  POST /_emulator/ws/restart         KIS restart: sessions gone, keys kept
  POST /_emulator/ws/stall?session=N stop sending to a session (all without N)
  POST /_emulator/ws/garbage?kind=count|text|encrypted  one bad frame`

// emulatorExample is its examples block.
const emulatorExample = `  kisfeed emulator --addr 127.0.0.1:9443
  kisfeed emulator --server mock --seed 7 --fault 'error=0.05,latency=uniform:5ms-50ms'

  # get a token
  curl -s -X POST http://127.0.0.1:9443/oauth2/tokenP \
    -H 'content-type: application/json; charset=utf-8' \
    -d '{"grant_type":"client_credentials","appkey":"demo-key","appsecret":"demo-secret"}'

  # current price of Samsung Electronics
  curl -s 'http://127.0.0.1:9443/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930' \
    -H "authorization: Bearer $TOKEN" -H 'appkey: demo-key' -H 'appsecret: demo-secret' \
    -H 'tr_id: FHKST01010100' -H 'custtype: P'

  # an hour of trading per minute, from the open, dropping sessions every 30 s
  KISFEED_MARKET_TIME='2026-11-27 09:00' kisfeed emulator --speed 60 --ws-fault drop-every=30s

  # inject faults at run time
  curl -s -X POST http://127.0.0.1:9443/_emulator/faults -d 'reset=0.1,seed=3'`

func newEmulatorCmd(a *app) *cobra.Command {
	var f emulatorFlags
	c := &cobra.Command{
		Use:     "emulator",
		Short:   "Run a KIS wire-compatible API server over the synthetic market",
		Long:    emulatorLong,
		Example: emulatorExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.options(cmd)
			if err != nil {
				return err
			}
			clock, err := a.marketClock()
			if err != nil {
				return err
			}
			opts = append(opts, emulator.WithLogger(a.emulatorLogger()), emulator.WithMarketClock(clock))
			return runEmulator(cmd.Context(), a, f.addr, opts)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:9443", "listen address (port 0 picks a free port)")
	fl.StringVar(&f.server, "server", "real", "server kind: real or mock (모의투자: real-only TRs refused, 1 req/s)")
	fl.Int64Var(&f.seed, "seed", 1, "seed of the synthetic market")
	fl.Float64Var(&f.rate, "rate", 0, "REST requests per second per app key; 0 = no limit (default 18 real, 1 mock)")
	fl.DurationVar(&f.tokenTTL, "token-ttl", emulator.DefaultTokenTTL, "access-token lifetime")
	fl.DurationVar(&f.tokenInterval, "token-interval", emulator.DefaultTokenIssueInterval, "minimum time between tokenP calls per app key (EGW00133); 0 disables")
	fl.StringVar(&f.latency, "latency", "", "added response delay: 20ms, uniform:5ms-50ms or normal:20ms,5ms")
	fl.StringVar(&f.fault, "fault", "", "faults to inject, e.g. 'error=0.05,reset=0.01,seed=7' (see above)")
	fl.StringArrayVar(&f.appKeys, "app-key", nil, "register KEY:SECRET (repeatable); then other keys get EGW00103")
	fl.Float64Var(&f.speed, "speed", 1, "market clock speed factor for REST and WebSocket (60 = an hour per minute)")
	fl.DurationVar(&f.pingInterval, "ping-interval", emulator.DefaultPingInterval, "how often the server sends PINGPONG on each WebSocket session")
	fl.DurationVar(&f.pingTimeout, "ping-timeout", 0, "drop a session silent this long after a PINGPONG (default 3 ping intervals)")
	fl.DurationVar(&f.feedInterval, "feed-interval", emulator.DefaultFeedInterval, "how often each session's trades and books are sent; trades in between share a frame")
	fl.StringVar(&f.wsFault, "ws-fault", "", "WebSocket faults, e.g. 'extra-fields=H0STCNT0:3,drop-every=30s' (see above)")
	return c
}

// options validates the flags into emulator options; a bad value is a
// usage error (exit 2) naming the flag.
func (f *emulatorFlags) options(cmd *cobra.Command) ([]emulator.Option, error) {
	opts := []emulator.Option{emulator.WithSeed(f.seed), emulator.WithTokenIssueInterval(f.tokenInterval)}
	switch s := strings.ToLower(f.server); s {
	case emulator.KindReal, emulator.KindMock:
		opts = append(opts, emulator.WithServerKind(s))
	default:
		return nil, usageError("--server %q: want real or mock", f.server)
	}
	if cmd.Flags().Changed("rate") {
		if f.rate < 0 {
			return nil, usageError("--rate %v: want >= 0 requests per second (0 = no limit)", f.rate)
		}
		opts = append(opts, emulator.WithRate(f.rate))
	}
	if f.tokenTTL < time.Second {
		return nil, usageError("--token-ttl %s: want at least 1s", f.tokenTTL)
	}
	if f.tokenInterval < 0 {
		return nil, usageError("--token-interval %s: want >= 0", f.tokenInterval)
	}
	opts = append(opts, emulator.WithTokenTTL(f.tokenTTL))
	if f.latency != "" {
		l, err := emulator.ParseLatency(f.latency)
		if err != nil {
			return nil, usageError("--latency: %v", err)
		}
		opts = append(opts, emulator.WithLatency(l))
	}
	if f.fault != "" {
		ft, err := emulator.ParseFaults(f.fault)
		if err != nil {
			return nil, usageError("--fault: %v", err)
		}
		opts = append(opts, emulator.WithFaults(ft))
	}
	wsOpts, err := f.wsOptions(cmd)
	if err != nil {
		return nil, err
	}
	opts = append(opts, wsOpts...)
	for _, kv := range f.appKeys {
		k, s, ok := strings.Cut(kv, ":")
		if !ok || k == "" || s == "" {
			return nil, usageError("--app-key: want KEY:SECRET, got an entry without ':' or with an empty part")
		}
		opts = append(opts, emulator.WithAppKey(k, s))
	}
	_, port, err := net.SplitHostPort(f.addr)
	if err == nil {
		// A port out of range is bad usage, not a listen failure (exit 1).
		_, err = net.LookupPort("tcp", port)
	}
	if err != nil {
		return nil, usageError("--addr %q: want host:port with a port from 0 to 65535, e.g. 127.0.0.1:9443", f.addr)
	}
	return opts, nil
}

// wsOptions validates the WebSocket and speed flags.
func (f *emulatorFlags) wsOptions(cmd *cobra.Command) ([]emulator.Option, error) {
	var opts []emulator.Option
	if !(f.speed > 0) {
		return nil, usageError("--speed %v: want a factor > 0 (1 = real time)", f.speed)
	}
	if f.speed != 1 {
		opts = append(opts, emulator.WithSpeed(f.speed))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		opt  func(time.Duration) emulator.Option
	}{{"ping-interval", f.pingInterval, emulator.WithPingInterval}, {"ping-timeout", f.pingTimeout, emulator.WithPingTimeout},
		{"feed-interval", f.feedInterval, emulator.WithFeedInterval}} {
		if !cmd.Flags().Changed(d.name) {
			continue
		}
		if d.v <= 0 {
			return nil, usageError("--%s %s: want > 0", d.name, d.v)
		}
		opts = append(opts, d.opt(d.v))
	}
	if f.wsFault != "" {
		wf, err := emulator.ParseWSFaults(f.wsFault)
		if err != nil {
			return nil, usageError("--ws-fault: %v", err)
		}
		opts = append(opts, emulator.WithWSFaults(wf))
	}
	return opts, nil
}

// marketClock is the emulator's market clock: KISFEED_MARKET_TIME starts
// it at a simulated instant (as in mock and embedded modes), else it is
// the wall clock. --speed applies on top (emulator.WithSpeed).
func (a *app) marketClock() (func() time.Time, error) {
	cfg := config.Config{MarketTime: a.getenv("KISFEED_MARKET_TIME")}
	if _, err := cfg.MarketStart(); err != nil {
		return nil, usageError("%v", err)
	}
	return cfg.MarketClock(time.Now), nil
}

// emulatorLogger logs to stderr with LOG_LEVEL/LOG_FORMAT from the
// environment; the emulator needs no other configuration.
func (a *app) emulatorLogger() *slog.Logger {
	cfg := config.Config{LogLevel: a.getenv("LOG_LEVEL"), LogFormat: a.getenv("LOG_FORMAT")}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	return a.logger(cfg)
}

// runEmulator serves until ctx is cancelled, then shuts down gracefully.
func runEmulator(ctx context.Context, a *app, addr string, opts []emulator.Option) error {
	srv, err := emulator.New(opts...)
	if err != nil {
		return usageError("%v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return withExit(1, fmt.Errorf("listen on %s: %w", addr, err))
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	// WebSocket sessions are hijacked connections Shutdown does not see.
	hs.RegisterOnShutdown(func() { _ = srv.Close() })
	fmt.Fprintf(a.stdout, "listening on http://%s\n", ln.Addr())
	// A drain that outlives the 5 s shutdown timeout cuts the stragglers
	// and still ends cleanly: only serving itself can fail the command.
	if err := httpserve.Run(ctx, hs, ln, 5*time.Second); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return withExit(1, fmt.Errorf("serve: %w", err))
	}
	return nil
}
