package stream

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kisfeed/kisfeed"
)

// BenchmarkParseTrade frames and decodes the fixture's two-record
// H0STCNT0 frame; records/s and allocs per record are reported.
func BenchmarkParseTrade(b *testing.B) {
	fx := loadFixtures(b)
	for _, tc := range []struct {
		name  string
		frame string
	}{
		{"2records", fx.Trade2},
		{"8records", multiFrame(fx.Trade1, 8)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			msg := []byte(tc.frame)
			p := newParser(&wideLog{})
			var t kisfeed.Trade
			records := 0
			b.ReportAllocs()
			for b.Loop() {
				f, err := p.split(msg)
				if err != nil {
					b.Fatal(err)
				}
				for i := range f.count {
					if err := p.decodeTrade(f.lay.tr, f.record(i), &t); err != nil {
						b.Fatal(err)
					}
				}
				records += f.count
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(testing.AllocsPerRun(100, func() {
				f, _ := p.split(msg)
				for i := range f.count {
					_ = p.decodeTrade(f.lay.tr, f.record(i), &t)
				}
			}))/float64(recordsIn(tc.frame)), "allocs/record")
		})
	}
}

// BenchmarkParseBook does the same for the 59-field book.
func BenchmarkParseBook(b *testing.B) {
	fx := loadFixtures(b)
	msg := []byte(fx.Book)
	p := newParser(&wideLog{})
	day := kisfeed.Date(2024, 10, 25)
	var bk kisfeed.Book
	b.ReportAllocs()
	for b.Loop() {
		f, err := p.split(msg)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.decodeBook(f.lay.tr, f.record(0), day, &bk); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func recordsIn(frame string) int {
	var n int
	fmt.Sscanf(strings.SplitN(frame, "|", 4)[2], "%d", &n)
	return n
}

// multiFrame repeats the single record of a one-record frame n times.
func multiFrame(one string, n int) string {
	parts := strings.SplitN(one, "|", 4)
	recs := make([]string, n)
	for i := range recs {
		recs[i] = parts[3]
	}
	return fmt.Sprintf("%s|%s|%03d|%s", parts[0], parts[1], n, strings.Join(recs, "^"))
}

// benchClient starts a client on a fake server, subscribed to one code's
// trades, and returns the server side of its session.
func benchClient(b *testing.B, h Handler) *fakeConn {
	f := newFakeKIS(&testing.T{})
	b.Cleanup(f.srv.Close)
	cfg := Config{Handler: h, RESTBaseURL: f.srv.URL, WSURL: f.wsURL(),
		Keys: []Credentials{{AppKey: "bench", AppSecret: "s"}}}
	c, err := New(cfg, fastOpts()...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	if err := c.Subscribe(ctx, "005930", KindTrade); err != nil {
		b.Fatal(err)
	}
	conn := recv(b, f.conns, "a session")
	recv(b, conn.msgs, "a subscribe")
	return conn
}

// BenchmarkEndToEnd: the fake server sends H0STCNT0 frames of 4 records
// as fast as the socket takes them; records/s from the first send to the
// last typed event.
func BenchmarkEndToEnd(b *testing.B) {
	fx := loadFixtures(b)
	const perFrame = 4
	var got, want atomic.Int64
	done := make(chan struct{}, 1)
	conn := benchClient(b, func(e Event) {
		if got.Add(1) == want.Load() {
			done <- struct{}{}
		}
	})
	frame := []byte(multiFrame(fx.Trade1, perFrame))
	frames := b.N/perFrame + 1
	want.Store(int64(frames * perFrame))
	b.ResetTimer()
	start := time.Now()
	for range frames {
		if err := conn.ws.Write(context.Background(), websocket.MessageText, frame); err != nil {
			b.Fatal(err)
		}
	}
	recv(b, done, "the last event")
	b.ReportMetric(float64(want.Load())/time.Since(start).Seconds(), "records/s")
}

// BenchmarkEndToEndLatency sends one single-record frame at a time and
// waits for its typed event: p50/p99 of send → event on loopback.
func BenchmarkEndToEndLatency(b *testing.B) {
	fx := loadFixtures(b)
	at := make(chan time.Time, 1)
	conn := benchClient(b, func(Event) { at <- time.Now() })
	msg := []byte(fx.Trade1)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		sent := time.Now()
		if err := conn.ws.Write(context.Background(), websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, recv(b, at, "the event").Sub(sent))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
