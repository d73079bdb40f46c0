package fanout

import (
	"encoding/json"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/jsonview"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// The JSON of an event is jsonview's stream view (the shape `kisfeed
// watch --json` prints), with "id" and "received_at" spliced in after its
// leading "type": {"type":"trade","id":"E-S","received_at":"…","code":…}.
// The view is encoded once per event, before the hub's lock; the id is
// added under it (withHead).

// receivedLayout is received_at's format: RFC 3339 with milliseconds, so
// delivery latency can be measured to the millisecond.
const receivedLayout = "2006-01-02T15:04:05.000Z07:00"

// encodeBody is ev's JSON view with "received_at" in front of its fields
// and without its "type", which withHead puts back with the id: the body
// starts with '{'. The type is returned too.
func encodeBody(ev *Event) (typ string, body []byte) {
	recv := ev.ReceivedAt.In(kisfeed.KST).Format(receivedLayout)
	var v any
	switch ev.Kind {
	case stream.EventTrade:
		typ, v = TypeTrade, jsonview.NewTrade(ev.Trade)
	case stream.EventBook:
		typ, v = TypeBook, jsonview.NewBook(ev.Book)
	default:
		typ, v = TypeGap, jsonview.NewGap(ev.Gap)
	}
	view, err := json.Marshal(v)
	// The view starts {"type":"<typ>", — cut it; what follows are the
	// value's fields.
	head := len(`{"type":"`) + len(typ) + len(`",`)
	if err != nil || len(view) <= head {
		// Only a NaN or Inf float can fail; KIS never sends one, and a
		// malformed value must not stop the fan-out: send the code alone.
		view, _ = json.Marshal(struct {
			Type string `json:"type"`
			Code string `json:"code"`
		}{typ, ev.code()})
	}
	b := make([]byte, 0, len(view)+len(recv)+16)
	b = append(b, `{"received_at":"`...)
	b = append(b, recv...)
	b = append(b, `",`...)
	return typ, append(b, view[head:]...)
}

// withHead puts "type" and "id" in front of body (an object from
// encodeBody): {"type":"trade","id":"E-S",...}.
func withHead(typ, id string, body []byte) []byte {
	b := make([]byte, 0, len(body)+len(typ)+len(id)+20)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","id":"`...)
	b = append(b, id...)
	b = append(b, '"')
	if len(body) > 2 {
		b = append(b, ',')
	}
	return append(b, body[1:]...)
}
