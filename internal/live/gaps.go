package live

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
)

// gapQuiet is how long the gap log waits after the last gap or resync of
// a reconnect before it writes the reconnect's one line: the client
// restores a session's registrations paced (41 in about 4 s), each with
// its own gap event and resync, and a line per code would flood the log
// at every KIS restart.
const gapQuiet = 2 * time.Second

// gapLog gathers the gaps and resyncs of one reconnect per app key into
// one log line, written once the reconnect's gaps have been quiet for the
// quiet period and every resync of them has ended, so the line also says
// whether the cache is whole again.
type gapLog struct {
	log    *slog.Logger
	quiet  time.Duration
	resync bool // a resync follows every gap (a Cache is configured)

	mu      sync.Mutex // guards batches
	batches map[string]*gapBatch
}

// gapBatch is what one key's reconnect restored.
type gapBatch struct {
	reason   string
	from, to time.Time
	codes    []string
	failed   []string // codes whose resync failed
	pending  int      // resyncs not yet ended
	quiet    bool     // the quiet period has passed
	timer    *time.Timer
}

func newGapLog(log *slog.Logger, quiet time.Duration, resync bool) *gapLog {
	return &gapLog{log: log, quiet: quiet, resync: resync, batches: map[string]*gapBatch{}}
}

// gap notes one gap event of key's session.
func (g *gapLog) gap(key string, gp kisfeed.Gap) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.batch(key)
	if b.reason == "" {
		b.reason = gp.Reason
	}
	if b.from.IsZero() || gp.From.Before(b.from) {
		b.from = gp.From
	}
	if gp.To.After(b.to) {
		b.to = gp.To
	}
	b.codes = append(b.codes, gp.Code)
	if g.resync {
		b.pending++
	}
}

// resynced notes the end of one code's resync; err is nil when it
// succeeded. The client does not say which key a resync belongs to, so
// it joins the open batch that has the code's gap.
func (g *gapLog) resynced(code string, err error) {
	g.mu.Lock()
	var key string
	var b *gapBatch
	for k, x := range g.batches {
		if x.pending > 0 && slices.Contains(x.codes, code) {
			key, b = k, x
			break
		}
	}
	if b == nil {
		g.mu.Unlock()
		if err != nil {
			g.log.Warn("live: resync from REST failed", "code", code, "err", err)
		}
		return
	}
	if err != nil {
		if len(b.failed) == 0 {
			// The first failure's cause, once: the summary counts the rest.
			g.log.Warn("live: resync from REST failed", "code", code, "err", err)
		}
		b.failed = append(b.failed, code)
	}
	b.pending--
	done := b.pending == 0 && b.quiet
	if done {
		delete(g.batches, key)
	}
	g.mu.Unlock()
	if done {
		g.emit(key, b)
	}
}

// batch returns key's open batch, (re)arming its quiet timer; g.mu held.
func (g *gapLog) batch(key string) *gapBatch {
	b := g.batches[key]
	if b == nil {
		b = &gapBatch{}
		g.batches[key] = b
		b.timer = time.AfterFunc(g.quiet, func() { g.quietEnded(key, b) })
		return b
	}
	b.quiet = false
	b.timer.Reset(g.quiet)
	return b
}

// quietEnded is the batch's timer: the gaps have been quiet; the line is
// written now, or by the last resync still running.
func (g *gapLog) quietEnded(key string, b *gapBatch) {
	g.mu.Lock()
	if g.batches[key] != b {
		g.mu.Unlock()
		return
	}
	b.quiet = true
	if b.pending > 0 {
		g.mu.Unlock()
		return
	}
	delete(g.batches, key)
	g.mu.Unlock()
	g.emit(key, b)
}

func (g *gapLog) emit(key string, b *gapBatch) {
	slices.Sort(b.codes)
	if len(b.codes) > 0 {
		g.log.Warn("kis stream gap: data may be missing; quotes and books re-read from REST",
			"key", key, "reason", b.reason, "codes", len(b.codes), "list", joinCodes(b.codes, 20),
			"from", b.from.In(kisfeed.KST).Format(time.TimeOnly), "to", b.to.In(kisfeed.KST).Format(time.TimeOnly),
			"window", b.to.Sub(b.from).Round(time.Millisecond), "resync_failed", len(b.failed))
	} else if len(b.failed) > 0 {
		slices.Sort(b.failed)
		g.log.Warn("live: resync from REST failed", "codes", len(b.failed), "list", joinCodes(b.failed, 20))
	}
}

// flush logs every open batch now (on Close).
func (g *gapLog) flush() {
	g.mu.Lock()
	bs := g.batches
	g.batches = map[string]*gapBatch{}
	g.mu.Unlock()
	for k, b := range bs {
		b.timer.Stop()
		g.emit(k, b)
	}
}
