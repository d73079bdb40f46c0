package emulator

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Stats is what the emulator has seen since it started (or since
// [Server.ResetStats]). Served as JSON at GET /_emulator/stats.
type Stats struct {
	// Requests counts every non-admin request received.
	Requests int64 `json:"requests"`
	// RequestsByPath counts requests per URL path.
	RequestsByPath map[string]int64 `json:"requests_by_path"`
	// RequestsByTrID counts requests per tr_id request header ("" when
	// missing; only requests that carried or needed one).
	RequestsByTrID map[string]int64 `json:"requests_by_tr_id"`
	// ResponsesByMsgCd counts responses per msg_cd (error_code for the
	// OAuth errors).
	ResponsesByMsgCd map[string]int64 `json:"responses_by_msg_cd"`
	// TokensIssued counts new distinct access tokens.
	TokensIssued int64 `json:"tokens_issued"`
	// TokenRequests counts POST /oauth2/tokenP calls.
	TokenRequests int64 `json:"token_requests"`
	// TokenRejections counts tokenP calls refused with EGW00133 (too
	// frequent).
	TokenRejections int64 `json:"token_rejections"`
	// RateLimitRejections counts data calls refused by the per-app-key
	// limiter with EGW00201 (injected EGW00201 faults are not included).
	RateLimitRejections int64 `json:"rate_limit_rejections"`
	// MaxRequestsPerSecondWindow is, over all app keys, the largest number
	// of requests accepted for one app key within any sliding 1-second
	// window: the oracle rate-limit tests compare with the client's rate.
	MaxRequestsPerSecondWindow int `json:"max_requests_per_second_window"`
	// PerAppKey breaks the counters down by app key.
	PerAppKey map[string]AppKeyStats `json:"per_app_key"`
	// FaultsInjected counts injected faults by kind (FaultError, ...).
	FaultsInjected map[string]int64 `json:"faults_injected"`
	// CorruptedResponses counts responses with a corrupted field.
	CorruptedResponses int64 `json:"corrupted_responses"`
	// Corrupted lists the most recent corrupted responses (at most 100).
	Corrupted []Corruption `json:"corrupted"`
	// WebSocket counts the WebSocket side: sessions, registrations,
	// frames, PINGPONG, drops.
	WebSocket WSStats `json:"websocket"`
}

// AppKeyStats are the counters of one app key.
type AppKeyStats struct {
	Requests                   int64 `json:"requests"`
	Accepted                   int64 `json:"accepted"`
	RateLimitRejections        int64 `json:"rate_limit_rejections"`
	MaxRequestsPerSecondWindow int   `json:"max_requests_per_second_window"`
	TokensIssued               int64 `json:"tokens_issued"`
	TokenRequests              int64 `json:"token_requests"`
	TokenRejections            int64 `json:"token_rejections"`
}

// Corruption records one corrupted response.
type Corruption struct {
	Time  time.Time `json:"time"`
	Path  string    `json:"path"`
	TrID  string    `json:"tr_id"`
	Code  string    `json:"code"`  // stock code asked for
	Block string    `json:"block"` // output, output1, output2[0], ...
	Field string    `json:"field"`
	// Kind is "high_below_low", "crossed_book", "negative" or
	// "non_numeric".
	Kind  string `json:"kind"`
	Value string `json:"value"` // the corrupted value sent
	// Date is the corrupted chart row's stck_bsop_date (YYYYMMDD), ""
	// when the object has none.
	Date  string `json:"date,omitempty"`
	GtUID string `json:"gt_uid"` // the corrupted response's gt_uid header
}

const maxCorruptions = 100

// statsRec accumulates Stats.
type statsRec struct {
	mu sync.Mutex // guards s
	s  Stats
}

func newStatsRec() *statsRec {
	r := &statsRec{}
	r.reset()
	return r
}

func (r *statsRec) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = Stats{
		RequestsByPath:   map[string]int64{},
		RequestsByTrID:   map[string]int64{},
		ResponsesByMsgCd: map[string]int64{},
		PerAppKey:        map[string]AppKeyStats{},
		FaultsInjected:   map[string]int64{},
	}
}

func (r *statsRec) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	s.RequestsByPath = maps.Clone(s.RequestsByPath)
	s.RequestsByTrID = maps.Clone(s.RequestsByTrID)
	s.ResponsesByMsgCd = maps.Clone(s.ResponsesByMsgCd)
	s.PerAppKey = maps.Clone(s.PerAppKey)
	s.FaultsInjected = maps.Clone(s.FaultsInjected)
	s.Corrupted = slices.Clone(s.Corrupted)
	if s.Corrupted == nil {
		s.Corrupted = []Corruption{}
	}
	return s
}

func (r *statsRec) request(path, trID string, hasTrID bool) {
	r.mu.Lock()
	r.s.Requests++
	r.s.RequestsByPath[path]++
	if hasTrID {
		r.s.RequestsByTrID[trID]++
	}
	r.mu.Unlock()
}

func (r *statsRec) response(msgCd string) {
	if msgCd == "" {
		return
	}
	r.mu.Lock()
	r.s.ResponsesByMsgCd[msgCd]++
	r.mu.Unlock()
}

// accepted records a request the limiter let through and the number of
// accepted requests of that key in the 1-second window ending now.
func (r *statsRec) accepted(k string, inWindow int) {
	r.mu.Lock()
	a := r.s.PerAppKey[k]
	a.Requests++
	a.Accepted++
	a.MaxRequestsPerSecondWindow = max(a.MaxRequestsPerSecondWindow, inWindow)
	r.s.PerAppKey[k] = a
	r.s.MaxRequestsPerSecondWindow = max(r.s.MaxRequestsPerSecondWindow, inWindow)
	r.mu.Unlock()
}

func (r *statsRec) rejected(k string) {
	r.mu.Lock()
	a := r.s.PerAppKey[k]
	a.Requests++
	a.RateLimitRejections++
	r.s.PerAppKey[k] = a
	r.s.RateLimitRejections++
	r.mu.Unlock()
}

func (r *statsRec) fault(kind string) {
	r.mu.Lock()
	r.s.FaultsInjected[kind]++
	r.mu.Unlock()
}

func (r *statsRec) corrupted(c Corruption) {
	r.mu.Lock()
	r.s.FaultsInjected[FaultCorrupt]++
	r.s.CorruptedResponses++
	if len(r.s.Corrupted) >= maxCorruptions {
		r.s.Corrupted = slices.Delete(r.s.Corrupted, 0, 1)
	}
	r.s.Corrupted = append(r.s.Corrupted, c)
	r.mu.Unlock()
}

func (r *statsRec) token(k string, issued, rejected bool) {
	r.mu.Lock()
	a := r.s.PerAppKey[k]
	a.TokenRequests++
	r.s.TokenRequests++
	if issued {
		a.TokensIssued++
		r.s.TokensIssued++
	}
	if rejected {
		a.TokenRejections++
		r.s.TokenRejections++
	}
	r.s.PerAppKey[k] = a
	r.mu.Unlock()
}
