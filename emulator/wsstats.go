package emulator

import (
	"maps"
	"sync"
)

// WSStats is what the WebSocket side has seen (Stats.WebSocket, JSON
// "websocket" in GET /_emulator/stats).
type WSStats struct {
	// SessionsCurrent is the number of open sessions now.
	SessionsCurrent int `json:"sessions_current"`
	// SessionsOpened counts every accepted WebSocket upgrade.
	SessionsOpened int64 `json:"sessions_opened"`
	// SessionsMaxConcurrent is the most sessions open at once.
	SessionsMaxConcurrent int `json:"sessions_max_concurrent"`
	// MaxSessionsPerAppKey is, over all app keys, the most sessions bound
	// to one app key at once: 1 in normal use (a second gets OPSP8996).
	MaxSessionsPerAppKey int `json:"max_sessions_per_app_key"`
	// SessionsDroppedByReason counts ended sessions by reason
	// (client_closed, silent, fault, restart, write_failed, server_closed).
	SessionsDroppedByReason map[string]int64 `json:"sessions_dropped_by_reason"`
	// PerAppKey breaks sessions and registrations down by app key.
	PerAppKey map[string]WSAppKeyStats `json:"per_app_key"`
	// FramesByTR and RecordsByTR count data frames and the records in them
	// per tr_id.
	FramesByTR  map[string]int64 `json:"frames_by_tr"`
	RecordsByTR map[string]int64 `json:"records_by_tr"`
	// PingsSent counts PINGPONG messages sent.
	PingsSent int64 `json:"pings_sent"`
	// PongsReceived counts protocol pong frames received.
	PongsReceived int64 `json:"pongs_received"`
	// PingEchoesReceived counts PINGPONG text messages echoed back.
	PingEchoesReceived int64 `json:"ping_echoes_received"`
	// RepliesByMsgCd counts control replies per msg_cd.
	RepliesByMsgCd map[string]int64 `json:"replies_by_msg_cd"`
	// InUseRejections counts OPSP8996 replies (app key held by another
	// session).
	InUseRejections int64 `json:"opsp8996"`
	// GarbageFrames counts injected garbage frames sent.
	GarbageFrames int64 `json:"garbage_frames"`
	// ApprovalKeysIssued and ApprovalRejections count /oauth2/Approval
	// issuances and calls refused by the 1/s pacing.
	ApprovalKeysIssued int64 `json:"approval_keys_issued"`
	ApprovalRejections int64 `json:"approval_rejections"`
}

// WSAppKeyStats are the WebSocket counters of one app key.
type WSAppKeyStats struct {
	// Sessions is the number of sessions bound to the key now (0 or 1).
	Sessions int `json:"sessions"`
	// SessionsMax is the most sessions bound to the key at once.
	SessionsMax int `json:"sessions_max"`
	// Registrations is the key's session's registration count now.
	Registrations int `json:"registrations"`
	// RegistrationsMax is the most registrations the key's session held.
	RegistrationsMax int `json:"registrations_max"`
}

// wsStatsRec accumulates WSStats; the current figures are read off the
// hub at snapshot time.
type wsStatsRec struct {
	mu sync.Mutex // guards s
	s  WSStats
}

func (r *wsStatsRec) init() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = WSStats{
		SessionsDroppedByReason: map[string]int64{},
		PerAppKey:               map[string]WSAppKeyStats{},
		FramesByTR:              map[string]int64{},
		RecordsByTR:             map[string]int64{},
		RepliesByMsgCd:          map[string]int64{},
	}
}

func (r *wsStatsRec) with(f func(s *WSStats)) {
	r.mu.Lock()
	f(&r.s)
	r.mu.Unlock()
}

func (r *wsStatsRec) opened(n int) {
	r.with(func(s *WSStats) {
		s.SessionsOpened++
		s.SessionsMaxConcurrent = max(s.SessionsMaxConcurrent, n)
	})
}

func (r *wsStatsRec) dropped(reason string) {
	r.with(func(s *WSStats) { s.SessionsDroppedByReason[reason]++ })
}

func (r *wsStatsRec) bound(appKey string, n int) {
	r.with(func(s *WSStats) {
		a := s.PerAppKey[appKey]
		a.SessionsMax = max(a.SessionsMax, n)
		s.PerAppKey[appKey] = a
		s.MaxSessionsPerAppKey = max(s.MaxSessionsPerAppKey, n)
	})
}

func (r *wsStatsRec) registered(appKey string, n int) {
	r.with(func(s *WSStats) {
		a := s.PerAppKey[appKey]
		a.RegistrationsMax = max(a.RegistrationsMax, n)
		s.PerAppKey[appKey] = a
	})
}

func (r *wsStatsRec) frame(trID string, records int) {
	r.with(func(s *WSStats) {
		s.FramesByTR[trID]++
		s.RecordsByTR[trID] += int64(records)
	})
}

func (r *wsStatsRec) reply(code string) { r.with(func(s *WSStats) { s.RepliesByMsgCd[code]++ }) }
func (r *wsStatsRec) ping()             { r.with(func(s *WSStats) { s.PingsSent++ }) }
func (r *wsStatsRec) pong()             { r.with(func(s *WSStats) { s.PongsReceived++ }) }
func (r *wsStatsRec) echo()             { r.with(func(s *WSStats) { s.PingEchoesReceived++ }) }
func (r *wsStatsRec) inUse()            { r.with(func(s *WSStats) { s.InUseRejections++ }) }
func (r *wsStatsRec) garbage()          { r.with(func(s *WSStats) { s.GarbageFrames++ }) }

func (r *wsStatsRec) approval(issued bool) {
	r.with(func(s *WSStats) {
		if issued {
			s.ApprovalKeysIssued++
		} else {
			s.ApprovalRejections++
		}
	})
}

// wsStats returns the WebSocket counters with the current sessions and
// registrations.
func (s *Server) wsStats() WSStats {
	h := &s.ws
	h.stats.mu.Lock()
	st := h.stats.s
	st.SessionsDroppedByReason = maps.Clone(st.SessionsDroppedByReason)
	st.PerAppKey = maps.Clone(st.PerAppKey)
	st.FramesByTR = maps.Clone(st.FramesByTR)
	st.RecordsByTR = maps.Clone(st.RecordsByTR)
	st.RepliesByMsgCd = maps.Clone(st.RepliesByMsgCd)
	h.stats.mu.Unlock()

	h.mu.Lock()
	sessions := make([]*wsSession, 0, len(h.sessions))
	bound := make([]string, 0, len(h.sessions))
	for _, x := range h.sessions {
		sessions = append(sessions, x)
		bound = append(bound, x.appKey)
	}
	h.mu.Unlock()
	st.SessionsCurrent = len(sessions)
	for k, a := range st.PerAppKey {
		a.Sessions, a.Registrations = 0, 0
		st.PerAppKey[k] = a
	}
	for i, x := range sessions {
		if bound[i] == "" {
			continue
		}
		a := st.PerAppKey[bound[i]]
		a.Sessions++
		x.mu.Lock()
		a.Registrations += len(x.regs)
		x.mu.Unlock()
		st.PerAppKey[bound[i]] = a
	}
	return st
}
