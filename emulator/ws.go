package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/kisfeed/kisfeed"
)

// The WebSocket side (REFERENCE §h): sessions on the REST listener at
// /tryitout and /, registrations, PINGPONG, and the feed of H0STCNT0
// trades and H0STASP0 books.

// Defaults of the WebSocket side.
const (
	// DefaultPingInterval is how often the server sends PINGPONG. KIS's
	// interval is unconfirmed (§h.4); 10 s is short enough that a client's
	// PINGPONG handling and watchdog are exercised several times a minute
	// (a client that forgets to answer is dropped within half a minute,
	// not after an hour of a test), and long enough to be noise in a
	// capture.
	DefaultPingInterval = 10 * time.Second
	// DefaultFeedInterval is how often (wall time) a session's feed sends
	// what the market did since the last send: trades that fall in the
	// same interval share one frame, as KIS packs them at busy moments.
	DefaultFeedInterval = 100 * time.Millisecond
	// writeTimeout bounds one frame's write: a client that stops reading
	// is dropped rather than holding the feed.
	writeTimeout = 5 * time.Second
	// maxWindow bounds how much market time one feed step covers (after a
	// clock jump the feed resumes from maxWindow before now).
	maxWindow = 10 * time.Minute
	// maxRecords bounds the records of one data frame.
	maxRecords = 50
)

// Drop reasons (Stats.WebSocket.SessionsDroppedByReason).
const (
	DropClientClosed = "client_closed" // the client closed or the read failed
	DropSilent       = "silent"        // no answer to PINGPONG within the timeout
	DropFault        = "fault"         // drop fault (admin or drop-every)
	DropRestart      = "restart"       // restart fault
	DropWriteFailed  = "write_failed"  // a write failed or timed out
	DropServerClosed = "server_closed" // Server.Close
)

// wsConfig holds the WebSocket options.
type wsConfig struct {
	pingInterval time.Duration
	pingTimeout  time.Duration // 0: 3 × pingInterval
	feedInterval time.Duration
	maxRegs      int
}

// WithPingInterval sets how often the server sends PINGPONG (default
// 10s).
func WithPingInterval(d time.Duration) Option {
	return positive("ping interval", d, func(o *options) { o.ws.pingInterval = d })
}

// WithPingTimeout sets how long a session may stay silent (no message, no
// pong, no echo) after a PINGPONG before it is dropped, as KIS drops it
// (default 3 ping intervals).
func WithPingTimeout(d time.Duration) Option {
	return positive("ping timeout", d, func(o *options) { o.ws.pingTimeout = d })
}

// WithFeedInterval sets how often each session's feed sends (wall time,
// default 100ms).
func WithFeedInterval(d time.Duration) Option {
	return positive("feed interval", d, func(o *options) { o.ws.feedInterval = d })
}

// WithMaxRegistrations sets the registrations one session may hold
// (default [MaxRegistrations], 41).
func WithMaxRegistrations(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return errors.New("emulator: max registrations: want >= 1")
		}
		o.ws.maxRegs = n
		return nil
	}
}

// WithSpeed makes the market clock run factor times faster than it
// otherwise would, from the instant New is called: 60 plays an hour of
// trading in a minute, for REST and WebSocket alike (both read the same
// market clock). Default 1.
func WithSpeed(factor float64) Option {
	return func(o *options) error {
		if !(factor > 0) || factor > 1e6 {
			return fmt.Errorf("emulator: speed %v: want a factor > 0 and at most 1e6 (1 = real time)", factor)
		}
		o.speed = factor
		return nil
	}
}

// scaled returns a clock that runs factor times faster than now from the
// first reading on.
func scaled(now func() time.Time, factor float64) func() time.Time {
	origin := now()
	return func() time.Time {
		return origin.Add(time.Duration(float64(now().Sub(origin)) * factor))
	}
}

// positive is an Option setting a duration that must be > 0.
func positive(name string, d time.Duration, set func(*options)) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("emulator: " + name + " " + d.String() + ": want > 0")
		}
		set(o)
		return nil
	}
}

