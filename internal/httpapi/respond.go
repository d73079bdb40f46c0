package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/jsonview"
)

// batchItemError is one failed code of a batch.
type batchItemError struct {
	Code   string `json:"code"`
	Status int    `json:"status"`
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

type batchJSON struct {
	Requested int              `json:"requested"`
	Quotes    []jsonview.Quote `json:"quotes"`
	Errors    []batchItemError `json:"errors"`
	jsonview.Meta
}

type stocksJSON struct {
	Count  int              `json:"count"`
	Stocks []jsonview.Stock `json:"stocks"`
	jsonview.Meta
}

type calendarJSON struct {
	Date       string    `json:"date"`
	Weekday    string    `json:"weekday"`
	TradingDay bool      `json:"trading_day"`
	Holiday    string    `json:"holiday,omitempty"`
	Open       time.Time `json:"open,omitzero"`
	Close      time.Time `json:"close,omitzero"`
	// PrevTradingDay and NextTradingDay are empty (left out) when the
	// calendar ends before one is found.
	PrevTradingDay string `json:"prev_trading_day,omitempty"`
	NextTradingDay string `json:"next_trading_day,omitempty"`
	jsonview.Meta
}

// setCacheHeaders sets X-Cache and Cache-Control from a value's Meta:
// max-age is the TTL left (never for stale values, which are served only
// because nothing fresher exists), no-store when the value is not cached.
func setCacheHeaders(h http.Header, m kisfeed.Meta, now time.Time) {
	switch m.Origin {
	case kisfeed.OriginCache:
		h["X-Cache"] = hdrHit
	case kisfeed.OriginStale:
		h["X-Cache"] = hdrStale
	default:
		h["X-Cache"] = hdrMiss
	}
	h["Cache-Control"] = cacheControl(m, now)
}

// Header values shared by every response; http.Header slices are never
// modified after being set, so sharing them saves an allocation per
// request on the hot path.
var (
	hdrHit     = []string{"HIT"}
	hdrMiss    = []string{"MISS"}
	hdrStale   = []string{"STALE"}
	hdrNoStore = []string{"no-store"}
	hdrAge0    = []string{"max-age=0"}
	hdrJSON    = []string{"application/json"}
)

func cacheControl(m kisfeed.Meta, now time.Time) []string {
	if m.Stale || m.Origin == kisfeed.OriginStale {
		return hdrAge0
	}
	if m.Expires.IsZero() {
		return hdrNoStore
	}
	left := m.Expires.Sub(now)
	if left < time.Second {
		return hdrAge0
	}
	secs := int64(left / time.Second)
	if secs < int64(len(maxAges)) {
		return maxAges[secs]
	}
	return []string{"max-age=" + strconv.FormatInt(secs, 10)}
}

// maxAges holds the Cache-Control values max-age=0 … max-age=3600 (every
// quote and order book TTL), built once and shared like the other header
// values above.
var maxAges = func() [][]string {
	t := make([][]string, 3601)
	for i := range t {
		t[i] = []string{"max-age=" + strconv.Itoa(i)}
	}
	return t
}()

// mergeMeta summarises the metas of a batch: the oldest as_of, the worst
// origin (stale over source over cache), the soonest expiry.
func mergeMeta(metas []kisfeed.Meta, now time.Time) kisfeed.Meta {
	if len(metas) == 0 {
		return kisfeed.Meta{AsOf: now, Origin: kisfeed.OriginSource}
	}
	out := metas[0]
	rank := map[kisfeed.Origin]int{kisfeed.OriginCache: 0, kisfeed.OriginSource: 1, kisfeed.OriginStale: 2}
	uncacheable := out.Expires.IsZero()
	for _, m := range metas[1:] {
		if !m.AsOf.IsZero() && (out.AsOf.IsZero() || m.AsOf.Before(out.AsOf)) {
			out.AsOf = m.AsOf
		}
		if rank[m.Origin] > rank[out.Origin] {
			out.Origin = m.Origin
		}
		out.Stale = out.Stale || m.Stale
		if m.Expires.IsZero() {
			uncacheable = true
		} else if out.Expires.IsZero() || m.Expires.Before(out.Expires) {
			out.Expires = m.Expires
		}
	}
	if uncacheable {
		// One uncached value makes the whole answer uncacheable.
		out.Expires = time.Time{}
	}
	return out
}

// encBuf is a response buffer with its encoder; pooled together, so the
// hot path allocates neither per request.
type encBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// bufPool recycles response buffers; answers are small (a quote is
// ~500 bytes) and the hot path should not allocate one per request.
var bufPool = sync.Pool{New: func() any {
	e := new(encBuf)
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(true)
	return e
}}

// contentLengths holds the Content-Length header values of bodies up to
// 4 KiB (every quote and most answers), built once: a header value slice
// is never modified after being set, so sharing it saves two allocations
// per response.
var contentLengths = func() [][]string {
	t := make([][]string, 4<<10)
	for i := range t {
		t[i] = []string{strconv.Itoa(i)}
	}
	return t
}()

func contentLength(n int) []string {
	if n < len(contentLengths) {
		return contentLengths[n]
	}
	return []string{strconv.Itoa(n)}
}

// writeJSON writes v as a JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = hdrJSON
	writeJSONBody(w, status, v)
}

// writeJSONBody encodes v before writing headers, so an encoding failure
// still yields a clean 500 instead of a truncated 200.
func writeJSONBody(w http.ResponseWriter, status int, v any) {
	e := bufPool.Get().(*encBuf)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		// e is dropped, not pooled: its encoder saw a failure.
		h := w.Header()
		h.Set("Content-Type", "application/problem+json")
		h.Set("Cache-Control", "no-store")
		h.Del("X-Cache")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"type":"/problems/internal","title":"Internal server error","status":500}` + "\n"))
		return
	}
	w.Header()["Content-Length"] = contentLength(e.buf.Len())
	w.WriteHeader(status)
	_, _ = w.Write(e.buf.Bytes())
	if e.buf.Cap() <= 64<<10 {
		bufPool.Put(e)
	}
}
