package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/kisfeed/kisfeed/internal/jsonview"
	"github.com/kisfeed/kisfeed/krx"
)

// Status is the body of GET /v1/status: what the page's status strip
// shows at a glance. Its figures come from [Options.Status]; the handler
// adds the times and whether the market is open.
type Status struct {
	Time time.Time `json:"time"`
	// MarketTime is the served market's clock: the wall clock against
	// KIS, the synthetic market's (KISFEED_MARKET_TIME) otherwise.
	MarketTime time.Time `json:"market_time"`
	// MarketOpen says whether the market's regular session is running at
	// MarketTime, by the built-in KRX calendar.
	MarketOpen bool `json:"market_open"`
	// Breaker is the circuit breaker's state: closed, open, half-open,
	// or unknown when nothing reports it.
	Breaker   string          `json:"breaker"`
	Cache     StatusCache     `json:"cache"`
	Upstream  StatusUpstream  `json:"upstream"`
	Stream    StatusStream    `json:"stream"`
	Ingestion StatusIngestion `json:"ingestion"`
}

// StatusCache counts cache lookups since the process started.
type StatusCache struct {
	Hits   int64 `json:"hits"`
	Misses int64 `json:"misses"`
	Stale  int64 `json:"stale"`
	// HitRatio is hits / (hits + misses), null before the first lookup.
	HitRatio *float64 `json:"hit_ratio"`
}

// StatusUpstream is the request rate sent to KIS against its limit.
type StatusUpstream struct {
	// Requests is every KIS request sent since the process started.
	Requests int64 `json:"requests"`
	// PerSecond is the recent rate (over up to the last 30 s), null
	// until it can be measured.
	PerSecond *float64 `json:"per_second"`
	// Limit is the most requests per second the app keys allow together,
	// null when there is no KIS upstream (mock mode).
	Limit *float64 `json:"limit"`
	// Keys is the number of KIS app keys in use.
	Keys int `json:"keys"`
}

// StatusStream is the KIS real-time stream per app key. Available is
// false (and the counts 0) while kisfeed has no stream.
type StatusStream struct {
	Available bool              `json:"available"`
	Keys      []StatusStreamKey `json:"keys"`
	// Replica is this replica's part in sharing the KIS sessions (with
	// NATS_URL); absent for a single process.
	Replica *StatusReplica `json:"replica,omitempty"`
}

// StatusReplica says whether this replica holds the stream lease (and so
// the KIS sessions) and counts what it relayed.
type StatusReplica struct {
	Name   string `json:"name"`
	Holder bool   `json:"holder"`
	// Epoch and Fence are the holder's tenure (the event ids' epoch, the
	// lease's fencing token); empty and 0 when not holder.
	Epoch   string    `json:"epoch,omitempty"`
	Fence   int64     `json:"fence,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Tenures int       `json:"tenures"`
	// Gaps are the gap events sent to consumers on holder changes and
	// NATS reconnects; Forwarded the events relayed from NATS.
	Gaps      uint64 `json:"gaps"`
	Forwarded uint64 `json:"forwarded"`
}

// StatusStreamKey is one app key's stream use. Key is its position
// (1 = KIS_APP_KEY, then KIS_APP_KEYS in order), never the key itself.
type StatusStreamKey struct {
	Key           int `json:"key"`
	Sessions      int `json:"sessions"`
	Registrations int `json:"registrations"`
}

// StatusIngestion lists the latest ingestion runs from the database
// serve reports on; Database is false when it has none.
type StatusIngestion struct {
	Database bool        `json:"database"`
	Runs     []StatusRun `json:"runs"`
	// Error says why the runs could not be read (empty when they were).
	Error string `json:"error,omitempty"`
}

// StatusRun is one ingestion run, newest first in [StatusIngestion].
type StatusRun struct {
	ID         int64     `json:"id"`
	Status     string    `json:"status"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Path       string    `json:"path"`
	Universe   int       `json:"universe"`
	Written    int       `json:"written"`
	Rejected   int       `json:"rejected"`
	Failed     int       `json:"failed"`
	Error      string    `json:"error,omitempty"`
}

// handleStatus answers the status strip's poll. It is never cached: the
// figures move with every request.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	out := Status{Breaker: "unknown", Stream: StatusStream{Keys: []StatusStreamKey{}},
		Ingestion: StatusIngestion{Runs: []StatusRun{}}}
	if s.status != nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.readyTime)
		out = s.status(ctx)
		cancel()
		if out.Stream.Keys == nil {
			out.Stream.Keys = []StatusStreamKey{}
		}
		if out.Ingestion.Runs == nil {
			out.Ingestion.Runs = []StatusRun{}
		}
		if out.Breaker == "" {
			out.Breaker = "unknown"
		}
	}
	market := s.marketNow()
	out.Time, out.MarketTime, out.MarketOpen = jsonview.KST(s.now()), jsonview.KST(market), krx.IsOpen(market)
	w.Header()["Cache-Control"] = hdrNoStore
	writeJSON(w, http.StatusOK, out)
}
