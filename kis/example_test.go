package kis_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/kis"
)

// startEmulator serves the synthetic market frozen at 2026-11-27 15:40 KST,
// after the close, so the examples print the same figures every time.
func startEmulator() *httptest.Server {
	at := time.Date(2026, 11, 27, 15, 40, 0, 0, kisfeed.KST)
	srv, err := emulator.New(emulator.WithSeed(1), emulator.WithRate(0),
		emulator.WithMarketClock(func() time.Time { return at }))
	if err != nil {
		log.Fatal(err)
	}
	return httptest.NewServer(srv)
}

func newClient(baseURL string) *kis.Client {
	c, err := kis.NewClient(
		kis.WithBaseURL(baseURL),
		kis.WithServer(kis.Real),
		kis.WithAppKey("demo-key", "demo-secret"),
		kis.WithRateLimit(18),
		kis.WithTokenStore(kis.NewMemoryTokenStore()),
	)
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// The client obtains a token on first use, paces requests to the rate limit
// and returns domain types.
func ExampleClient_Price() {
	emu := startEmulator()
	defer emu.Close()
	c := newClient(emu.URL)

	q, _, err := c.Price(context.Background(), "005930")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %d won (%+d, %+.2f%%), limits %d–%d\n", q.Code, q.Price, q.Change, q.ChangeRate, q.LowerLimit, q.UpperLimit)
	// Output:
	// 005930 71700 won (+500, +0.70%), limits 49850–92500
}

// Prices batches codes 30 to a call (intstock-multprice) and keeps their
// order; a code that fails on its own is reported in a *kisfeed.BatchError.
func ExampleClient_Prices() {
	emu := startEmulator()
	defer emu.Close()
	c := newClient(emu.URL)

	qs, err := c.Prices(context.Background(), []string{"005930", "000660", "999999"})
	for _, q := range qs {
		if q != nil {
			fmt.Println(q.Code, q.Price)
		}
	}
	if be, ok := err.(*kisfeed.BatchError); ok {
		for code, e := range be.Errs {
			fmt.Println(code, "failed:", errorsIsNotFound(e))
		}
	}
	// Output:
	// 005930 71700
	// 000660 205500
	// 999999 failed: not found
}

func errorsIsNotFound(err error) string {
	if kisfeed.IsBusinessError(err) {
		return "not found"
	}
	return err.Error()
}

// DailyCandles pages back past KIS's 100-row cap by itself.
func ExampleClient_DailyCandles() {
	emu := startEmulator()
	defer emu.Close()
	c := newClient(emu.URL)

	bars, err := c.DailyCandles(context.Background(), "005930", kis.PeriodDay,
		kisfeed.Date(2025, 1, 1), kisfeed.Date(2026, 11, 27), true)
	if err != nil {
		log.Fatal(err)
	}
	first, last := bars[0], bars[len(bars)-1]
	fmt.Println(len(bars), "bars from", first.Time.Format("2006-01-02"), "to", last.Time.Format("2006-01-02"))
	// Output:
	// 465 bars from 2025-01-02 to 2026-11-27
}
