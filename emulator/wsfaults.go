package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// WSFaults are the standing WebSocket faults. The zero value injects
// none. One-shot faults (drop every session now, stall, garbage, restart)
// are methods and admin endpoints instead.
//
// Spec syntax (ParseWSFaults, --ws-fault, POST /_emulator/ws/faults),
// comma separated:
//
//	extra-fields=TR:N   append N fields to every record of TR (repeatable)
//	drop-every=D        drop every session every D of wall time (1006)
//	garbage-every=D     send every session a garbage frame every D
//	stall-after=D       each new session stops sending D after it opens
type WSFaults struct {
	// ExtraFields maps a tr_id to the number of fields appended to each
	// of its records.
	ExtraFields map[string]int `json:"extra_fields,omitempty"`
	// DropEvery drops every session periodically (0: never).
	DropEvery time.Duration `json:"drop_every,omitempty"`
	// GarbageEvery sends every session a garbage frame periodically.
	GarbageEvery time.Duration `json:"garbage_every,omitempty"`
	// StallAfter stalls each new session this long after it opens.
	StallAfter time.Duration `json:"stall_after,omitempty"`
}

// ParseWSFaults parses a WebSocket fault spec; see [WSFaults].
func ParseWSFaults(spec string) (WSFaults, error) {
	var f WSFaults
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		var err error
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "extra-fields":
			err = f.addExtra(v)
		case "drop-every":
			f.DropEvery, err = faultDuration(k, v)
		case "garbage-every":
			f.GarbageEvery, err = faultDuration(k, v)
		case "stall-after":
			f.StallAfter, err = faultDuration(k, v)
		default:
			err = fmt.Errorf("unknown WebSocket fault %q: want extra-fields=TR:N, drop-every=D, garbage-every=D or stall-after=D", k)
		}
		if err != nil {
			return WSFaults{}, err
		}
	}
	return f, nil
}

func (f *WSFaults) addExtra(v string) error {
	tr, n, ok := strings.Cut(strings.TrimSpace(v), ":")
	count, err := strconv.Atoi(n)
	if !ok || tr == "" || err != nil || count < 0 || count > 1000 {
		return fmt.Errorf("extra-fields=%q: want TR:N like H0STCNT0:3 (N from 0 to 1000)", v)
	}
	if f.ExtraFields == nil {
		f.ExtraFields = map[string]int{}
	}
	f.ExtraFields[strings.ToUpper(tr)] = count
	return nil
}

func faultDuration(k, v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration like 30s", k, v)
	}
	return d, nil
}

// String returns the spec ParseWSFaults accepts.
func (f WSFaults) String() string {
	var parts []string
	trs := make([]string, 0, len(f.ExtraFields))
	for tr := range f.ExtraFields {
		trs = append(trs, tr)
	}
	sort.Strings(trs)
	for _, tr := range trs {
		parts = append(parts, fmt.Sprintf("extra-fields=%s:%d", tr, f.ExtraFields[tr]))
	}
	for _, d := range []struct {
		k string
		v time.Duration
	}{{"drop-every", f.DropEvery}, {"garbage-every", f.GarbageEvery}, {"stall-after", f.StallAfter}} {
		if d.v > 0 {
			parts = append(parts, d.k+"="+d.v.String())
		}
	}
	return strings.Join(parts, ",")
}

// WithWSFaults sets the initial WebSocket faults (see [Server.SetWSFaults]).
func WithWSFaults(f WSFaults) Option {
	return func(o *options) error { o.wsFaults = f; return nil }
}

func (h *wsHub) currentFaults() WSFaults {
	h.faultMu.Lock()
	defer h.faultMu.Unlock()
	return h.faults
}

// SetWSFaults replaces the standing WebSocket faults; periodic ones start
// counting now.
func (s *Server) SetWSFaults(f WSFaults) {
	h := &s.ws
	h.faultMu.Lock()
	defer h.faultMu.Unlock()
	if h.stopLoops != nil {
		h.stopLoops()
		h.stopLoops = nil
	}
	h.faults = f
	if f.DropEvery <= 0 && f.GarbageEvery <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stopLoops = cancel
	if f.DropEvery > 0 {
		go every(ctx, f.DropEvery, func() { s.DropSessions() }) // ends with stopLoops
	}
	if f.GarbageEvery > 0 {
		go every(ctx, f.GarbageEvery, func() { s.SendGarbage(0, "") }) // ends with stopLoops
	}
}

// WSFaults returns the standing WebSocket faults.
func (s *Server) WSFaults() WSFaults { return s.ws.currentFaults() }

