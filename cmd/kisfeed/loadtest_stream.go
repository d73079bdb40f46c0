package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/loadtest"
	"github.com/kisfeed/kisfeed/internal/sim"
)

// streamOptions are the loadtest stream command's flags.
type streamOptions struct {
	target    string
	clients   int
	codes     int
	codeList  string
	perClient int
	duration  time.Duration
	ramp      time.Duration
	ws        bool
	kinds     string
	slow      int
	drain     time.Duration
	json      bool
}

func newLoadtestStreamCmd(a *app) *cobra.Command {
	var o streamOptions
	c := &cobra.Command{
		Use:   "stream --target URL",
		Short: "Hold many real-time stream consumers on a running serve and print delivery figures",
		Long: `stream opens --clients consumers of the target's real-time stream, SSE
(GET /v1/stream) by default or WebSocket (GET /v1/ws) with --ws, each
subscribed to --per-client of the first --codes common shares of the
target's universe (GET /v1/stocks; or the codes of --code-list). Consumer i
takes the codes from position i × --per-client on, wrapping around, so with
--clients × --per-client >= --codes every code has consumers, evenly.
Connections are spread over --ramp so the server does not take every
handshake at once; the run then lasts --duration, or until no consumer is
left.

Per consumer it counts events by type, gap and error events by reason,
duplicate ids (must be 0) and ids out of order, and how each stream ended:
"error event: <reason>" (SSE error event, then the stream closed),
"close <code>: <text>" (WebSocket close frame), "eof", "http <status>",
"connect failed". It measures, for every trade and book event, the
delivery latency (receipt − received_at: the server's share; received_at
has millisecond precision, so up to 1 ms high) and the
end-to-end latency (receipt − time: meaningful when the market clock is
the wall clock), in fixed log buckets (within 3%), so memory stays flat
for thousands of consumers over hours.

--slow N makes the first N consumers stop reading once connected (with a
32 kB socket receive buffer, so that little waits in the consumer's kernel;
the server's own send buffer, up to 4 MB on Linux unless it bounds it, still
absorbs events before its queue fills):
the server should cut them off while the others' latency does not move.
After the run they read what is left, for at most --drain, to learn how
the server ended their stream; their events and latencies are kept apart.

At the end it reads the target's /metrics for counters named
kisfeed_stream_*drop* or kisfeed_stream_*disconnect* (delta over the run;
"n/a" when there are none) and its resident memory
(process_resident_memory_bytes), and reports its own.

Exit status: 0 when at least one consumer connected and no id repeated;
1 otherwise, or when the target does not answer; 2 bad usage; 130
interrupted (the figures so far are printed).

A target that requires API keys: set KISFEED_API_KEY in the environment;
every connection carries it as "Authorization: Bearer <key>".`,
		Example: `  # 1,000 SSE consumers on 5 of 40 codes each for 5 minutes (the issue 11 bar)
  kisfeed loadtest stream --target http://127.0.0.1:8080 --clients 1000 --codes 40 --per-client 5 --duration 5m

  # the same over WebSocket, trades only, as JSON
  kisfeed loadtest stream --target http://127.0.0.1:8080 --ws --kinds trade --clients 200 --json

  # one consumer that reads nothing among 100 that keep up
  kisfeed loadtest stream --target http://127.0.0.1:8080 --clients 100 --slow 1 --duration 1m

  # given codes
  kisfeed loadtest stream --target http://127.0.0.1:8080 --code-list 005930,000660 --per-client 1 --clients 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.loadtestStream(cmd.Context(), o) },
	}
	f := c.Flags()
	f.StringVar(&o.target, "target", "", "base URL of a running kisfeed serve, e.g. http://127.0.0.1:8080 (required)")
	f.IntVar(&o.clients, "clients", 100, "how many consumers connect")
	f.IntVar(&o.codes, "codes", 40, "how many codes of the universe the consumers spread over")
	f.StringVar(&o.codeList, "code-list", "", "comma-separated codes to use instead of the universe's first --codes")
	f.IntVar(&o.perClient, "per-client", 5, "how many codes each consumer subscribes to (1 to 100)")
	f.DurationVar(&o.duration, "duration", time.Minute, "how long the run lasts after the ramp")
	f.DurationVar(&o.ramp, "ramp", 5*time.Second, "period over which the connections are spread (0: all at once)")
	f.BoolVar(&o.ws, "ws", false, "consume the WebSocket /v1/ws instead of SSE /v1/stream")
	f.StringVar(&o.kinds, "kinds", "trade,book", "event kinds to subscribe to: trade, book, or both")
	f.IntVar(&o.slow, "slow", 0, "how many consumers stop reading once connected")
	f.DurationVar(&o.drain, "drain", 5*time.Second, "how long slow consumers read what is left after the run")
	f.BoolVar(&o.json, "json", false, "print the figures as JSON")
	return c
}

// streamConfig checks the flags and turns them into a StreamConfig
// without codes (unless --code-list gave them).
func (o streamOptions) streamConfig() (loadtest.StreamConfig, error) {
	if o.target == "" {
		return loadtest.StreamConfig{}, usageError("--target is required: the base URL of a running kisfeed serve, e.g. http://127.0.0.1:8080")
	}
	if o.codeList == "" && o.codes < 1 {
		return loadtest.StreamConfig{}, usageError("--codes %d: want 1 or more", o.codes)
	}
	if o.drain <= 0 {
		return loadtest.StreamConfig{}, usageError("--drain %s: want > 0", o.drain)
	}
	sc := loadtest.StreamConfig{
		Target: o.target, Clients: o.clients, PerClient: o.perClient, Duration: o.duration,
		Ramp: o.ramp, WebSocket: o.ws, Slow: o.slow, Drain: o.drain,
	}
	for k := range strings.SplitSeq(o.kinds, ",") {
		sc.Kinds = append(sc.Kinds, strings.TrimSpace(k))
	}
	if o.codeList != "" {
		for s := range strings.SplitSeq(o.codeList, ",") {
			code, err := kisfeed.ParseCode(strings.TrimSpace(s))
			if err != nil {
				return sc, usageError("--code-list: %v", err)
			}
			sc.Codes = append(sc.Codes, code.String())
		}
		if o.perClient > len(sc.Codes) {
			return sc, usageError("--per-client %d: more than the %d codes of --code-list", o.perClient, len(sc.Codes))
		}
	} else if o.perClient > o.codes {
		return sc, usageError("--per-client %d: more than --codes %d", o.perClient, o.codes)
	}
	if err := sc.Validate(); err != nil {
		var fe *loadtest.FieldError
		if errors.As(err, &fe) { // its fields are named as the flags are
			return sc, usageError("--%s %s", fe.Field, fe.Msg)
		}
		return sc, usageError("%v", err)
	}
	return sc, nil
}

func (a *app) loadtestStream(ctx context.Context, o streamOptions) error {
	sc, err := o.streamConfig()
	if err != nil {
		return err
	}
	a.tuneGC()
	key := a.getenv(apiKeyEnv)
	// No client Timeout: streams are long; the run's context bounds them.
	sc.Client = &http.Client{Transport: withAPIKey(key, &http.Transport{
		MaxIdleConnsPerHost: 4, DisableCompression: true, IdleConnTimeout: 90 * time.Second,
		Protocols: loadtest.HTTP1Only(),
	})}
	sc.SlowClient = &http.Client{Transport: withAPIKey(key, loadtest.SmallBufferTransport())}
	defer sc.Client.CloseIdleConnections()
	defer sc.SlowClient.CloseIdleConnections()
	if sc.Codes == nil {
		if sc.Codes, err = a.targetCodes(ctx, sc.Client, sc.Target, o.codes); err != nil {
			return err
		}
		if sc.PerClient > len(sc.Codes) {
			return withExit(1, fmt.Errorf("the target lists only %d common shares, fewer than --per-client %d", len(sc.Codes), sc.PerClient))
		}
	}
	r, err := loadtest.RunStream(ctx, sc)
	if err != nil && r.Started == 0 {
		return withExit(1, err)
	}
	if err := a.printReport(r, o.json); err != nil {
		return err
	}
	if err != nil {
		return withExit(exitInterrupted, fmt.Errorf("interrupted after %s: %w", r.Elapsed.Round(time.Millisecond), err))
	}
	if err := r.Failure(); err != nil {
		return withExit(1, err)
	}
	return nil
}

// targetCodes returns the first n common-share codes of the target's
// universe, or of the synthetic one when the target cannot list them; an
// exit-1 error when the target does not answer at all.
func (a *app) targetCodes(ctx context.Context, c *http.Client, target string, n int) ([]string, error) {
	codes, err := loadtest.FetchCodes(ctx, c, target, n)
	var noAnswer *url.Error // what http.Client.Do returns when nothing answered
	switch {
	case errors.As(err, &noAnswer):
		// A load test against a target that does not answer would only
		// count failures.
		return nil, withExit(1, fmt.Errorf("target %s does not answer: %w", target, err))
	case err != nil:
		// The target may be an older build or not list stocks; the
		// synthetic universe is the same one the emulator serves.
		cfg, cerr := a.config()
		if cerr != nil {
			return nil, cerr
		}
		fmt.Fprintf(a.stderr, "kisfeed: listing codes from the target failed (%v); using the synthetic universe (seed %d)\n", err, cfg.Seed)
		for _, s := range sim.New(cfg.Seed).Universe() {
			if len(codes) == n {
				break
			}
			if s.IsCommonStock() {
				codes = append(codes, s.Code)
			}
		}
	}
	return codes, nil
}