// wsHub holds the sessions of one Server.
type wsHub struct {
	cfg   wsConfig
	stats wsStatsRec

	mu       sync.Mutex // guards sessions, byAppKey, nextID and every session's appKey
	sessions map[uint64]*wsSession
	byAppKey map[string]*wsSession
	nextID   uint64

	faultMu   sync.Mutex // guards faults, stopLoops
	faults    WSFaults
	stopLoops context.CancelFunc
}

func (h *wsHub) init(cfg wsConfig) {
	if cfg.pingInterval == 0 {
		cfg.pingInterval = DefaultPingInterval
	}
	if cfg.pingTimeout == 0 {
		cfg.pingTimeout = 3 * cfg.pingInterval
	}
	if cfg.feedInterval == 0 {
		cfg.feedInterval = DefaultFeedInterval
	}
	if cfg.maxRegs == 0 {
		cfg.maxRegs = MaxRegistrations
	}
	h.cfg = cfg
	h.sessions = map[uint64]*wsSession{}
	h.byAppKey = map[string]*wsSession{}
	h.stats.init()
}

// regKey names one registration.
type regKey struct{ trID, trKey string }

// wsReg is one registration's feed state; after creation only the
// session's feed goroutine touches it.
type wsReg struct {
	key      regKey
	ready    atomic.Bool // set once the OPSP0000 reply is sent
	last     time.Time   // market time fed up to
	lastBook string      // the last book record sent (send on change)
	hiHour   string
	loHour   string
	hi, lo   int64
	prevPx   int64

	facts       *tradeFacts // per-minute facts of the code (tradeFrame)
	factsMinute int64
}

// wsSession is one WebSocket connection.
type wsSession struct {
	id     uint64
	s      *Server
	conn   *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	appKey string // bound app key, guarded by wsHub.mu

	mu   sync.Mutex // guards regs
	regs []*wsReg   // in registration order

	pinged   atomic.Int64 // wall UnixNano of the first PINGPONG unanswered since the client's last sign of life
	stalled  atomic.Bool
	garbage  chan string
	dropOnce sync.Once
}

// isWebSocket reports whether r asks for a WebSocket upgrade.
func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// serveWebSocket runs one session until it ends. KIS sends no auth on the
// upgrade (§h.1): the approval key arrives in every subscribe message and
// binds the session to its app key at the first valid one.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	sess := &wsSession{s: s, garbage: make(chan string, 4)}
	sess.touch()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // a test server: any origin
		OnPingReceived: func(context.Context, []byte) bool {
			sess.touch()
			return true
		},
		OnPongReceived: func(context.Context, []byte) {
			s.ws.stats.pong()
			sess.touch()
		},
	})
	if err != nil {
		return // Accept has answered
	}
	conn.SetReadLimit(1 << 16)
	sess.conn = conn
	sess.ctx, sess.cancel = context.WithCancel(context.Background())
	h := &s.ws
	h.mu.Lock()
	h.nextID++
	sess.id = h.nextID
	h.sessions[sess.id] = sess
	n := len(h.sessions)
	h.mu.Unlock()
	h.stats.opened(n)
	if f := h.currentFaults(); f.StallAfter > 0 {
		time.AfterFunc(f.StallAfter, func() { sess.stalled.Store(true) })
	}

	fed := make(chan struct{})
	go func() { defer close(fed); s.feedLoop(sess) }() // ends with sess.ctx
	s.readLoop(sess)
	sess.drop(DropClientClosed)
	sess.cancel()
	<-fed
	h.mu.Lock()
	delete(h.sessions, sess.id)
	h.mu.Unlock()
}

// touch records a sign of life from the client (any message, pong or
// ping): nothing is pending any more.
func (sess *wsSession) touch() { sess.pinged.Store(0) }

// drop ends the session abnormally: the TCP connection is closed without
// a close frame, so the client sees 1006, as when KIS drops a session.
// The first reason given is the one counted.
func (sess *wsSession) drop(reason string) {
	sess.dropOnce.Do(func() {
		// Count and free the app key before the client can see the drop:
		// its reconnect must not meet OPSP8996 from a session already
		// gone, and a test that saw the drop finds it counted.
		sess.s.ws.stats.dropped(reason)
		sess.s.ws.unbind(sess)
		_ = sess.conn.CloseNow()
	})
}

