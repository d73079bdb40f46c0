package fanout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/kisfeed/kisfeed"
)

// NewWSHandler serves GET /v1/ws: a WebSocket whose client sends text
// JSON messages {"op":"subscribe","codes":[...],"kinds":["trade","book"]}
// and {"op":"unsubscribe","codes":[...]}, and receives
// {"type":"trade|book|gap|error|subscribed|unsubscribed","id":...,"data":{...}}.
// A malformed message is answered with an error event (reason invalid),
// not a disconnect, until the client spends InvalidBurst of them; then,
// like a slow consumer, the socket closes with 1008 and the reason as
// text (1001 on shutdown). The request's API key is charged per code.
//
// Like [NewSSEHandler] it must be mounted without a request timeout.
func NewWSHandler(h *Hub, o HandlerOptions) http.Handler {
	return &wsHandler{hub: h, o: o.withDefaults()}
}

type wsHandler struct {
	hub *Hub
	o   HandlerOptions
}

// clientMessage is what a client sends.
type clientMessage struct {
	Op    string   `json:"op"`
	Codes []string `json:"codes"`
	Kinds []string `json:"kinds"`
}

func (s *wsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	quota := quotaOf(r)
	// The hijacked connection keeps the server's deadlines; a socket has
	// none (writes get their own through the context).
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	limitSendBuffer(r.Context(), s.o.SendBuffer)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.o.OriginPatterns})
	if err != nil {
		return // Accept answered the request
	}
	defer conn.CloseNow()
	conn.SetReadLimit(s.o.MaxMessageBytes)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c, err := s.hub.Subscribe(ctx, Request{Quota: quota, Transport: "ws", Acks: true})
	if err != nil {
		_ = conn.Close(websocket.StatusGoingAway, ReasonShutdown)
		return
	}
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		s.read(ctx, conn, c)
	}()
	s.writeLoop(ctx, conn, c)
	cancel()
	conn.CloseNow()
	<-done
}

// read handles the client's messages until the socket fails.
func (s *wsHandler) read(ctx context.Context, conn *websocket.Conn, c *Consumer) {
	invalid := rate.NewLimiter(1, s.o.InvalidBurst)
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		op, codes, kinds, perr := parseClientMessage(typ, data)
		if perr != nil {
			if !invalid.AllowN(s.hub.cfg.Clock.Now(), 1) {
				c.Disconnect(ReasonAbuse, "too many malformed messages")
				return
			}
			c.refuse("", ReasonInvalid, perr.Error())
			continue
		}
		switch op {
		case "subscribe":
			c.Subscribe(ctx, codes, kinds)
		case "unsubscribe":
			c.Unsubscribe(codes)
		}
	}
}

// parseClientMessage validates one client message; the error names the
// field at fault.
func parseClientMessage(typ websocket.MessageType, data []byte) (op string, codes []kisfeed.Code, kinds Kinds, err error) {
	if typ != websocket.MessageText {
		return "", nil, 0, errors.New("binary message: send JSON text like {\"op\":\"subscribe\",\"codes\":[\"005930\"]}")
	}
	var m clientMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		msg := err.Error()
		if len(msg) > 100 {
			msg = msg[:100] + "…"
		}
		return "", nil, 0, fmt.Errorf("message is not a JSON object of op, codes and kinds: %s", msg)
	}
	switch m.Op {
	case "subscribe", "unsubscribe":
	default:
		return "", nil, 0, fmt.Errorf("op %q: want subscribe or unsubscribe", clip(m.Op))
	}
	if len(m.Codes) == 0 {
		return "", nil, 0, fmt.Errorf("codes: want 1 to %d codes", MaxCodes)
	}
	codes, err = ParseCodes(m.Codes)
	if err != nil {
		return "", nil, 0, err
	}
	if m.Op == "unsubscribe" && len(m.Kinds) > 0 {
		return "", nil, 0, errors.New("kinds: unsubscribe takes codes only (it removes every kind)")
	}
	for _, k := range m.Kinds {
		if k == "" {
			return "", nil, 0, &ParamError{Param: "kinds", Detail: "empty kind: want trade or book"}
		}
	}
	kinds, err = ParseKinds(joinKinds(m.Kinds))
	if err != nil {
		return "", nil, 0, err
	}
	return m.Op, codes, kinds, nil
}

func joinKinds(ks []string) string {
	var b bytes.Buffer
	for i, k := range ks {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
	}
	return b.String()
}

// writeLoop sends c's messages until the client leaves or c is
// disconnected, which closes the socket with a status and reason.
func (s *wsHandler) writeLoop(ctx context.Context, conn *websocket.Conn, c *Consumer) {
	h := s.hub
	ping := time.NewTicker(s.o.Ping)
	defer ping.Stop()
	var msgs []*Message
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			// Ping waits for the pong, which the reader receives.
			go func() {
				pctx, cancel := context.WithTimeout(ctx, s.o.WriteTimeout)
				defer cancel()
				_ = conn.Ping(pctx)
			}()
			continue
		case <-c.Ready():
		}
		var err error
		msgs, err = c.Take(msgs[:0])
		for _, m := range msgs {
			wctx, cancel := context.WithTimeout(ctx, s.o.WriteTimeout)
			werr := conn.Write(wctx, websocket.MessageText, m.WS())
			cancel()
			if werr != nil {
				if errors.Is(werr, context.DeadlineExceeded) && ctx.Err() == nil {
					c.Disconnect(ReasonSlowConsumer, "a write took longer than "+s.o.WriteTimeout.String())
					_ = conn.Close(websocket.StatusPolicyViolation, ReasonSlowConsumer)
				}
				s.o.Logger.Debug("stream write failed", slog.String("transport", "ws"), slog.Any("error", werr))
				return
			}
		}
		if len(msgs) > 0 {
			now := h.cfg.Clock.Now()
			h.obs.Delivered("ws", len(msgs))
			for _, m := range msgs {
				h.obs.Latency("ws", now.Sub(m.Published))
			}
		}
		var d *Disconnect
		if errors.As(err, &d) {
			code := websocket.StatusPolicyViolation
			if d.Reason == ReasonShutdown {
				code = websocket.StatusGoingAway
			}
			_ = conn.Close(code, closeText(d))
			return
		}
	}
}

// closeText is the close frame's reason: "reason: detail" within the
// 123 bytes a close frame allows.
func closeText(d *Disconnect) string {
	s := d.Reason
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	if len(s) > 123 {
		s = s[:120] + "..."
	}
	return s
}
