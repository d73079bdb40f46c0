package fanout

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/jsonview"
	"github.com/kisfeed/kisfeed/kis/stream"
)

// Kinds is a set of what a consumer streams for a code: trades, books or
// both. Gaps for a code go to every consumer of it, whatever its kinds.
type Kinds uint8

// The kinds a consumer can ask for.
const (
	Trades Kinds = 1 << iota
	Books

	// AllKinds is the default when a request names none.
	AllKinds = Trades | Books
)

// Has reports whether k holds every kind of o.
func (k Kinds) Has(o Kinds) bool { return k&o == o }

// String lists k's kinds as the query parameter spells them ("trade,book").
func (k Kinds) String() string { return strings.Join(k.names(), ",") }

func (k Kinds) names() []string {
	var out []string
	if k.Has(Trades) {
		out = append(out, "trade")
	}
	if k.Has(Books) {
		out = append(out, "book")
	}
	return out
}

// streamKinds converts k into the KIS client's registration kinds, one per
// KIS registration (trades and books are separate TRs, each one of the 41).
func (k Kinds) streamKinds() []stream.Kind {
	var out []stream.Kind
	if k.Has(Trades) {
		out = append(out, stream.KindTrade)
	}
	if k.Has(Books) {
		out = append(out, stream.KindBook)
	}
	return out
}

func kindOf(sk stream.Kind) Kinds {
	if sk == stream.KindBook {
		return Books
	}
	return Trades
}

// ParseKinds reads a comma-separated list of "trade" and "book"; an empty
// string is [AllKinds]. The error is a [*ParamError] for param "kinds".
func ParseKinds(s string) (Kinds, error) {
	if strings.TrimSpace(s) == "" {
		return AllKinds, nil
	}
	var k Kinds
	for f := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(f) {
		case "trade":
			k |= Trades
		case "book":
			k |= Books
		default:
			return 0, &ParamError{Param: "kinds", Detail: fmt.Sprintf("kind %q: want trade or book (comma-separated)", clip(f))}
		}
	}
	return k, nil
}

// Event is one value published to the [Hub]: a trade, a book or a gap
// (Kind names which field is set), as the KIS stream delivers it or as a
// replica forwards it from NATS.
type Event struct {
	Kind  stream.EventKind
	Trade kisfeed.Trade
	Book  kisfeed.Book
	Gap   kisfeed.Gap
	// ID is the event's id, "<epoch>-<seq>". Empty: the hub assigns the
	// next one of its own epoch. A replica forwarding an event published
	// elsewhere (NATS) keeps the publisher's id so that ids are the same
	// on every replica; an id that does not parse is replaced.
	ID string
	// ReceivedAt is when serve read the event from KIS, on the wall clock.
	// Zero: the hub stamps its wall clock's now (Publish is called as the
	// event is read). Forwarded events keep the publisher's.
	ReceivedAt time.Time
}

// FromStream is the Event of a KIS stream event, for the stream handler
// to Publish. The stream's Received time is left out on purpose: it is the
// market clock, while received_at is wall-clock (delivery latency is
// measured against the consumer's wall clock).
func FromStream(ev stream.Event) Event {
	return Event{Kind: ev.Kind, Trade: ev.Trade, Book: ev.Book, Gap: ev.Gap}
}

// code is the event's stock code.
func (e *Event) code() string {
	switch e.Kind {
	case stream.EventTrade:
		return e.Trade.Code
	case stream.EventBook:
		return e.Book.Code
	}
	return e.Gap.Code
}

// at is the event's own time on the market clock: what a resume gap's
// "from" reports for the last event a consumer saw.
func (e *Event) at() time.Time {
	switch e.Kind {
	case stream.EventTrade:
		return e.Trade.Time
	case stream.EventBook:
		return e.Book.Time
	}
	return e.Gap.To
}