// unbind releases sess's app key.
func (h *wsHub) unbind(sess *wsSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sess.appKey != "" && h.byAppKey[sess.appKey] == sess {
		delete(h.byAppKey, sess.appKey)
	}
	sess.appKey = "" // a dying session counts for no app key
}

// readLoop reads client messages until the connection ends.
func (s *Server) readLoop(sess *wsSession) {
	for {
		typ, msg, err := sess.conn.Read(sess.ctx)
		if err != nil {
			return
		}
		sess.touch()
		if typ != websocket.MessageText || sess.stalled.Load() {
			continue
		}
		out, added := s.handleMessage(sess, msg)
		if out != nil {
			sess.send(out)
		}
		if added != nil {
			// Data only after the reply, as KIS does: a client that
			// waits for OPSP0000 must not see the TR's first frame first.
			added.ready.Store(true)
		}
	}
}

// send writes one text frame; a stalled session writes nothing. A failed
// write drops the session.
func (sess *wsSession) send(b []byte) bool {
	if sess.stalled.Load() {
		return false
	}
	ctx, cancel := context.WithTimeout(sess.ctx, writeTimeout)
	defer cancel()
	if err := sess.conn.Write(ctx, websocket.MessageText, b); err != nil {
		sess.drop(DropWriteFailed)
		return false
	}
	return true
}

// handleMessage answers one client text message; a nil answer means none
// (a PINGPONG echo). added is the new registration, to be fed once the
// answer is sent.
func (s *Server) handleMessage(sess *wsSession, msg []byte) (answer []byte, added *wsReg) {
	req, code := parseRequest(msg)
	if req.pingpong {
		s.ws.stats.echo()
		return nil, nil
	}
	reply := func(code, msg1 string, out *controlOutput) ([]byte, *wsReg) {
		s.ws.stats.reply(code)
		return controlJSON(req.trID, req.trKey, code, msg1, out), nil
	}
	if code != "" {
		return reply(code, "", nil)
	}
	if !trSupported(s.kind, req.trID) {
		msg1 := "invalid tr_id : " + req.trID
		if s.kind == KindMock && (req.trID == TrTradeUnif || req.trID == TrBookUnif) {
			msg1 = "모의투자 TR 이 아닙니다. : " + req.trID
		}
		return reply(opspNoInput, msg1, nil)
	}
	if code, msg1 := s.bind(sess, req.approvalKey); code != "" {
		return reply(code, msg1, nil)
	}
	k := regKey{req.trID, req.trKey}
	if req.trType == "2" {
		if !sess.unregister(k) {
			return reply(opspNotFound, "", nil)
		}
		return reply(opspUnsubscribed, "", nil)
	}
	reg, n, code := sess.register(k, s.marketNow(), s.ws.cfg.maxRegs)
	if code != "" {
		return reply(code, "", nil)
	}
	s.ws.stats.registered(sess.boundKey(), n)
	answer, _ = reply(opspSubscribed, "", &controlOutput{IV: randHex(8), Key: randHex(16)})
	return answer, reg
}

// boundKey returns the session's app key ("" when unbound).
func (sess *wsSession) boundKey() string {
	sess.s.ws.mu.Lock()
	defer sess.s.ws.mu.Unlock()
	return sess.appKey
}

// bind checks the approval key and binds an unbound session to its app
// key. KIS checks the key when a session starts (§b.3): once bound, a
// session keeps working with a key that has since expired. An unknown or
// expired key is OPSP0011 (the code go-kis saw for a refused key, §k.1;
// §e's OPSP9994 "invalid appkey" reads as the app key itself); a key of
// an app key that another session holds is OPSP8996 and leaves this
// session unbound.
func (s *Server) bind(sess *wsSession, approvalKey string) (code, msg1 string) {
	appKey, found, expired := s.approvals.lookup(approvalKey, s.now())
	if !found {
		return opspBadApproval, ""
	}
	h := &s.ws
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case sess.appKey == appKey:
		return "", ""
	case sess.appKey != "":
		return opspBadApproval, "invalid approval : issued to another appkey"
	case expired:
		return opspBadApproval, "invalid approval : EXPIRED"
	}
	if other := h.byAppKey[appKey]; other != nil && other != sess {
		h.stats.inUse()
		return opspInUse, ""
	}
	sess.appKey = appKey
	h.byAppKey[appKey] = sess
	h.stats.bound(appKey, h.sessionsOf(appKey))
	return "", ""
}

