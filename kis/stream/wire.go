package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/kisfeed/kisfeed"
)

// KIS control codes this client acts on (REFERENCE §e).
const (
	msgSubscribed      = "OPSP0000"
	msgUnsubscribed    = "OPSP0001"
	msgAlready         = "OPSP0002"
	msgNotSubscribed   = "OPSP0003"
	msgKeyInUse        = "OPSP8996"
	msgApprovalInvalid = "OPSP0011"
	msgAppKeyInvalid   = "OPSP9994"
)

// subscribeRequest is the subscribe/unsubscribe message (REFERENCE §h.2);
// the field order is the portal's, which the fixture pins.
type subscribeRequest struct {
	Header struct {
		ApprovalKey string `json:"approval_key"`
		CustType    string `json:"custtype"`
		TrType      string `json:"tr_type"`
		ContentType string `json:"content-type"`
	} `json:"header"`
	Body struct {
		Input struct {
			TrID  string `json:"tr_id"`
			TrKey string `json:"tr_key"`
		} `json:"input"`
	} `json:"body"`
}

// subscribeMessage builds the JSON text frame for o: tr_type "1"
// registers, "2" unregisters (the portal's layout; R-llm docstrings that
// say "0" are wrong, REFERENCE §h.2).
func subscribeMessage(approval string, o op) []byte {
	var m subscribeRequest
	m.Header.ApprovalKey = approval
	m.Header.CustType = "P"
	m.Header.TrType = "2"
	if o.subscribe {
		m.Header.TrType = "1"
	}
	m.Header.ContentType = "utf-8"
	m.Body.Input.TrID = o.tr
	m.Body.Input.TrKey = o.code
	b, _ := json.Marshal(m) // strings only: cannot fail
	return b
}

// controlMessage is a JSON message from the server: a reply to a
// subscribe (REFERENCE §h.3) or a PINGPONG (§h.4).
type controlMessage struct {
	Header struct {
		TrID  string `json:"tr_id"`
		TrKey string `json:"tr_key"`
	} `json:"header"`
	Body struct {
		RtCd  string `json:"rt_cd"`
		MsgCd string `json:"msg_cd"`
		Msg1  string `json:"msg1"`
	} `json:"body"`
}

// control handles one JSON message; a non-empty result ends the session
// with that reason.
func (s *session) control(ctx context.Context, msg []byte) string {
	var m controlMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		s.parseError(frameErr(ReasonHeader, "", "", msg, "neither a data frame nor JSON"))
		return ""
	}
	if m.Header.TrID == "PINGPONG" {
		s.touch()
		// Echo the text verbatim (python-kis); the read loop answers
		// protocol pings too, so either server habit is covered.
		if err := s.write(ctx, bytes.Clone(msg)); err != nil && ctx.Err() == nil {
			return reasonWrite
		}
		return ""
	}
	r := reg{code: m.Header.TrKey, tr: m.Header.TrID}
	switch m.Body.MsgCd {
	case msgSubscribed, msgAlready:
		s.acked(r)
	case msgUnsubscribed, msgNotSubscribed:
	case msgKeyInUse:
		s.c.o.log.Warn("kis stream: app key already holds a session (OPSP8996); backing off", "key", s.k.id)
		return reasonKeyInUse
	case msgApprovalInvalid, msgAppKeyInvalid:
		s.c.o.log.Warn("kis stream: approval key refused", "key", s.k.id, "msg_cd", m.Body.MsgCd)
		return reasonApprovalRefused
	default:
		if m.Body.RtCd != "0" {
			s.c.o.log.Warn("kis stream: registration refused", "key", s.k.id, "tr_id", r.tr,
				"code", r.code, "msg_cd", m.Body.MsgCd, "msg1", m.Body.Msg1)
			s.c.o.observer.SubscribeRefused(s.k.id, r.tr, m.Body.MsgCd)
		}
	}
	return ""
}

// touch feeds the watchdog.
func (s *session) touch() { s.alive.Store(wallNow().UnixNano()) }

// acked marks r acknowledged and, when r's code was cut off by a drop,
// emits its gap and starts its resync.
func (s *session) acked(r reg) {
	s.c.mu.Lock()
	if st := s.k.regs[r]; st != nil {
		st.acked = true
	}
	s.c.mu.Unlock()
	s.healthy.Store(true)
	g := s.pending[r.code]
	if g == nil {
		return
	}
	delete(s.pending, r.code)
	now := s.c.o.now()
	g.To = now
	s.c.gapsN.Add(1)
	s.c.o.observer.Gap(r.code)
	if h := s.c.cfg.Handler; h != nil {
		h(Event{Kind: EventGap, Key: s.k.id, Received: now, Gap: *g})
	}
	if rs := s.c.cfg.Resync; rs != nil {
		code, ctx := r.code, s.keyLoop.ctx
		s.resyncs.Go(func() { rs(ctx, code) })
	}
}

// data decodes one data frame and hands its records to the handler.
func (s *session) data(msg []byte) {
	now := s.c.o.now()
	s.touch()
	f, err := s.p.split(msg)
	if err != nil {
		s.parseError(err)
		return
	}
	s.c.frames.Add(1)
	obs := s.c.o.observer
	obs.Frame(f.lay.tr, f.count)
	h := s.c.cfg.Handler
	var day = now
	if f.lay.kind == KindBook {
		day = now.In(kisfeed.KST)
	}
	for i := range f.count {
		rec := f.record(i)
		ev := Event{TrID: f.lay.tr, Key: s.k.id, Received: now}
		var code string
		if f.lay.kind == KindTrade {
			if err := s.p.decodeTrade(f.lay.tr, rec, &ev.Trade); err != nil {
				s.parseError(err)
				continue
			}
			ev.Kind, code = EventTrade, ev.Trade.Code
			obs.Lag(f.lay.tr, now.Sub(ev.Trade.Time))
		} else {
			if err := s.p.decodeBook(f.lay.tr, rec, day, &ev.Book); err != nil {
				s.parseError(err)
				continue
			}
			ev.Kind, code = EventBook, ev.Book.Code
		}
		s.c.records.Add(1) // before the handler: whoever it tells sees the count
		s.last[code] = now
		if h != nil {
			h(ev)
		}
	}
}

// parseError counts a refused frame or record; the session goes on.
func (s *session) parseError(err error) {
	reason := ReasonHeader
	var fe *FrameError
	if errors.As(err, &fe) {
		reason = fe.Reason
	}
	s.c.parseErrors.Add(1)
	s.c.o.observer.ParseError(reason)
	s.c.o.log.Debug("kis stream: frame refused", "key", s.k.id, "err", err)
}