func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// DropSessions drops every session abnormally (TCP closed, no close
// frame: the client sees 1006) and returns how many.
func (s *Server) DropSessions() int {
	s.stats.fault("ws_drop")
	return s.dropAll(DropFault)
}

// RestartWebSocket is KIS's restart (the weekly one, or an incident):
// every session gone with its registrations; approval keys kept.
func (s *Server) RestartWebSocket() int {
	s.stats.fault("ws_restart")
	return s.dropAll(DropRestart)
}

// StallSessions makes session id (0: every session) stop sending
// anything — data, PINGPONG, replies — while keeping the connection open,
// and returns how many it stalled.
func (s *Server) StallSessions(id uint64) int {
	n := 0
	for _, x := range s.sessionList(id) {
		x.stalled.Store(true)
		n++
	}
	s.stats.fault("ws_stall")
	return n
}

// SendGarbage sends session id (0: every session) one frame it cannot
// parse (kind: "count" (default), "text" or "encrypted", see
// garbageFrame) and returns how many sessions it queued one for.
func (s *Server) SendGarbage(id uint64, kind string) int {
	n := 0
	for _, x := range s.sessionList(id) {
		select {
		case x.garbage <- kind:
			n++
		default: // a backlog of garbage is garbage enough
		}
	}
	s.stats.fault("ws_garbage")
	return n
}

// WSSession describes one open session (GET /_emulator/ws/sessions).
type WSSession struct {
	ID            uint64 `json:"id"`
	AppKey        string `json:"app_key"` // masked
	Registrations int    `json:"registrations"`
	Stalled       bool   `json:"stalled"`
}

// Sessions lists the open sessions, by id.
func (s *Server) Sessions() []WSSession {
	var out []WSSession
	for _, x := range s.sessionList(0) {
		x.mu.Lock()
		n := len(x.regs)
		x.mu.Unlock()
		out = append(out, WSSession{ID: x.id, AppKey: maskKey(x.boundKey()), Registrations: n, Stalled: x.stalled.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Server) sessionList(id uint64) []*wsSession {
	s.ws.mu.Lock()
	defer s.ws.mu.Unlock()
	var out []*wsSession
	for _, x := range s.ws.sessions {
		if id == 0 || x.id == id {
			out = append(out, x)
		}
	}
	return out
}

// serveWSAdmin is /_emulator/ws/…: sessions, faults and one-shot faults.
func (s *Server) serveWSAdmin(w http.ResponseWriter, r *http.Request) {
	type errBody struct {
		Error string `json:"error"`
	}
	action := strings.TrimPrefix(r.URL.Path, "/_emulator/ws/")
	if action == "sessions" {
		s.writeJSON(w, 200, s.Sessions())
		return
	}
	if action == "faults" {
		s.serveWSFaults(w, r)
		return
	}
	if r.Method != http.MethodPost {
		s.writeJSON(w, 405, errBody{"use POST /_emulator/ws/" + action})
		return
	}
	id, _ := strconv.ParseUint(r.URL.Query().Get("session"), 10, 64)
	switch action {
	case "drop":
		s.writeJSON(w, 200, map[string]int{"dropped": s.DropSessions()})
	case "restart":
		s.writeJSON(w, 200, map[string]int{"dropped": s.RestartWebSocket()})
	case "stall":
		s.writeJSON(w, 200, map[string]int{"stalled": s.StallSessions(id)})
	case "garbage":
		s.writeJSON(w, 200, map[string]int{"sent": s.SendGarbage(id, r.URL.Query().Get("kind"))})
	default:
		s.writeJSON(w, 404, errBody{"unknown path; see /_emulator/ws/sessions, faults, drop, restart, stall, garbage"})
	}
}

func (s *Server) serveWSFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost, http.MethodPut:
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		text := strings.TrimSpace(string(body))
		if q := r.URL.Query().Get("spec"); q != "" && text == "" {
			text = q
		}
		var f WSFaults
		if err == nil {
			if strings.HasPrefix(text, "{") {
				err = json.Unmarshal([]byte(text), &f)
			} else {
				f, err = ParseWSFaults(text)
			}
		}
		if err != nil {
			s.writeJSON(w, 400, map[string]string{"error": err.Error()})
			return
		}
		s.SetWSFaults(f)
	case http.MethodDelete:
		s.SetWSFaults(WSFaults{})
	default:
		s.writeJSON(w, 405, map[string]string{"error": "use GET, POST or DELETE"})
		return
	}
	s.writeJSON(w, 200, map[string]string{"faults": s.WSFaults().String()})
}
