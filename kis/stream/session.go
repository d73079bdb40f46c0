package stream

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/kisfeed/kisfeed"
)

// Why a session ended: the reason label of reconnects.
const (
	reasonDropped         = "dropped"          // connection lost without a close frame (1006)
	reasonClosed          = "closed"           // the server closed the session
	reasonWatchdog        = "watchdog"         // no data and no PINGPONG for the watchdog time
	reasonKeyInUse        = "key_in_use"       // OPSP8996: another session holds the app key
	reasonApprovalRefused = "approval_refused" // OPSP0011/OPSP9994
	reasonDial            = "dial"             // the handshake failed
	reasonApproval        = "approval"         // no approval key could be obtained
	reasonWrite           = "write"            // a message could not be sent
	reasonShutdown        = "shutdown"         // Run's context ended (SessionDown only)
)

// renewEvery is the least time between two re-issues of a refused
// approval key while sessions keep failing.
const renewEvery = time.Minute

// keyLoop is the state one key's goroutine keeps across sessions. Only
// that goroutine (and the reader it runs) touches it.
type keyLoop struct {
	c       *Client
	k       *keyState
	ctx     context.Context // Run's: resyncs run under it
	resyncs *sync.WaitGroup
	last    map[string]time.Time    // code → last frame received
	pending map[string]*kisfeed.Gap // code → gap awaiting the restore
}

// runKey holds k's session until ctx is done: connect when k has
// registrations, serve, back off, reconnect.
func (c *Client) runKey(ctx context.Context, k *keyState, resyncs *sync.WaitGroup) {
	l := &keyLoop{c: c, k: k, ctx: ctx, resyncs: resyncs,
		last: map[string]time.Time{}, pending: map[string]*kisfeed.Gap{}}
	attempt := 0
	stale := ""           // an approval key KIS refused
	var renewed time.Time // when a refusal last got a new key
	for {
		if !l.waitForRegs(ctx) {
			return
		}
		var key string
		var err error
		if stale != "" {
			key, err = k.approver.Renew(ctx, stale)
		} else {
			key, err = k.approver.Key(ctx)
		}
		reason, healthy := reasonApproval, false
		if err == nil {
			stale = ""
			reason, healthy = l.session(ctx, key)
		} else if ctx.Err() == nil {
			c.o.log.Warn("kis stream: no approval key", "key", k.id, "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		if healthy {
			attempt, renewed = 0, time.Time{}
		}
		// A refused key is re-issued once; if the fresh key is refused too
		// the cause is elsewhere (wrong server, revoked app key), so only
		// back off, and re-issue again no sooner than renewEvery.
		if reason == reasonApprovalRefused && (renewed.IsZero() || wallNow().Sub(renewed) >= renewEvery) {
			stale, renewed = key, wallNow()
		}
		c.reconnects.Add(1)
		k.reconnects.Add(1)
		c.o.observer.Reconnect(k.id, reason)
		wait := c.o.backoff.Delay(attempt)
		attempt++
		c.o.log.Info("kis stream: reconnecting", "key", k.id, "reason", reason, "wait", wait)
		if sleep(ctx, wait) != nil {
			return
		}
	}
}

// waitForRegs waits until k has a registration; false when ctx is done.
func (l *keyLoop) waitForRegs(ctx context.Context) bool {
	for {
		l.c.mu.Lock()
		n := len(l.k.regs)
		l.c.mu.Unlock()
		if n > 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-l.k.wake:
		}
	}
}

// session is one live WebSocket session of a key.
type session struct {
	*keyLoop
	conn     *websocket.Conn
	approval string
	p        *parser
	alive    atomic.Int64 // wall-clock UnixNano of the last data or PINGPONG
	healthy  atomic.Bool  // the server acknowledged a registration

	endOnce sync.Once
	reason  string // first reason the session ended; set through end
	cancel  context.CancelFunc
}

// end records why the session ends (the first caller wins) and closes it.
func (s *session) end(reason string) {
	s.endOnce.Do(func() { s.reason = reason })
	s.cancel()
	s.conn.CloseNow()
}

