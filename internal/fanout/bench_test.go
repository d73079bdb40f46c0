package fanout

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

// BenchmarkPublish: one event to 1,000 consumers of its code (ns/op is
// per event, all consumers included; the writers' Take is outside the
// timer). "stuck" adds a consumer that never reads: once its queue
// overflows it is disconnected and costs nothing, so Publish's time must
// match the plain case.
func BenchmarkPublish(b *testing.B) {
	for _, tt := range []struct {
		name      string
		consumers int
		stuck     bool
	}{
		{"consumers=1000", 1000, false},
		{"consumers=1000+stuck", 1000, true},
		{"consumers=1", 1, false},
	} {
		b.Run(tt.name, func(b *testing.B) {
			h, _ := testHub(b, Config{QueueSize: 1024, Clock: kisfeed.NewClock(nil, nil)})
			cs := make([]*Consumer, tt.consumers)
			for i := range cs {
				cs[i] = subscribe(b, h, Request{Codes: codes("005930")})
			}
			if tt.stuck {
				subscribe(b, h, Request{Codes: codes("005930")})
			}
			ev := trade("005930", 71000, t0)
			var buf []*Message
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.Publish(ev)
				if i%512 == 511 {
					b.StopTimer()
					for _, c := range cs {
						buf, _ = c.Take(buf[:0])
					}
					b.StartTimer()
				}
			}
			b.StopTimer()
			if tt.stuck && b.N > 1024 && h.Stats().Slow != 1 {
				b.Fatalf("stuck consumer not disconnected: %+v", h.Stats())
			}
		})
	}
}

// BenchmarkSSE: events from Publish to N in-process HTTP clients
// reading the SSE stream over loopback TCP; ns/op is per event
// delivered to all N.
func BenchmarkSSE(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			h, _ := testHub(b, Config{QueueSize: 1 << 20, MaxLag: time.Hour, Clock: kisfeed.NewClock(nil, nil)})
			subscribed := make(chan struct{}, n)
			h.onSubscribe = func() { subscribed <- struct{}{} }
			srv := httptest.NewServer(NewSSEHandler(h, HandlerOptions{Ping: time.Hour}))
			b.Cleanup(srv.Close)
			tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}
			client := &http.Client{Transport: tr}
			ctx, cancel := context.WithCancel(context.Background())
			b.Cleanup(cancel)
			done := make(chan int, n)
			for range n {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/stream?codes=005930&kinds=trade", nil)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					defer resp.Body.Close()
					sc := bufio.NewScanner(resp.Body)
					got := 0
					for sc.Scan() {
						if bytes.HasPrefix(sc.Bytes(), []byte("event: trade")) {
							got++
							if got == b.N {
								break
							}
						}
					}
					done <- got
				}()
			}
			for range n {
				<-subscribed
			}
			b.ResetTimer()
			for i := range b.N {
				h.Publish(trade("005930", int64(i), t0))
			}
			for range n {
				if got := <-done; got != b.N {
					b.Fatalf("a client got %d events, want %d", got, b.N)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
