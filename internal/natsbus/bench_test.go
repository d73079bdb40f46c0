package natsbus

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/kisfeed/kisfeed"
)

// benchBus connects a publisher and a subscriber on a prefix of their own,
// or skips without KISFEED_TEST_NATS_URL.
func benchBus(b *testing.B) (pub, sub *Bus) {
	b.Helper()
	url := os.Getenv("KISFEED_TEST_NATS_URL")
	if url == "" {
		b.Skip("KISFEED_TEST_NATS_URL not set: skipping real-NATS benchmark")
	}
	prefix := fmt.Sprintf("bench%d.kisfeed.v1.", os.Getpid())
	var err error
	if pub, err = Connect(b.Context(), url, WithPrefix(prefix)); err != nil {
		b.Fatal(err)
	}
	if sub, err = Connect(b.Context(), url, WithPrefix(prefix)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close(); _ = sub.Close() })
	return pub, sub
}

func benchCodes(n int) []kisfeed.Code {
	cs := make([]kisfeed.Code, n)
	for i := range cs {
		cs[i] = mustCode(fmt.Sprintf("%06d", 100000+i*10))
	}
	return cs
}

// BenchmarkDelivery is the subscription strategy's measure: 40 codes
// published in turn, a replica wanting 5 of them, either with one
// subscription per code (the server filters) or one wildcard with a local
// filter. ns/op is per published event, until the wanted ones arrived.
func BenchmarkDelivery(b *testing.B) {
	codes := benchCodes(40)
	wanted := codes[:5]
	payload := make([]byte, 300) // about a trade event's JSON
	for _, mode := range []string{"per-code", "wildcard+filter"} {
		b.Run(mode, func(b *testing.B) {
			pub, sub := benchBus(b)
			var got atomic.Int64
			var target atomic.Int64
			done := make(chan struct{}, 1)
			count := func() {
				if got.Add(1) == target.Load() {
					done <- struct{}{}
				}
			}
			var unsub func()
			var err error
			if mode == "per-code" {
				unsub, err = sub.Subscribe(wanted, []string{KindTrade}, func(string, kisfeed.Code, []byte) { count() })
			} else {
				want := map[kisfeed.Code]bool{}
				for _, c := range wanted {
					want[c] = true
				}
				unsub, err = sub.Subscribe(nil, []string{KindTrade}, func(_ string, c kisfeed.Code, _ []byte) {
					if want[c] {
						count()
					}
				})
			}
			if err != nil {
				b.Fatal(err)
			}
			defer unsub()
			if err := sub.Flush(b.Context()); err != nil {
				b.Fatal(err)
			}
			n := b.N - b.N%len(codes) + len(codes) // whole rounds
			target.Store(int64(n / len(codes) * len(wanted)))
			b.ResetTimer()
			for i := range n {
				if err := pub.Publish(b.Context(), KindTrade, codes[i%len(codes)], payload); err != nil {
					b.Fatal(err)
				}
			}
			<-done
		})
	}
}

// BenchmarkSubscribe measures subscribing to 100 codes × trade and book
// (a consumer's maximum, were the hub to subscribe per consumer) and
// unsubscribing again.
func BenchmarkSubscribe(b *testing.B) {
	_, sub := benchBus(b)
	codes := benchCodes(100)
	for b.Loop() {
		unsub, err := sub.Subscribe(codes, []string{KindTrade, KindBook}, func(string, kisfeed.Code, []byte) {})
		if err != nil {
			b.Fatal(err)
		}
		unsub()
	}
}
