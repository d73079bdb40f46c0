package fanout

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// HandlerOptions tune the stream handlers; zero values take the
// documented defaults.
type HandlerOptions struct {
	// Ping is the interval of SSE ": ping" comments and WebSocket pings
	// (default 15 s): proxies close connections that stay silent.
	Ping time.Duration
	// WriteTimeout bounds one write to a consumer (default 10 s); a
	// consumer that takes longer is disconnected as slow_consumer.
	WriteTimeout time.Duration
	// SendBuffer is the kernel send buffer (SO_SNDBUF) set on a stream's
	// connection when the server stores connections with [ConnContext]
	// (default [DefaultSendBuffer], which Linux doubles; negative leaves the kernel's
	// autotuning, up to 4 MiB). It bounds what a consumer that stops
	// reading can hold outside its queue, so WriteTimeout disconnects it.
	SendBuffer int
	// OriginPatterns are the cross-origin hosts allowed to open /v1/ws
	// (websocket.AcceptOptions.OriginPatterns); same-origin always is.
	OriginPatterns []string
	// MaxMessageBytes caps one client WebSocket message (default 16 KiB).
	MaxMessageBytes int64
	// InvalidBurst malformed WebSocket messages are answered with error
	// events (refilled one per second); the next one closes the socket
	// with 1008 (default 10).
	InvalidBurst int
	// Logger receives write failures at Debug (slog.Default if nil).
	Logger *slog.Logger
}

func (o HandlerOptions) withDefaults() HandlerOptions {
	if o.Ping <= 0 {
		o.Ping = 15 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.SendBuffer == 0 {
		o.SendBuffer = DefaultSendBuffer
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 16 << 10
	}
	if o.InvalidBurst <= 0 {
		o.InvalidBurst = 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// NewSSEHandler serves GET /v1/stream?codes=…&kinds=… as Server-Sent
// Events: 400 problems for bad parameters, then a 200 text/event-stream of
// "id:/event:/data:" frames (trade, book, gap, error) flushed as they are
// queued, a ": ping" comment every Ping, and, when the consumer is
// disconnected (slow_consumer, shutdown), a final error event. The
// request's API key (access.FromContext) is charged per code.
//
// It must be mounted without a request timeout: the stream lasts as long
// as the client stays. It clears the server's read and write deadlines
// and sets its own per write.
func NewSSEHandler(h *Hub, o HandlerOptions) http.Handler {
	return &sseHandler{hub: h, o: o.withDefaults()}
}

type sseHandler struct {
	hub *Hub
	o   HandlerOptions
}

func (s *sseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := ParseStreamRequest(r)
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	ctx := r.Context()
	if code := s.hub.unlisted(ctx, p.Codes); code != "" {
		writeProblem(w, r, &ParamError{Param: "codes", Detail: unknownDetail(code)})
		return
	}
	// Subscribe before answering: once a client has its 200, its codes
	// are registered (or refused with error events already queued), so
	// nothing published after that instant is missed.
	c, err := s.hub.Subscribe(ctx, Request{Codes: p.Codes, Kinds: p.Kinds, LastEventID: p.LastEventID,
		Quota: quotaOf(r), Transport: "sse"})
	if err != nil {
		writeProblem(w, r, err)
		return
	}
	defer c.Close()
	limitSendBuffer(ctx, s.o.SendBuffer)
	rc := http.NewResponseController(w)
	// The server's ReadTimeout would cancel the request's context and its
	// WriteTimeout cut the stream: a stream has neither. Writes get their
	// own deadline below. (Unsupported by a recorder: ignored.)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return // the headers say what a GET would stream
	}
	_ = rc.Flush()
	s.loop(ctx, w, rc, c)
}

// DefaultSendBuffer is HandlerOptions.SendBuffer's default: 16 KiB (32 KiB
// in the kernel) holds about 70 events of a few hundred bytes (20 s of a
// consumer of 5 codes at the emulator's pace, well under a second of a
// busy one) and still streams a 20 ms-RTT link at over 1 MB/s, far above
// what 100 codes produce. A consumer that reads nothing is disconnected
// once that buffer and its own receive window are full, plus WriteTimeout.
const DefaultSendBuffer = 16 << 10

var pingFrame = []byte(": ping\n\n")

func (s *sseHandler) loop(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, c *Consumer) {
	h := s.hub
	ping := time.NewTicker(s.o.Ping)
	defer ping.Stop()
	var msgs []*Message
	for {
		var final *Disconnect
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			msgs = msgs[:0]
			if !s.write(w, rc, c, pingFrame) {
				return
			}
			continue
		case <-c.Ready():
			var err error
			if msgs, err = c.Take(msgs[:0]); err != nil {
				errors.As(err, &final)
			}
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
		var werr error
		for _, m := range msgs {
			if _, werr = w.Write(m.SSE()); werr != nil {
				break
			}
		}
		if final != nil && werr == nil {
			now := h.cfg.Clock.Now()
			_, werr = w.Write(errorNotice("", final.Reason, final.Detail, now).SSE())
		}
		if werr == nil {
			werr = rc.Flush()
		}
		if werr != nil {
			s.failed(c, werr)
			return
		}
		if len(msgs) > 0 {
			now := h.cfg.Clock.Now()
			h.obs.Delivered("sse", len(msgs))
			for _, m := range msgs {
				h.obs.Latency("sse", now.Sub(m.Published))
			}
		}
		if final != nil {
			return
		}
	}
}

// write writes one frame and flushes it within the write timeout.
func (s *sseHandler) write(w http.ResponseWriter, rc *http.ResponseController, c *Consumer, b []byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
	_, err := w.Write(b)
	if err == nil {
		err = rc.Flush()
	}
	if err != nil {
		s.failed(c, err)
		return false
	}
	return true
}

// failed ends c after a failed write: a deadline means the client does
// not read (slow_consumer, counted); anything else means it left.
func (s *sseHandler) failed(c *Consumer, err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.Disconnect(ReasonSlowConsumer, "a write took longer than "+s.o.WriteTimeout.String())
	}
	s.o.Logger.Debug("stream write failed", slog.String("transport", "sse"), slog.Any("error", err))
}
