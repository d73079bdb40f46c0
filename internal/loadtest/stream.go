package loadtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StreamConfig describes one run of the stream load generator: Clients
// consumers of the target's /v1/stream (SSE) or /v1/ws (WebSocket), each
// subscribed to PerClient of the Codes.
type StreamConfig struct {
	// Target is the API's base URL, e.g. http://127.0.0.1:8080.
	Target string
	// Clients is how many consumers connect.
	Clients int
	// Codes are the stock codes the consumers spread over: consumer i
	// takes PerClient consecutive codes from position i×PerClient (mod
	// len(Codes)), so with Clients × PerClient >= len(Codes) every code
	// has consumers and they share the load evenly.
	Codes []string
	// PerClient is how many codes each consumer subscribes to (1 to 100).
	PerClient int
	// Kinds are the event kinds asked for (default trade and book).
	Kinds []string
	// Duration is how long the run lasts after the last consumer started.
	Duration time.Duration
	// Ramp spreads the connections evenly over this period (0: all at
	// once), so the server does not take every handshake at the same time.
	Ramp time.Duration
	// WebSocket selects /v1/ws instead of /v1/stream.
	WebSocket bool
	// Slow is how many consumers (the first ones) stop reading once
	// connected: the server should cut them off when their queue is full
	// while the others go on unharmed. After the run they read what is
	// left for at most Drain, to learn how the server ended the stream.
	Slow int
	// Drain bounds the slow consumers' final read (default 5 s).
	Drain time.Duration
	// Client connects the consumers; it must have no Timeout (streams are
	// long). A client without limits per host if nil.
	Client *http.Client
	// SlowClient connects the slow consumers (default: one whose
	// connections have a small receive buffer, so that the server's
	// queue, not the kernel's, is what fills up).
	SlowClient *http.Client
	// Now stamps each event's receipt (default time.Now); tests fix it.
	Now func() time.Time
}

// Limits of a stream run's settings.
const (
	maxStreamClients  = 100_000
	maxCodesPerClient = 100 // the contract's limit per subscription
)

// Validate fills in the defaults of zero settings and checks every setting
// but Codes, so that a bad setting is refused before the target is
// contacted. The error is a *[FieldError] whose Field is the flag's name
// (clients, per-client, kinds, ...).
func (cfg *StreamConfig) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	u, err := url.Parse(cfg.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("target", "%q: want an http(s) URL like http://127.0.0.1:8080", cfg.Target)
	}
	cfg.Target = strings.TrimRight(cfg.Target, "/")
	if cfg.Clients < 1 || cfg.Clients > maxStreamClients {
		return bad("clients", "%d: want 1 to %d consumers", cfg.Clients, maxStreamClients)
	}
	if cfg.PerClient < 1 || cfg.PerClient > maxCodesPerClient {
		return bad("per-client", "%d: want 1 to %d codes per consumer", cfg.PerClient, maxCodesPerClient)
	}
	if len(cfg.Kinds) == 0 {
		cfg.Kinds = []string{"trade", "book"}
	}
	for _, k := range cfg.Kinds {
		if k != "trade" && k != "book" {
			return bad("kinds", "%q: want trade and/or book, comma-separated", k)
		}
	}
	if cfg.Duration <= 0 {
		return bad("duration", "%s: want > 0", cfg.Duration)
	}
	if cfg.Ramp < 0 {
		return bad("ramp", "%s: want >= 0", cfg.Ramp)
	}
	if cfg.Slow < 0 || cfg.Slow > cfg.Clients {
		return bad("slow", "%d: want 0 to --clients (%d)", cfg.Slow, cfg.Clients)
	}
	if cfg.Drain == 0 {
		cfg.Drain = 5 * time.Second
	}
	if cfg.Drain < 0 {
		return bad("drain", "%s: want > 0", cfg.Drain)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// checkCodes checks Codes against PerClient.
func (cfg *StreamConfig) checkCodes() error {
	if len(cfg.Codes) == 0 {
		return &FieldError{Field: "codes", Msg: "empty: want at least one stock code"}
	}
	if cfg.PerClient > len(cfg.Codes) {
		return &FieldError{Field: "per-client", Msg: fmt.Sprintf("%d: more than the %d codes", cfg.PerClient, len(cfg.Codes))}
	}
	return nil
}

// AssignCodes returns consumer i's codes: per consecutive codes from
// position i×per, wrapping around.
func AssignCodes(codes []string, per, i int) []string {
	out := make([]string, per)
	for j := range per {
		out[j] = codes[(i*per+j)%len(codes)]
	}
	return out
}

// streamRun is one run in progress: what the consumers share.
type streamRun struct {
	cfg        StreamConfig
	fast, slow *http.Client
	hists      struct{ delivery, endToEnd *histogram }
	// mainDone is closed when the main phase ends (duration over, every
	// reading consumer gone, or ctx done); slow consumers then drain.
	mainDone chan struct{}
	// after is the server's snapshot as the main phase ended by its
	// duration (scraped true), taken before the consumers hang up.
	after    streamSnapshot
	afterErr error
	scraped  bool
}

func (r *streamRun) client(slow bool) *http.Client {
	if slow {
		return r.slow
	}
	return r.fast
}

// stall holds a slow consumer until the main phase ends; it returns
// false when ctx ended first.
func (r *streamRun) stall(ctx context.Context) bool {
	select {
	case <-r.mainDone:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// draining reports whether ctx ended in the drain phase.
func (r *streamRun) draining(ctx context.Context) bool {
	select {
	case <-r.mainDone:
		return ctx.Err() != nil
	default:
		return false
	}
}

// SmallBufferTransport returns a transport whose connections have a
// small receive buffer (slowRcvBuf), for slow consumers: a consumer that
// stops reading then fills the server's queue within a few events rather
// than after the kernel's megabytes of autotuned buffer.
func SmallBufferTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		return setRcvBuf(c, slowRcvBuf)
	}}
	return &http.Transport{DialContext: d.DialContext, DisableCompression: true, Protocols: HTTP1Only()}
}

