package ingest

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress is told how a run advances. Calls come from one goroutine.
type Progress interface {
	// Start announces the number of codes to fetch.
	Start(total int)
	// Update reports the tally after each fetched unit.
	Update(t Tally)
	// Finish reports the final tally.
	Finish(t Tally)
}

// BarProgress draws a progress bar (codes done/total, rate, ETA, rejects)
// for a terminal.
type BarProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

// NewBarProgress returns a progress bar writing to w (a terminal).
func NewBarProgress(w io.Writer) *BarProgress { return &BarProgress{w: w} }

// Start implements [Progress].
func (p *BarProgress) Start(total int) {
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription("ingest"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("stocks"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
	)
}

// Update implements [Progress].
func (p *BarProgress) Update(t Tally) {
	if p.bar == nil {
		return
	}
	p.bar.Describe(fmt.Sprintf("ingest (rejected %d, failed %d)", t.Rejected, t.Failed))
	_ = p.bar.Set(t.Done)
}

// Finish implements [Progress].
func (p *BarProgress) Finish(t Tally) {
	if p.bar == nil {
		return
	}
	p.Update(t)
	_ = p.bar.Finish()
	fmt.Fprintln(p.w) // end the bar's line before the summary and logs
}

// LogProgress logs structured progress lines when stderr is not a
// terminal: at every further tenth of the work, and at least every Every
// while work advances.
type LogProgress struct {
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	total    int
	start    time.Time
	last     time.Time
	lastTick int // tenths logged
}

// NewLogProgress returns a LogProgress on log; now is the clock (nil:
// time.Now) and every the longest silence (0: 5 s).
func NewLogProgress(log *slog.Logger, now func() time.Time, every time.Duration) *LogProgress {
	if now == nil {
		now = time.Now
	}
	if every <= 0 {
		every = 5 * time.Second
	}
	return &LogProgress{log: log, now: now, every: every}
}

// Start implements [Progress].
func (p *LogProgress) Start(total int) {
	p.total = total
	p.start = p.now()
	p.last = p.start
	p.lastTick = 0
}

// Update implements [Progress].
func (p *LogProgress) Update(t Tally) {
	now := p.now()
	tick := 0
	if p.total > 0 {
		tick = t.Done * 10 / p.total
	}
	if tick <= p.lastTick && now.Sub(p.last) < p.every {
		return
	}
	p.lastTick = max(tick, p.lastTick)
	p.last = now
	p.emit("ingest progress", t, now)
}

// Finish implements [Progress].
func (p *LogProgress) Finish(t Tally) {
	if t.Done == p.total && p.lastTick == 10 {
		return // the 100 % line is out already
	}
	p.emit("ingest progress", t, p.now())
}

func (p *LogProgress) emit(msg string, t Tally, now time.Time) {
	elapsed := now.Sub(p.start)
	attrs := []any{"done", t.Done, "total", p.total, "rejected", t.Rejected, "failed", t.Failed}
	if p.total > 0 {
		attrs = append(attrs, "percent", t.Done*100/p.total)
	}
	if elapsed > 0 && t.Done > 0 {
		rate := float64(t.Done) / elapsed.Seconds()
		attrs = append(attrs, "stocks_per_sec", fmt.Sprintf("%.1f", rate))
		if rem := p.total - t.Done; rem > 0 {
			attrs = append(attrs, "eta", (time.Duration(float64(rem) / rate * float64(time.Second))).Round(time.Second))
		}
	}
	p.log.Info(msg, attrs...)
}
