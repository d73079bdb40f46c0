package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sim"
)

// market is what the emulator reads from the synthetic market; *sim.Market
// implements it.
type market interface {
	Universe() []kisfeed.Stock
	Stock(code string) (kisfeed.Stock, bool)
	Info(code string) (kisfeed.StockInfo, bool)
	DailyBar(code string, day time.Time) (kisfeed.Candle, bool)
	DailyBars(code string, from, to time.Time) []kisfeed.Candle
	PrevClose(code string, day time.Time) (int64, bool)
	MinuteBars(code string, day time.Time) []kisfeed.Candle
	QuoteAt(code string, t time.Time) (kisfeed.Quote, bool)
	OrderBookAt(code string, t time.Time) (kisfeed.OrderBook, bool)
	Executions(code string, from, to time.Time) []sim.Execution
	BookAround(code string, t time.Time, price int64) (kisfeed.OrderBook, bool)
}

var _ market = (*sim.Market)(nil)

// Server kinds.
const (
	KindReal = "real"
	KindMock = "mock"
)

// Default limits (REFERENCE §f, N-rate 2026-04-20).
const (
	DefaultRealRate           = 18
	DefaultMockRate           = 1
	DefaultTokenTTL           = 24 * time.Hour
	DefaultTokenIssueInterval = 60 * time.Second
	DefaultTokenReuseWindow   = 6 * time.Hour
)

// Option configures a [Server].
type Option func(*options) error

type options struct {
	seed          int64
	market        market
	kind          string
	rate          float64
	rateSet       bool
	tokenTTL      time.Duration
	clock         func() time.Time
	marketClock   func() time.Time
	latency       Latency
	faults        Faults
	registry      map[string]string
	log           *slog.Logger
	issueInterval time.Duration
	reuseWindow   time.Duration
	speed         float64
	ws            wsConfig
	wsFaults      WSFaults
	approvalTTL   time.Duration
	approvalEvery time.Duration
}

// nonNil is an Option setting a value that must not be nil: isNil says
// whether it is, what names the option and the value in the error.
func nonNil(what string, isNil bool, set func(*options)) Option {
	return func(o *options) error {
		if isNil {
			return errors.New("emulator: " + what + " is nil")
		}
		set(o)
		return nil
	}
}

// nonNegative is an Option setting a duration that must be >= 0 (0 turns
// the rule off); name is how the error calls it.
func nonNegative(name string, d time.Duration, set func(*options)) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("emulator: %s %s: want >= 0", name, d)
		}
		set(o)
		return nil
	}
}

// WithSeed builds the synthetic market from seed (default 1). Ignored when
// WithMarket is given.
func WithSeed(seed int64) Option {
	return func(o *options) error { o.seed = seed; return nil }
}

// WithMarket serves an existing market (share one between an emulator and
// a mock Source so they agree number for number).
func WithMarket(m *sim.Market) Option {
	return nonNil("WithMarket: market", m == nil, func(o *options) { o.market = m })
}

// WithServerKind selects "real" (default) or "mock" (모의투자) behaviour:
// mock refuses the real-only TRs with EGW00213 and defaults to 1 req/s.
func WithServerKind(kind string) Option {
	return func(o *options) error {
		switch k := strings.ToLower(strings.TrimSpace(kind)); k {
		case KindReal, KindMock:
			o.kind = k
			return nil
		}
		return fmt.Errorf("emulator: server kind %q: want real or mock", kind)
	}
}

// WithRate sets the per-app-key REST limit in requests per second; 0
// turns limiting off. Default 18 (real) or 1 (mock).
func WithRate(perSecond float64) Option {
	return func(o *options) error {
		if perSecond < 0 || perSecond != perSecond {
			return fmt.Errorf("emulator: rate %v: want >= 0 requests per second (0 = no limit)", perSecond)
		}
		o.rate, o.rateSet = perSecond, true
		return nil
	}
}

// WithTokenTTL sets the access-token lifetime (default 24h).
func WithTokenTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return fmt.Errorf("emulator: token ttl %s: want at least 1s", d)
		}
		o.tokenTTL = d
		return nil
	}
}

// WithClock sets the clock for tokens, rate windows and stats (default
// time.Now).
func WithClock(now func() time.Time) Option {
	return nonNil("WithClock: clock", now == nil, func(o *options) { o.clock = now })
}