// HTTP1Only is the protocol set of a consumer's transport: HTTP/1.1 only,
// so that each consumer has its own connection, as independent clients
// do, rather than 1,000 streams multiplexed on one HTTP/2 connection to
// an https target; and a WebSocket handshake needs HTTP/1.1 anyway.
func HTTP1Only() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return p
}

// slowRcvBuf is a slow consumer's socket receive buffer (Linux doubles
// it): a few dozen events.
const slowRcvBuf = 16 << 10

// RunStream performs a stream run and returns its figures. It stops
// early, with the figures so far, when ctx is done.
func RunStream(ctx context.Context, cfg StreamConfig) (StreamResult, error) {
	if err := cfg.Validate(); err != nil {
		return StreamResult{}, err
	}
	if err := cfg.checkCodes(); err != nil {
		return StreamResult{}, err
	}
	r := &streamRun{cfg: cfg, fast: cfg.Client, slow: cfg.SlowClient, mainDone: make(chan struct{})}
	r.hists.delivery, r.hists.endToEnd = newHistogram(), newHistogram()
	if r.fast == nil {
		r.fast = &http.Client{Transport: &http.Transport{DisableCompression: true, Protocols: HTTP1Only()}}
		defer r.fast.CloseIdleConnections()
	}
	if r.slow == nil {
		r.slow = &http.Client{Transport: SmallBufferTransport()}
		defer r.slow.CloseIdleConnections()
	}
	before, beforeErr := scrapeStream(ctx, r.fast, cfg.Target)
	consumers, elapsed := r.launch(ctx)
	after, afterErr := r.after, r.afterErr
	if !r.scraped {
		// The main phase ended early (every reader gone, or ctx done).
		after, afterErr = scrapeStream(context.WithoutCancel(ctx), r.fast, cfg.Target)
	}
	res := r.sum(consumers, elapsed)
	if beforeErr == nil && afterErr == nil {
		res.ServerCounters = after.counters.sub(before.counters)
		res.MemBefore, res.MemAfter = before.mem, after.mem
	} else if afterErr == nil {
		res.MemAfter = after.mem
	}
	return res, ctx.Err()
}

