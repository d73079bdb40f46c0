package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// codeState is what the terminal table shows of one code.
type codeState struct {
	trade    kisfeed.Trade
	lag      time.Duration
	book     kisfeed.Book
	hasTrade bool
	hasBook  bool
}

// table keeps the latest state per code and redraws it in place every
// redrawEvery while it changed, until the queue is closed.
func (w *watcher) table(ctx context.Context) {
	state := make(map[string]*codeState, len(w.codes))
	for _, c := range w.codes {
		state[c.String()] = &codeState{}
	}
	var lastGap string
	tick := time.NewTicker(redrawEvery)
	defer tick.Stop()
	dirty := true
	done := ctx.Done()
	var buf bytes.Buffer
	fmt.Fprint(w.a.stdout, "\x1b[H\x1b[2J") // clear once; later frames overwrite in place
	draw := func() {
		buf.Reset()
		w.render(&buf, state, lastGap)
		_, _ = w.a.stdout.Write(buf.Bytes())
		dirty = false
	}
	for {
		select {
		case e, ok := <-w.events:
			if !ok {
				draw()
				return
			}
			w.count(e)
			switch e.Kind {
			case stream.EventTrade:
				if s := state[e.Trade.Code]; s != nil {
					s.trade, s.hasTrade, s.lag = e.Trade, true, e.Received.Sub(e.Trade.Time)
				}
			case stream.EventBook:
				if s := state[e.Book.Code]; s != nil {
					s.book, s.hasBook = e.Book, true
				}
			case stream.EventGap:
				lastGap = eventLine(e)
			}
			dirty = true
		case <-tick.C:
			if dirty {
				draw()
			}
		case <-done:
			// Keep draining until the client closes the queue; a nil
			// channel so a closed ctx does not spin this loop.
			done = nil
		}
	}
}

// render writes one frame of the table: the cursor goes home, each line
// clears its rest, and the screen below the table is cleared.
func (w *watcher) render(b *bytes.Buffer, state map[string]*codeState, lastGap string) {
	line := func(format string, a ...any) {
		fmt.Fprintf(b, format, a...)
		b.WriteString("\x1b[K\n")
	}
	b.WriteString("\x1b[H")
	line("%-6s  %-8s  %10s  %9s  %7s  %9s  %13s  %10s  %10s  %6s",
		"CODE", "TIME", "PRICE", "CHANGE", "RATE%", "VOLUME", "CUM VOLUME", "BID", "ASK", "LAG")
	for _, c := range w.codes {
		s := state[c.String()]
		if !s.hasTrade {
			line("%-6s  %-8s  %10s", c, "--:--:--", "waiting")
		} else {
			t := s.trade
			line("%-6s  %-8s  %10s  %9s  %7s  %9s  %13s  %10s  %10s  %6s",
				t.Code, hms(t.Time), commas(t.Price), signed(t.Change), signedRate(t.ChangeRate),
				commas(t.Volume), commas(t.CumVolume), commas(t.Bid), commas(t.Ask), lagText(s.lag))
		}
		if w.o.book {
			w.ladder(line, s)
		}
	}
	st := w.client.Stats()
	line("")
	line("%d trades, %d books, %d gaps, %d reconnects — Ctrl-C to stop", w.trades.Load(), w.books.Load(), w.gaps.Load(), st.Reconnects)
	if lastGap != "" {
		line("last gap: %s", lastGap)
	}
	b.WriteString("\x1b[J")
}

// ladder writes a code's 10-level book, asks above bids, best in the
// middle.
func (w *watcher) ladder(line func(string, ...any), s *codeState) {
	if !s.hasBook {
		line("        (no book yet)")
		return
	}
	bk := s.book
	for i := len(bk.Asks) - 1; i >= 0; i-- {
		line("        %12s  %10s  ask", commas(bk.Asks[i].Quantity), commas(bk.Asks[i].Price))
	}
	for i := range bk.Bids {
		line("        %12s  %10s  bid", commas(bk.Bids[i].Quantity), commas(bk.Bids[i].Price))
	}
	line("        total ask %s  bid %s  at %s", commas(bk.TotalAskQty), commas(bk.TotalBidQty), hms(bk.Time))
}

func lagText(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
