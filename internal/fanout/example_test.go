package fanout_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/fanout"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// The wiring in small: a Demand (internal/live in serve), a hub, the SSE
// handler, and the stream side publishing what it reads.
func Example() {
	demand := fanout.DemandFunc(func(ctx context.Context, code kisfeed.Code, kinds ...stream.Kind) (func(), error) {
		fmt.Println("register", code, kinds)
		return func() { fmt.Println("unregister", code, kinds) }, nil
	})
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, kisfeed.KST)
	clock := kisfeed.NewClock(func() time.Time { return at }, nil)
	hub, err := fanout.NewHub(fanout.Config{Demand: demand, Epoch: "1", Clock: clock})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(fanout.NewSSEHandler(hub, fanout.HandlerOptions{}))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/v1/stream?codes=005930&kinds=trade")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	// In serve, the KIS stream's handler does this for every event.
	hub.Publish(fanout.FromStream(stream.Event{Kind: stream.EventTrade,
		Trade: kisfeed.Trade{Code: "005930", Time: at, Price: 71000, Volume: 3}}))
	sc := bufio.NewScanner(resp.Body)
	for range 2 {
		sc.Scan()
		fmt.Println(sc.Text())
	}
	hub.Close() // serve does this on shutdown: streams end, demand goes back
	// Output:
	// register 005930 [trade]
	// id: 1-1
	// event: trade
	// unregister 005930 [trade]
}