// launch starts the consumers, spread over the ramp, and returns them
// once every one has ended, with the length of the main phase (the slow
// consumers' drain left out).
func (r *streamRun) launch(ctx context.Context) ([]*consumer, time.Duration) {
	cfg := r.cfg
	mainCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	mainEnd := time.NewTimer(cfg.Ramp + cfg.Duration)
	defer mainEnd.Stop()
	// Slow consumers outlive the main phase by the drain, so their
	// connections hang off ctx, cut when the drain is over.
	slowCtx, slowCancel := context.WithCancel(ctx)
	defer slowCancel()

	consumers := make([]*consumer, cfg.Clients)
	var readers, all sync.WaitGroup
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
ramp:
	for i := range consumers {
		if d := time.Until(start.Add(cfg.Ramp * time.Duration(i) / time.Duration(cfg.Clients))); d > 0 {
			timer.Reset(d)
			select {
			case <-mainCtx.Done():
				consumers = consumers[:i]
				break ramp
			case <-timer.C:
			}
		}
		c := &consumer{idx: i, codes: AssignCodes(cfg.Codes, cfg.PerClient, i), slow: i < cfg.Slow, run: r}
		consumers[i] = c
		runOne, cctx := c.runSSE, mainCtx
		if cfg.WebSocket {
			runOne = c.runWS
		}
		if c.slow {
			cctx = slowCtx
		} else {
			readers.Add(1)
		}
		all.Go(func() {
			runOne(cctx)
			c.endedAt = time.Now()
			if !c.slow {
				readers.Done()
			}
		})
	}
	// The main phase ends with the duration, or when no reading consumer
	// is left (a server that closed every stream).
	go func() { readers.Wait(); cancel() }()
	var elapsed time.Duration
	select {
	case <-mainEnd.C:
		elapsed = time.Since(start)
		// The server's counters and memory as the run ends, while the
		// consumers are still connected: scraped after they close, the
		// counters would count the run's own hang-ups as disconnects
		// (reason closed), some or all, depending on how fast the server
		// noticed.
		r.after, r.afterErr = scrapeStream(mainCtx, r.fast, cfg.Target)
		r.scraped = true
	case <-mainCtx.Done():
		elapsed = time.Since(start)
	}
	cancel()
	close(r.mainDone)
	drain := time.AfterFunc(cfg.Drain, slowCancel)
	defer drain.Stop()
	all.Wait()
	return consumers, elapsed
}

// sum adds up the consumers' counts.
func (r *streamRun) sum(consumers []*consumer, elapsed time.Duration) StreamResult {
	cfg := r.cfg
	transport := "sse"
	if cfg.WebSocket {
		transport = "ws"
	}
	res := StreamResult{
		Target: cfg.Target, Transport: transport, Clients: cfg.Clients, Started: len(consumers),
		Codes: len(cfg.Codes), PerClient: cfg.PerClient, Kinds: cfg.Kinds, Slow: cfg.Slow,
		Duration: cfg.Duration, Ramp: cfg.Ramp, Elapsed: elapsed,
		Events: map[string]int{}, SlowEvents: map[string]int{}, Gaps: map[string]int{},
		ErrorEvents: map[string]int{}, Disconnects: map[string]int{}, SlowDisconnects: map[string]int{},
		Delivery: r.hists.delivery.summary(), EndToEnd: r.hists.endToEnd.summary(),
	}
	covered := map[string]bool{}
	var rates []float64
	for _, c := range consumers {
		for _, code := range c.codes {
			covered[code] = true
		}
		r.addConsumer(&res, c)
		if c.connected && !c.slow {
			if d := c.endedAt.Sub(c.connectedAt).Seconds(); d > 0 {
				rates = append(rates, float64(c.events[kindTrade]+c.events[kindBook])/d)
			}
		}
	}
	res.CodesCovered = len(covered)
	if elapsed > 0 {
		res.EventsPerSec = float64(res.Events["trade"]+res.Events["book"]) / elapsed.Seconds()
	}
	if len(rates) > 0 {
		slices.Sort(rates)
		var total float64
		for _, x := range rates {
			total += x
		}
		res.PerConsumer = RateSpread{Mean: total / float64(len(rates)), Min: rates[0], Median: rates[len(rates)/2], Max: rates[len(rates)-1]}
	}
	res.ClientRSS, res.ClientPeakRSS = selfRSS()
	return res
}

// addConsumer adds one consumer's counts to res.
func (r *streamRun) addConsumer(res *StreamResult, c *consumer) {
	if c.connected {
		res.Connected++
	}
	events, disconnects := res.Events, res.Disconnects
	if c.slow {
		events, disconnects = res.SlowEvents, res.SlowDisconnects
	}
	for k, n := range c.events {
		if n > 0 {
			events[kindNames[k]] += n
		}
	}
	switch {
	case c.end != "":
		disconnects[c.end]++
	case c.slow:
		disconnects["not disconnected"]++
	}
	for k, n := range c.gaps {
		res.Gaps[k] += n
	}
	for k, n := range c.errEvents {
		res.ErrorEvents[k] += n
	}
	res.Duplicates += c.idCounts[idDuplicate]
	res.OutOfOrder += c.idCounts[idOutOfOrder]
	res.Late += c.idCounts[idLate]
	res.BadIDs += c.idCounts[idBad]
	res.EpochChanges += c.epochs
	res.Pings += c.pings
	if res.FirstError == "" {
		res.FirstError = c.firstErr
	}
}
