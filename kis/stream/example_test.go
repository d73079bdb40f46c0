package stream_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/kisfeed/kisfeed/kis"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// A client over two app keys (82 registrations), approval keys shared
// through a file, printing trades and gaps until Ctrl-C.
func Example() {
	store, err := kis.NewFileApprovalKeyStore(os.ExpandEnv("$HOME/.cache/kisfeed/kis-approval-keys.json"))
	if err != nil {
		log.Fatal(err)
	}
	c, err := stream.New(stream.Config{
		Keys: []stream.Credentials{
			{AppKey: os.Getenv("KIS_APP_KEY_1"), AppSecret: os.Getenv("KIS_APP_SECRET_1")},
			{AppKey: os.Getenv("KIS_APP_KEY_2"), AppSecret: os.Getenv("KIS_APP_SECRET_2")},
		},
		ApprovalStore: store,
		Handler: func(e stream.Event) { // the reader goroutine: do not block
			switch e.Kind {
			case stream.EventTrade:
				fmt.Println(e.Trade.Code, e.Trade.Time.Format("15:04:05"), e.Trade.Price, e.Trade.CumVolume)
			case stream.EventGap:
				fmt.Println("gap", e.Gap.Code, e.Gap.From, e.Gap.To)
			}
		},
		Resync: func(ctx context.Context, code string) { /* re-read quote and book over REST */ },
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for _, code := range []string{"005930", "000660"} {
		if err := c.Subscribe(ctx, code, stream.KindTrade, stream.KindBook); err != nil {
			log.Fatal(err)
		}
	}
	_ = c.Run(ctx) // returns ctx's error after closing every session
}