// WithMarketClock sets the instant quotes, books and minute bars are
// computed at (default: the WithClock clock), so tests can pin the market
// at, say, 10:00 KST on a trading day.
func WithMarketClock(now func() time.Time) Option {
	return nonNil("WithMarketClock: clock", now == nil, func(o *options) { o.marketClock = now })
}

// WithLatency adds a delay to every non-admin response.
func WithLatency(l Latency) Option {
	return func(o *options) error { o.latency = l; return nil }
}

// WithFaults sets the initial faults (see [Server.SetFaults]).
func WithFaults(f Faults) Option {
	return func(o *options) error { o.faults = f; return nil }
}

// WithAppKey registers an app key and its secret. Once any key is
// registered, other keys get EGW00103 and a wrong secret EGW00105; by
// default any non-empty key/secret pair is accepted. Call it once per key.
func WithAppKey(key, secret string) Option {
	return func(o *options) error {
		if key == "" || secret == "" {
			return errors.New("emulator: WithAppKey: key and secret must not be empty")
		}
		if o.registry == nil {
			o.registry = map[string]string{}
		}
		o.registry[key] = secret
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return nonNil("WithLogger: logger", l == nil, func(o *options) { o.log = l })
}

// WithTokenIssueInterval sets the minimum time between two tokenP calls of
// one app key (default 60s, KIS's "1분당 1회"); a quicker call gets HTTP
// 403 EGW00133. 0 disables the check.
func WithTokenIssueInterval(d time.Duration) Option {
	return nonNegative("token issue interval", d, func(o *options) { o.issueInterval = d })
}

// WithTokenReuseWindow sets how long after an issuance tokenP keeps
// returning the same token (default 6h). 0 issues a new token every call.
func WithTokenReuseWindow(d time.Duration) Option {
	return nonNegative("token reuse window", d, func(o *options) { o.reuseWindow = d })
}

// Server is a KIS wire-compatible HTTP server over a synthetic market. It
// implements http.Handler. Safe for concurrent use.
type Server struct {
	m             market
	kind          string
	rate          float64
	tokenTTL      time.Duration
	issueInterval time.Duration
	reuseWindow   time.Duration
	now           func() time.Time
	marketNow     func() time.Time
	latency       Latency
	registry      map[string]string // read-only after New
	log           *slog.Logger

	auth    authState
	limiter *limiter

	approvals        approvals
	approvalTTL      time.Duration
	approvalInterval time.Duration
	ws               wsHub
	stats            *statsRec

	faultMu     sync.Mutex // guards faults, rng, outageUntil
	faults      Faults
	rng         *rand.Rand
	outageUntil time.Time

	masters [3]masterFile
	derived derivedCache
	uid     atomic.Uint64
}

// New builds a Server.
func New(opts ...Option) (*Server, error) {
	o := options{
		seed: 1, kind: KindReal, tokenTTL: DefaultTokenTTL, clock: time.Now,
		issueInterval: DefaultTokenIssueInterval, reuseWindow: DefaultTokenReuseWindow,
		speed: 1, approvalTTL: DefaultApprovalTTL, approvalEvery: DefaultApprovalInterval,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if !o.rateSet {
		o.rate = DefaultRealRate
		if o.kind == KindMock {
			o.rate = DefaultMockRate
		}
	}
	if o.market == nil {
		o.market = sim.New(o.seed)
	}
	if o.marketClock == nil {
		o.marketClock = o.clock
	}
	if o.speed != 1 {
		o.marketClock = scaled(o.marketClock, o.speed)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		m: o.market, kind: o.kind, rate: o.rate, tokenTTL: o.tokenTTL,
		issueInterval: o.issueInterval, reuseWindow: o.reuseWindow,
		now: o.clock, marketNow: o.marketClock, latency: o.latency,
		registry: o.registry, log: o.log.With("component", "emulator"),
		limiter: newLimiter(o.rate), stats: newStatsRec(),
	}
	s.auth.init()
	s.approvals.init()
	s.approvalTTL, s.approvalInterval = o.approvalTTL, o.approvalEvery
	s.ws.init(o.ws)
	s.SetFaults(o.faults)
	s.SetWSFaults(o.wsFaults)
	return s, nil
}

// Kind returns "real" or "mock".
func (s *Server) Kind() string { return s.kind }

// Rate returns the per-app-key limit in requests per second (0 = none).
func (s *Server) Rate() float64 { return s.rate }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	st.WebSocket = s.wsStats()
	return st
}

// ResetStats zeroes the counters (the limiter's windows are kept; the
// WebSocket side's current sessions and registrations are live figures).
func (s *Server) ResetStats() {
	s.stats.reset()
	s.ws.stats.init()
}

// SetFaults replaces the injected faults. An Outage starts now; an
// ExpireTokens expires every token now.
func (s *Server) SetFaults(f Faults) {
	seed := f.Seed
	if seed == 0 {
		seed = 1
	}
	s.faultMu.Lock()
	s.faults = f
	s.rng = rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	if f.Outage > 0 {
		s.outageUntil = s.now().Add(f.Outage)
	} else {
		s.outageUntil = time.Time{}
	}
	s.faultMu.Unlock()
	if f.ExpireTokens {
		s.ExpireTokens()
		s.stats.fault(FaultExpireTokens)
	}
}

// Faults returns the current faults.
func (s *Server) Faults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults
}

