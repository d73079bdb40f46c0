package natsbus

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/kisfeed/kisfeed"
)

// TestOrderedDelivery: with WithOrderedDelivery, events of many codes and
// kinds reach the handler in the order they were published (each its own
// subscription), as a replica forwarding ids that increase across codes
// needs.
func TestOrderedDelivery(t *testing.T) {
	url, prefix := testNATS(t)
	pub := connect(t, url, prefix)
	sub := connect(t, url, prefix, WithOrderedDelivery(4096))
	codes := []string{"005930", "000660", "035720", "051910", "006400", "003550", "005380", "000270"}
	var cs = make([]kisfeed.Code, len(codes))
	for i, c := range codes {
		cs[i] = code(t, c)
	}
	const n = 2000
	got := make(chan string, n)
	unsub, err := sub.Subscribe(cs, []string{KindTrade, KindBook}, func(kind string, c kisfeed.Code, payload []byte) {
		got <- string(payload)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := sub.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		kind := KindTrade
		if i%3 == 0 {
			kind = KindBook
		}
		if err := pub.Publish(context.Background(), kind, cs[i%len(cs)], []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if p := recv(t, got, fmt.Sprintf("event %d", i)); p != strconv.Itoa(i) {
			t.Fatalf("event %d: got %s; want the publish order", i, p)
		}
	}
}