// The event types of the wire contract: the SSE event names and the
// WebSocket envelope's "type".
const (
	TypeTrade        = "trade"
	TypeBook         = "book"
	TypeGap          = "gap"
	TypeError        = "error"
	TypeSubscribed   = "subscribed"   // WebSocket only: a subscribe took effect
	TypeUnsubscribed = "unsubscribed" // WebSocket only: an unsubscribe took effect
)

// The reasons an error event (or a disconnect) names; the error event's
// data is {"code": ..., "reason": ..., "detail": ...}.
const (
	// ReasonSubscriptionLimit: KIS has no registration left for the code
	// (every app key holds its 41); the detail names the cap and the use.
	ReasonSubscriptionLimit = "subscription_limit"
	// ReasonQuota: the consumer's API key streams all the codes its quota
	// allows.
	ReasonQuota = "quota"
	// ReasonRateLimited: too many subscribe/unsubscribe changes; the
	// change was not made.
	ReasonRateLimited = "rate_limited"
	// ReasonSlowConsumer: the consumer's queue overflowed or its oldest
	// event waited too long; the stream ends.
	ReasonSlowConsumer = "slow_consumer"
	// ReasonInvalid: a malformed or unknown WebSocket message.
	ReasonInvalid = "invalid"
	// ReasonTooManyCodes: a consumer asked for more than [MaxCodes].
	ReasonTooManyCodes = "too_many_codes"
	// ReasonUnknownCode: a well-formed code the market does not list
	// (Config.Listed).
	ReasonUnknownCode = "unknown_code"
	// ReasonUnavailable: the upstream stream could not register the code
	// for another reason (the detail is generic; the cause is logged).
	ReasonUnavailable = "unavailable"
	// ReasonShutdown: serve is shutting down; the stream ends.
	ReasonShutdown = "shutdown"
	// ReasonAbuse: too many malformed WebSocket messages; the socket closes.
	ReasonAbuse = "abuse"
)

// The reasons of the gap events a resume sends instead of a replay.
const (
	// GapEpoch: the Last-Event-ID is of another epoch (the publisher
	// restarted or another replica took the KIS session over).
	GapEpoch = "epoch_changed"
	// GapRing: events after the Last-Event-ID have left the code's ring.
	GapRing = "ring_overflow"
)

// ID is a parsed event id "<epoch>-<seq>".
type ID struct {
	Epoch string
	Seq   uint64
}

// String formats id as "<epoch>-<seq>".
func (id ID) String() string { return id.Epoch + "-" + strconv.FormatUint(id.Seq, 10) }

// ParseID reads "<epoch>-<seq>": the epoch is everything before the last
// '-' (1 to 64 characters of [0-9A-Za-z_.:]), seq a decimal uint64.
func ParseID(s string) (ID, error) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return ID{}, fmt.Errorf("%w: event id %q: want <epoch>-<seq>", kisfeed.ErrInvalid, clip(s))
	}
	if err := validEpoch(s[:i]); err != nil {
		return ID{}, fmt.Errorf("event id %q: %w", clip(s), err)
	}
	seq, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return ID{}, fmt.Errorf("%w: event id %q: seq: want a decimal number", kisfeed.ErrInvalid, clip(s))
	}
	return ID{Epoch: s[:i], Seq: seq}, nil
}

func validEpoch(e string) error {
	if e == "" || len(e) > 64 {
		return fmt.Errorf("%w: epoch: want 1 to 64 characters", kisfeed.ErrInvalid)
	}
	for _, r := range e {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '.' || r == ':') {
			return fmt.Errorf("%w: epoch %q: want letters, digits, '_', '.' or ':'", kisfeed.ErrInvalid, e)
		}
	}
	return nil
}