// session dials, serves until the connection ends, and returns why and
// whether it was healthy (a registration was acknowledged).
func (l *keyLoop) session(ctx context.Context, approval string) (string, bool) {
	c, k := l.c, l.k
	dctx, dcancel := context.WithTimeout(ctx, c.o.dial)
	conn, _, err := websocket.Dial(dctx, c.cfg.WSURL, &websocket.DialOptions{HTTPClient: c.o.httpClient})
	dcancel()
	if err != nil {
		if ctx.Err() == nil {
			c.o.log.Warn("kis stream: dial failed", "key", k.id, "err", err)
		}
		return reasonDial, false
	}
	conn.SetReadLimit(maxFrame)
	sctx, cancel := context.WithCancel(ctx)
	s := &session{keyLoop: l, conn: conn, approval: approval, p: newParser(c.wide), cancel: cancel}
	s.touch()
	c.mu.Lock()
	k.resetOpsLocked()
	c.mu.Unlock()
	k.up.Store(true)
	c.o.observer.SessionUp(k.id)
	c.o.log.Info("kis stream: session up", "key", k.id)

	var wg sync.WaitGroup
	wg.Go(func() { s.writer(sctx) })
	wg.Go(func() { s.watchdog(sctx) })
	s.end(s.read(sctx))
	wg.Wait()
	dropAt := c.o.now()

	k.up.Store(false)
	c.o.observer.SessionDown(k.id, s.reason)
	c.o.log.Info("kis stream: session down", "key", k.id, "reason", s.reason)
	l.markGaps(dropAt, s.reason)
	return s.reason, s.healthy.Load()
}

// markGaps notes a pending gap for every code the ended session was
// streaming (an acknowledged registration); an earlier pending gap of the
// code is kept, so its From stays the first drop's. Codes no longer
// registered on the key lose their pending gap.
func (l *keyLoop) markGaps(dropAt time.Time, reason string) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	held := make(map[string]bool, len(l.k.regs))
	for r := range l.k.regs {
		held[r.code] = true
	}
	for code := range l.pending {
		if !held[code] {
			delete(l.pending, code)
		}
	}
	for r, st := range l.k.regs {
		if !st.acked {
			continue
		}
		if _, ok := l.pending[r.code]; ok {
			continue
		}
		from, ok := l.last[r.code]
		if !ok {
			from = dropAt
		}
		l.pending[r.code] = &kisfeed.Gap{Code: r.code, From: from, Reason: reason}
	}
}

// watchdog ends the session when neither data nor PINGPONG arrived for
// the watchdog time.
func (s *session) watchdog(ctx context.Context) {
	d := s.c.o.watchdog
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			idle := wallNow().Sub(time.Unix(0, s.alive.Load()))
			if idle >= d {
				s.c.o.log.Warn("kis stream: session silent; reconnecting", "key", s.k.id, "silent", idle.Round(time.Millisecond))
				s.end(reasonWatchdog)
				return
			}
			t.Reset(d - idle)
		}
	}
}

// writer sends the key's queued subscribe/unsubscribe messages, paced.
func (s *session) writer(ctx context.Context) {
	lim := rate.NewLimiter(rate.Limit(s.c.o.rate), s.c.o.burst)
	for {
		o, ok := s.nextOp()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.k.wake:
				continue
			}
		}
		if lim.Wait(ctx) != nil {
			return
		}
		if err := s.write(ctx, subscribeMessage(s.approval, o)); err != nil {
			if ctx.Err() == nil {
				s.c.o.log.Warn("kis stream: write failed", "key", s.k.id, "err", err)
				s.end(reasonWrite)
			}
			return
		}
	}
}

// nextOp pops the next message to send; a subscribe for a registration
// removed meanwhile is skipped.
func (s *session) nextOp() (op, bool) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for len(s.k.ops) > 0 {
		o := s.k.ops[0]
		s.k.ops = s.k.ops[1:]
		if _, ok := s.k.regs[o.reg]; o.subscribe && !ok {
			continue
		}
		return o, true
	}
	return op{}, false
}

func (s *session) write(ctx context.Context, msg []byte) error {
	wctx, cancel := context.WithTimeout(ctx, s.c.o.write)
	defer cancel()
	return s.conn.Write(wctx, websocket.MessageText, msg)
}

// read is the reader loop: data frames to events, JSON to control
// handling. Reading also answers protocol pings. It returns why it ended.
func (s *session) read(ctx context.Context) string {
	buf := make([]byte, 0, 16<<10)
	// Reads take a context without Done: coder/websocket arms a timer per
	// read for a cancellable one (two allocations per message). The
	// session's end closes the connection instead, which ends the read.
	stop := context.AfterFunc(ctx, func() { s.conn.CloseNow() })
	defer stop()
	rctx := context.WithoutCancel(ctx)
	for {
		_, r, err := s.conn.Reader(rctx)
		if err != nil {
			return readReason(ctx, err)
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return readReason(ctx, err)
			}
		}
		if len(buf) > 0 && (buf[0] == '0' || buf[0] == '1') {
			s.data(buf)
			continue
		}
		if reason := s.control(ctx, buf); reason != "" {
			return reason
		}
	}
}

func readReason(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return reasonShutdown
	}
	if websocket.CloseStatus(err) != -1 {
		return reasonClosed
	}
	return reasonDropped
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// wallNow is the watchdog's clock: real time whatever the market clock.
func wallNow() time.Time { return time.Now() }
