package live

import (
	"log/slog"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// BenchmarkDispatchWriteThrough is the KIS reader's cost per record with
// the write-through listening and its workers stopped: the hand-over into
// the code's slot (no allocation once the slot exists).
func BenchmarkDispatchWriteThrough(b *testing.B) {
	l := newTestLive(b, 1, 0, 0)
	w := newWriter(&fakeCache{}, "kis", slog.New(slog.DiscardHandler))
	l.ListenAll(w.offer)
	ev := stream.Event{Kind: stream.EventTrade, Trade: kisfeed.Trade{Code: "005930", Time: time.Date(2026, 3, 10, 10, 0, 0, 0, kisfeed.KST), Price: 70000}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev.Trade.CumVolume = int64(i)
		l.dispatch(ev)
	}
}