// SetOutage resets every non-admin connection for d from now (0 ends an
// outage).
func (s *Server) SetOutage(d time.Duration) {
	s.faultMu.Lock()
	if d > 0 {
		s.outageUntil = s.now().Add(d)
	} else {
		s.outageUntil = time.Time{}
	}
	s.faultMu.Unlock()
}

// draw reports whether an event of probability p happens.
func (s *Server) draw(p float64) bool {
	if p <= 0 {
		return false
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.rng.Float64() < p
}

func (s *Server) snapshotFaults() (Faults, time.Time) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults, s.outageUntil
}

func (s *Server) sampleLatency(l Latency) time.Duration {
	if l.IsZero() {
		return 0
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return l.sample(s.rng)
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/_emulator/") {
		s.serveAdmin(w, r)
		return
	}
	// KIS clients use both ws://host:port/tryitout and ws://host:port (with
	// or without a trailing path after tryitout, e.g. /tryitout/H0STCNT0);
	// only an upgrade request is a session, a plain GET falls through.
	if (path == "/" || path == "/tryitout" || strings.HasPrefix(path, "/tryitout/")) && isWebSocket(r) {
		s.serveWebSocket(w, r)
		return
	}
	trID, hasTrID := "", false
	if v := r.Header.Values("tr_id"); len(v) > 0 {
		trID, hasTrID = v[0], true
	}
	isData := strings.HasPrefix(path, quotationsPrefix)
	s.stats.request(path, trID, hasTrID || isData)

	// Network-level faults first: they hit every non-admin request.
	f, outageUntil := s.snapshotFaults()
	if !outageUntil.IsZero() && s.now().Before(outageUntil) {
		s.stats.fault(FaultOutage)
		resetConn(w)
		return
	}
	if s.draw(f.Reset) {
		s.stats.fault(FaultReset)
		resetConn(w)
		return
	}
	d := s.sampleLatency(s.latency)
	if fd := s.sampleLatency(f.Latency); fd > 0 {
		s.stats.fault(FaultLatency)
		d += fd
	}
	if d > 0 {
		// Real time, not the injected clock: latency is about the
		// client's timeouts, which run on real time.
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	switch {
	case isData:
		s.serveData(w, r, path, trID, hasTrID, f)
	case path == "/oauth2/tokenP":
		s.serveTokenP(w, r)
	case path == "/oauth2/revokeP":
		s.serveRevokeP(w, r)
	case path == "/oauth2/Approval":
		s.serveApproval(w, r)
	case path == "/uapi/hashkey":
		s.serveHashkey(w, r)
	case strings.HasPrefix(path, "/common/master/"):
		s.serveMaster(w, r)
	default:
		s.writeReply(w, trID, &reply{status: http.StatusNotFound, rtCd: "1", msgCd: "OPSQ0002", msg1: "없는 서비스 코드 입니다."})
	}
}

// resetConn drops the connection without a response: hijack, set linger 0
// so close sends a TCP RST, close. Where hijacking is impossible (HTTP/2)
// the server's documented abort (http.ErrAbortHandler) resets the stream.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// gtUID returns a transaction id for the gt_uid response header.
func (s *Server) gtUID() string {
	n := s.uid.Add(1)
	return fmt.Sprintf("EMU%013d%016x", s.now().UnixMilli()%1e13, n)
}

func setWireHeader(h http.Header, k, v string) { h[k] = []string{v} }

// writeReply writes a data-API envelope with KIS's response headers
// (lowercase on the wire, as KIS sends them).
func (s *Server) writeReply(w http.ResponseWriter, trID string, rep *reply) {
	h := w.Header()
	setWireHeader(h, "Content-Type", "application/json; charset=utf-8")
	setWireHeader(h, "tr_id", trID)
	setWireHeader(h, "tr_cont", rep.trCont)
	gt := rep.gtUID
	if gt == "" {
		gt = s.gtUID()
	}
	setWireHeader(h, "gt_uid", gt)
	s.stats.response(rep.msgCd)
	buf := rep.appendJSON(make([]byte, 0, 4096))
	setWireHeader(h, "Content-Length", strconv.Itoa(len(buf)))
	w.WriteHeader(rep.status)
	_, _ = w.Write(buf)
}

// writeJSON writes v as JSON (OAuth, admin).
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// serveAdmin is the /_emulator/ API: stats, faults, outage, token expiry.
// It is never subject to faults, limits or auth.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	type errBody struct {
		Error string `json:"error"`
	}
	switch r.URL.Path {
	case "/_emulator/stats":
		switch r.Method {
		case http.MethodGet:
			s.writeJSON(w, 200, s.Stats())
		case http.MethodDelete, http.MethodPost:
			s.ResetStats()
			s.writeJSON(w, 200, s.Stats())
		default:
			s.writeJSON(w, 405, errBody{"use GET, or DELETE/POST to reset"})
		}
	case "/_emulator/stats/reset":
		s.ResetStats()
		s.writeJSON(w, 200, s.Stats())
	case "/_emulator/faults":
		switch r.Method {
		case http.MethodGet:
			s.writeJSON(w, 200, s.Faults())
		case http.MethodPost, http.MethodPut:
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
			if err != nil {
				s.writeJSON(w, 400, errBody{err.Error()})
				return
			}
			var f Faults
			text := strings.TrimSpace(string(body))
			if q := r.URL.Query().Get("spec"); q != "" && text == "" {
				text = q
			}
			if strings.HasPrefix(text, "{") {
				err = json.Unmarshal([]byte(text), &f)
			} else {
				f, err = ParseFaults(text)
			}
			if err != nil {
				s.writeJSON(w, 400, errBody{err.Error()})
				return
			}
			s.SetFaults(f)
			s.writeJSON(w, 200, s.Faults())
		case http.MethodDelete:
			s.SetFaults(Faults{})
			s.writeJSON(w, 200, s.Faults())
		default:
			s.writeJSON(w, 405, errBody{"use GET, POST or DELETE"})
		}
	case "/_emulator/outage":
		if r.Method != http.MethodPost {
			s.writeJSON(w, 405, errBody{"use POST /_emulator/outage?for=30s"})
			return
		}
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || d < 0 {
			s.writeJSON(w, 400, errBody{"for: want a duration like 30s"})
			return
		}
		s.SetOutage(d)
		s.writeJSON(w, 200, map[string]string{"outage_until": s.now().Add(d).Format(time.RFC3339Nano)})
	case "/_emulator/expire-tokens":
		if r.Method != http.MethodPost {
			s.writeJSON(w, 405, errBody{"use POST"})
			return
		}
		s.ExpireTokens()
		s.stats.fault(FaultExpireTokens)
		s.writeJSON(w, 200, map[string]bool{"expired": true})
	case "/_emulator/ws/sessions", "/_emulator/ws/faults", "/_emulator/ws/drop", "/_emulator/ws/restart",
		"/_emulator/ws/stall", "/_emulator/ws/garbage":
		s.serveWSAdmin(w, r)
	case "/_emulator/expire-approval-keys":
		if r.Method != http.MethodPost {
			s.writeJSON(w, 405, errBody{"use POST"})
			return
		}
		s.ExpireApprovalKeys()
		s.writeJSON(w, 200, map[string]bool{"expired": true})
	case "/_emulator/health":
		s.writeJSON(w, 200, map[string]any{"ok": true, "kind": s.kind, "rate": s.rate})
	default:
		s.writeJSON(w, 404, errBody{"unknown admin path; see /_emulator/stats, /_emulator/faults, /_emulator/outage, /_emulator/expire-tokens, /_emulator/expire-approval-keys, /_emulator/ws/…"})
	}
}
