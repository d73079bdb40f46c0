package loadtest

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestSSEReader: the format's rules that matter to a consumer.
func TestSSEReader(t *testing.T) {
	t.Parallel()
	type ev struct {
		id, event, data string
		own, comment    bool
	}
	for _, tc := range []struct {
		name, in string
		want     []ev
	}{
		{"basic", "id: 1-1\nevent: trade\ndata: {}\n\n", []ev{{"1-1", "trade", "{}", true, false}}},
		{"crlf and no space", "id:1-2\r\nevent:book\r\ndata:x\r\n\r\n", []ev{{"1-2", "book", "x", true, false}}},
		{"multi-line data", "data: a\ndata: b\n\n", []ev{{"", "message", "a\nb", false, false}}},
		{"comment", ": ping\n\n", []ev{{"", "", "ping", false, true}}},
		{"id inherited", "id: 1-1\ndata: a\n\ndata: b\n\n", []ev{{"1-1", "message", "a", true, false}, {"1-1", "message", "b", false, false}}},
		{"no data, not dispatched", "event: trade\n\ndata: z\n\n", []ev{{"", "message", "z", false, false}}},
		{"unfinished event dropped", "data: a\n\ndata: cut", []ev{{"", "message", "a", false, false}}},
		{"unknown field ignored", "retry: 10\nfoo\ndata: a\n\n", []ev{{"", "message", "a", false, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// One byte at a time: lines split across reads still parse.
			r := newSSEReader(iotest.OneByteReader(strings.NewReader(tc.in)))
			var got []ev
			for {
				e, err := r.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ev{e.id, e.event, string(e.data), e.ownID, e.comment})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestIDTracker: repeats, order and epochs, within and past the window.
func TestIDTracker(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ids  []string
		want []idVerdict
	}{
		{"in order", []string{"a-1", "a-2", "a-10"}, []idVerdict{idInOrder, idInOrder, idInOrder}},
		{"repeat", []string{"a-1", "a-2", "a-2", "a-1"}, []idVerdict{idInOrder, idInOrder, idDuplicate, idDuplicate}},
		{"out of order", []string{"a-1", "a-3", "a-2", "a-2"}, []idVerdict{idInOrder, idInOrder, idOutOfOrder, idDuplicate}},
		{"epochs", []string{"a-5", "b-1", "a-6", "b-1", "b-2"}, []idVerdict{idInOrder, idNewEpoch, idOutOfOrder, idDuplicate, idInOrder}},
		{"dash in epoch", []string{"r-1-7", "r-1-7"}, []idVerdict{idInOrder, idDuplicate}},
		{"malformed", []string{"7", "a-x", "-3"}, []idVerdict{idBad, idBad, idBad}},
		{"past the window", []string{"a-1", "a-" + strconv.Itoa(idWindow+1), "a-1", "a-2"}, []idVerdict{idInOrder, idInOrder, idLate, idOutOfOrder}},
		{"window slides", []string{"a-100", "a-" + strconv.Itoa(100+idWindow-1), "a-100", "a-" + strconv.Itoa(100+idWindow), "a-100"},
			[]idVerdict{idInOrder, idInOrder, idDuplicate, idInOrder, idLate}},
		{"bits cleared as the window slides", []string{"a-1", "a-" + strconv.Itoa(1+idWindow/2), "a-" + strconv.Itoa(1+idWindow+5), "a-" + strconv.Itoa(1+idWindow)},
			[]idVerdict{idInOrder, idInOrder, idInOrder, idOutOfOrder}},
	} {
		var tr idTracker
		var got []idVerdict
		for _, id := range tc.ids {
			got = append(got, tr.see(id))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestHistogram: percentiles within 3% of the exact ones over five
// decades, whatever the count.
func TestHistogram(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHistogram()
	vals := make([]time.Duration, 100_000)
	for i := range vals {
		// log-uniform from 10 µs to 1 s
		vals[i] = time.Duration(10e3 * math.Pow(10, 5*rng.Float64()))
		h.record(vals[i])
	}
	h.record(-time.Millisecond)
	vals = append(vals, 0)
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := percentile(vals, q)
		got := h.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.03 || diff < -0.03 {
			t.Errorf("q%.3f: got %s, want %s within 3%%", q, got, exact)
		}
	}
	s := h.summary()
	if s.Count != 100_001 || s.Negative != 1 || s.Max != vals[len(vals)-1] {
		t.Errorf("summary %+v: want 100001 values, 1 negative, max %s", s, vals[len(vals)-1])
	}
	for _, v := range []uint64{0, 63, 64, 65, 1000, 1 << 20, histCap, histCap + 1, 1 << 62} {
		if b := bucketOf(v); b < 0 || b >= histBuckets {
			t.Errorf("bucketOf(%d) = %d: out of [0, %d)", v, b, histBuckets)
		}
	}
}

// TestConsumerMemoryBounded: what a consumer keeps does not grow with the
// events it counts (no per-event sample, no id set): 300,000 events, as
// one consumer on 5 codes may get in minutes, leave the heap within
// 1 MB of where it was.
func TestConsumerMemoryBounded(t *testing.T) {
	// Not parallel: it reads the heap, which parallel tests would move.
	r := &streamRun{cfg: StreamConfig{Now: func() time.Time { return fakeNow }}}
	r.hists.delivery, r.hists.endToEnd = newHistogram(), newHistogram()
	c := &consumer{run: r}
	ev := trade("005930", "e9-1")
	handleN := func(from, n int) {
		for i := from; i < from+n; i++ {
			c.handle("trade", "e9-"+strconv.Itoa(i), []byte(ev.data), fakeNow)
		}
	}
	handleN(0, 1000) // warm up: the consumer's fixed parts are allocated
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	handleN(1000, 300_000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 1<<20 {
		t.Errorf("heap grew by %d bytes over 300,000 events: want < 1 MB", grown)
	}
	if c.events[kindTrade] != 301_000 || r.hists.delivery.n.Load() != 301_000 || c.idCounts[idInOrder] != 301_000 {
		t.Errorf("counted %d trades, %d latencies, %d in-order ids: want 301000 each", c.events[kindTrade], r.hists.delivery.n.Load(), c.idCounts[idInOrder])
	}
}
