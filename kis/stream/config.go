package stream

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/kis"
)

// WebSocket base URLs (REFERENCE §a, §h.1): plain ws://, the /tryitout
// path current clients use.
const (
	RealWSURL = "ws://ops.koreainvestment.com:21000/tryitout"
	MockWSURL = "ws://ops.koreainvestment.com:31000/tryitout"
)

// MaxRegistrations is KIS's cap of registrations per session, all TRs
// summed (REFERENCE 0.1 #10).
const MaxRegistrations = 41

// Kind is what a registration streams for a code.
type Kind int

// The kinds a code can be subscribed to.
const (
	KindTrade Kind = iota + 1 // executions
	KindBook                  // 10-level books
)

// String returns "trade" or "book".
func (k Kind) String() string {
	switch k {
	case KindTrade:
		return "trade"
	case KindBook:
		return "book"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// TRs names the TR registered for each kind.
type TRs struct {
	Trade string // TrTradeKRX (default) or TrTradeIntegrated
	Book  string // TrBookKRX (default) or TrBookIntegrated
}

// KRX streams the KRX market only, on the real and the mock server.
var KRX = TRs{Trade: TrTradeKRX, Book: TrBookKRX}

// Integrated streams KRX+NXT (H0UNCNT0/H0UNASP0); the real server only.
var Integrated = TRs{Trade: TrTradeIntegrated, Book: TrBookIntegrated}

func (t TRs) of(k Kind) string {
	if k == KindBook {
		return t.Book
	}
	return t.Trade
}

// Credentials are one app key and its secret. The secret never prints.
type Credentials struct {
	AppKey    string
	AppSecret string
}

// String hides the secret.
func (c Credentials) String() string {
	return "stream.Credentials{AppKey:" + c.AppKey + " AppSecret:***}"
}

// GoString hides the secret from %#v.
func (c Credentials) GoString() string { return c.String() }

// Handler receives every event. It is called from the reader goroutine of
// the session that received the frame (one per app key, so calls for
// codes on different keys are concurrent) and must not block: a slow
// handler stalls that session's socket, and KIS drops sessions that fall
// behind. A direct call rather than a channel keeps the hot path free of
// allocation and of a silent drop policy; a consumer that needs to hand
// events elsewhere copies the Event (it is a value) into its own bounded
// queue and owns the drop decision.
type Handler func(Event)

// Resync is called once per code after a reconnect restored it (right
// after the [kisfeed.Gap] event), in its own goroutine, with the context
// of [Client.Run]. The integration fetches the code's quote and book over
// REST there, so state kept from the stream is whole again.
type Resync func(ctx context.Context, code string)

// Config is what a [Client] needs. Keys is required; the zero value of
// every other field is a documented default.
type Config struct {
	// Keys are the app keys; each gets its own session and up to
	// MaxPerSession registrations.
	Keys []Credentials
	// RESTBaseURL is where approval keys are issued; default kis.RealBaseURL.
	RESTBaseURL string
	// WSURL is the WebSocket URL, path included; default RealWSURL.
	WSURL string
	// TRs picks the TR per kind; default KRX.
	TRs TRs
	// MaxPerSession caps registrations per session; default and maximum
	// MaxRegistrations (41).
	MaxPerSession int
	// ApprovalStore shares approval keys with restarts and other
	// processes; default a kis.MemoryApprovalKeyStore.
	ApprovalStore kis.ApprovalKeyStore
	// Handler receives the events; nil drops them (Stats still count).
	Handler Handler
	// Resync, when set, is called per code after each reconnect.
	Resync Resync
}

// ErrSubscriptionLimit is returned by [Client.Subscribe] when no app key
// has room: every session holds its cap. The error is a
// [*SubscriptionLimitError] naming the cap and the registrations in use.
var ErrSubscriptionLimit = errors.New("kis stream: subscription limit reached")

// SubscriptionLimitError says that a Subscribe would exceed the
// registrations every key can hold.
type SubscriptionLimitError struct {
	Keys   int // app keys configured
	PerKey int // registrations one session may hold (KIS: 41)
	InUse  int // registrations held now, all keys summed
	Want   int // registrations the call needed
}

// Error names the cap and how many registrations are in use.
func (e *SubscriptionLimitError) Error() string {
	return fmt.Sprintf("kis stream: subscription limit reached: %d registrations in use of %d (%d per app key × %d keys), %d more wanted",
		e.InUse, e.PerKey*e.Keys, e.PerKey, e.Keys, e.Want)
}

// Is matches [ErrSubscriptionLimit].
func (e *SubscriptionLimitError) Is(target error) bool { return target == ErrSubscriptionLimit }

// EventKind says which field of an [Event] is set.
type EventKind int

// The kinds of event.
const (
	EventTrade EventKind = iota + 1
	EventBook
	EventGap
)

// Event is one decoded record or a gap. Only the field Kind names is set.
type Event struct {
	Kind EventKind
	// TrID is the TR the record came in (empty for a gap).
	TrID string
	// Key is the id of the app key whose session delivered it ("key1" …).
	Key string
	// Received is when the frame was read (the client's market clock).
	Received time.Time
	Trade    kisfeed.Trade
	Book     kisfeed.Book
	Gap      kisfeed.Gap
}

func (c Config) validate() (Config, error) {
	if len(c.Keys) == 0 {
		return c, errors.New("kis stream: keys: want at least one app key")
	}
	seen := map[string]bool{}
	for i, k := range c.Keys {
		if strings.TrimSpace(k.AppKey) == "" || strings.TrimSpace(k.AppSecret) == "" {
			return c, fmt.Errorf("kis stream: keys[%d]: want app key and secret", i)
		}
		if seen[k.AppKey] {
			return c, fmt.Errorf("kis stream: keys[%d]: app key given twice (KIS allows one session per key)", i)
		}
		seen[k.AppKey] = true
	}
	if c.RESTBaseURL == "" {
		c.RESTBaseURL = kis.RealBaseURL
	}
	if c.WSURL == "" {
		c.WSURL = RealWSURL
	}
	if u, err := url.Parse(c.WSURL); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return c, fmt.Errorf("kis stream: ws url %q: want a ws:// or wss:// URL like %s", c.WSURL, RealWSURL)
	}
	if c.TRs == (TRs{}) {
		c.TRs = KRX
	}
	if lay := layoutOf([]byte(c.TRs.Trade)); lay == nil || lay.kind != KindTrade {
		return c, fmt.Errorf("kis stream: trade TR %q: want %s or %s", c.TRs.Trade, TrTradeKRX, TrTradeIntegrated)
	}
	if lay := layoutOf([]byte(c.TRs.Book)); lay == nil || lay.kind != KindBook {
		return c, fmt.Errorf("kis stream: book TR %q: want %s or %s", c.TRs.Book, TrBookKRX, TrBookIntegrated)
	}
	if c.MaxPerSession == 0 {
		c.MaxPerSession = MaxRegistrations
	}
	if c.MaxPerSession < 1 || c.MaxPerSession > MaxRegistrations {
		return c, fmt.Errorf("kis stream: max per session %d: want 1…%d", c.MaxPerSession, MaxRegistrations)
	}
	if c.ApprovalStore == nil {
		c.ApprovalStore = kis.NewMemoryApprovalKeyStore()
	}
	return c, nil
}