// Message is one thing a consumer's writer sends: an event shared by every
// consumer of its code (never modified once queued) or a consumer's own
// notice (error, subscribed, a resume gap). Writers frame it with
// [Message.SSE] or [Message.WS].
type Message struct {
	// Type is the event type (TypeTrade, ...).
	Type string
	// ID is the event id; empty for a consumer's own notices, which are
	// not in any ring and cannot be resumed from.
	ID string
	// Code is the stock code the message is about ("" when none).
	Code string
	// Data is the JSON object of the event.
	Data []byte
	// Published is when the hub took it (wall clock), for the
	// publish-to-write latency.
	Published time.Time

	id ID        // parsed ID (zero for notices)
	at time.Time // the event's market time (resume gaps' "from")
	// reason is set on error notices.
	reason string

	sseOnce, wsOnce sync.Once
	sse, ws         []byte
}

// SSE returns the message as one Server-Sent Events frame: "id:" (events
// only), "event:" and "data:" lines and the blank line ending it. Built
// once and shared by every consumer.
func (m *Message) SSE() []byte {
	m.sseOnce.Do(func() {
		b := make([]byte, 0, len(m.Data)+len(m.ID)+len(m.Type)+24)
		if m.ID != "" {
			b = append(b, "id: "...)
			b = append(b, m.ID...)
			b = append(b, '\n')
		}
		b = append(b, "event: "...)
		b = append(b, m.Type...)
		b = append(b, "\ndata: "...)
		// Data is compact JSON: it holds no newline, so one data line.
		b = append(b, m.Data...)
		b = append(b, "\n\n"...)
		m.sse = b
	})
	return m.sse
}

// WS returns the message as the WebSocket envelope
// {"type":...,"id":...,"data":{...}} ("id" left out for notices). Built
// once and shared by every consumer.
func (m *Message) WS() []byte {
	m.wsOnce.Do(func() {
		b := make([]byte, 0, len(m.Data)+len(m.ID)+len(m.Type)+32)
		b = append(b, `{"type":"`...)
		b = append(b, m.Type...)
		b = append(b, '"')
		if m.ID != "" {
			b = append(b, `,"id":"`...)
			b = append(b, m.ID...)
			b = append(b, '"')
		}
		b = append(b, `,"data":`...)
		b = append(b, m.Data...)
		b = append(b, '}')
		m.ws = b
	})
	return m.ws
}

// errorData is the data of an error event.
type errorData struct {
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// notice builds an error event for a consumer.
func errorNotice(code, reason, detail string, now time.Time) *Message {
	data, _ := json.Marshal(errorData{Code: code, Reason: reason, Detail: detail})
	return &Message{Type: TypeError, Code: code, Data: data, Published: now, reason: reason}
}

// ackNotice builds a WebSocket subscribed/unsubscribed notice.
func ackNotice(typ string, codes []string, kinds Kinds, now time.Time) *Message {
	v := struct {
		Codes []string `json:"codes"`
		Kinds []string `json:"kinds,omitempty"`
	}{Codes: codes, Kinds: kinds.names()}
	if v.Codes == nil {
		v.Codes = []string{}
	}
	data, _ := json.Marshal(v)
	return &Message{Type: typ, Data: data, Published: now}
}

// gapNotice builds the gap event a resume sends for code.
func gapNotice(code string, from, to time.Time, reason string, now time.Time) *Message {
	data, _ := json.Marshal(jsonview.NewGap(kisfeed.Gap{Code: code, From: from, To: to, Reason: reason}))
	return &Message{Type: TypeGap, Code: code, Data: data, Published: now}
}

// ParamError is a malformed request parameter of the stream routes. It
// matches kisfeed.ErrInvalid; Param names the parameter at fault.
type ParamError struct {
	Param  string
	Detail string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Detail }

// Is matches kisfeed.ErrInvalid.
func (e *ParamError) Is(target error) bool { return target == kisfeed.ErrInvalid }

var _ interface{ Is(error) bool } = (*ParamError)(nil)

// clip bounds a caller's string echoed in an error.
func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// errHubClosed is returned by Subscribe after Close.
var errHubClosed = errors.New("fanout: hub closed")