// sessionsOf counts the bound sessions of appKey (the hub's rule keeps it
// at most 1; the stat proves it). Call with h.mu held.
func (h *wsHub) sessionsOf(appKey string) int {
	n := 0
	for _, x := range h.sessions {
		if x.appKey == appKey {
			n++
		}
	}
	return n
}

// register adds k at market time now (not fed until ready); it returns
// the registration and the count, or the refusal code (OPSP0002 already,
// OPSP0008 over the cap).
func (sess *wsSession) register(k regKey, now time.Time, maxRegs int) (*wsReg, int, string) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if slices.ContainsFunc(sess.regs, func(r *wsReg) bool { return r.key == k }) {
		return nil, len(sess.regs), opspAlready
	}
	if len(sess.regs) >= maxRegs {
		return nil, len(sess.regs), opspMaxSubscribe
	}
	r := &wsReg{key: k, last: now}
	sess.regs = append(sess.regs, r)
	return r, len(sess.regs), ""
}

// unregister removes k; false when it was not registered.
func (sess *wsSession) unregister(k regKey) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	i := slices.IndexFunc(sess.regs, func(r *wsReg) bool { return r.key == k })
	if i < 0 {
		return false
	}
	sess.regs = slices.Delete(sess.regs, i, i+1)
	return true
}

// registrations returns a copy of the registration list.
func (sess *wsSession) registrations() []*wsReg {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return slices.Clone(sess.regs)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// feedLoop sends PINGPONG, data and injected garbage until the session
// ends, and drops the session when it stays silent too long.
func (s *Server) feedLoop(sess *wsSession) {
	cfg := s.ws.cfg
	ping := time.NewTicker(cfg.pingInterval)
	defer ping.Stop()
	feed := time.NewTicker(cfg.feedInterval)
	defer feed.Stop()
	for {
		select {
		case <-sess.ctx.Done():
			return
		case kind := <-sess.garbage:
			if sess.send(garbageFrame(kind)) {
				s.ws.stats.garbage()
			}
		case <-ping.C:
			if sess.stalled.Load() {
				continue
			}
			if s.silent(sess, cfg) {
				sess.drop(DropSilent)
				return
			}
			// Mark the ping pending before sending it, so a quick answer
			// (touch) clears it rather than racing it.
			sess.pinged.CompareAndSwap(0, time.Now().UnixNano())
			if sess.send(pingJSON(s.marketNow().In(kisfeed.KST).Format("20060102150405"))) {
				s.ws.stats.ping()
			}
		case <-feed.C:
			if !sess.stalled.Load() {
				s.feed(sess, s.marketNow())
			}
		}
	}
}

// silent reports whether the session has not answered a PINGPONG (nor
// sent anything) for the ping timeout.
func (s *Server) silent(sess *wsSession, cfg wsConfig) bool {
	p := sess.pinged.Load()
	return p != 0 && time.Since(time.Unix(0, p)) >= cfg.pingTimeout
}

// Close ends every WebSocket session (abnormally, as a server going away)
// and stops the periodic fault loops. REST keeps working; call it when
// the HTTP server shuts down (http.Server.RegisterOnShutdown), since
// hijacked WebSocket connections outlive Shutdown.
func (s *Server) Close() error {
	s.ws.faultMu.Lock()
	if s.ws.stopLoops != nil {
		s.ws.stopLoops()
		s.ws.stopLoops = nil
	}
	s.ws.faultMu.Unlock()
	s.dropAll(DropServerClosed)
	return nil
}

// dropAll drops every session with reason.
func (s *Server) dropAll(reason string) int {
	s.ws.mu.Lock()
	all := make([]*wsSession, 0, len(s.ws.sessions))
	for _, x := range s.ws.sessions {
		all = append(all, x)
	}
	s.ws.mu.Unlock()
	for _, x := range all {
		x.drop(reason)
	}
	return len(all)
}
