package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// consumer is one stream client of a run: its codes, what it counted and
// how its stream ended. Its fields are written by its own goroutine only
// and read after it has ended.
type consumer struct {
	idx   int
	codes []string
	slow  bool
	run   *streamRun

	connected            bool
	connectedAt, endedAt time.Time
	// end is why the stream ended before the run did ("" when the run
	// ended it: still connected at the end).
	end string
	// lastErrReason is the reason of the last error event, which names
	// the disconnect when the stream then ends.
	lastErrReason string
	firstErr      string

	events    [kindCount]int
	pings     int
	ids       idTracker
	idCounts  [idBad + 1]int // by verdict
	epochs    int
	errEvents map[string]int // by reason; nil until one arrives
	gaps      map[string]int // by reason
}

// Event kinds counted per consumer.
const (
	kindTrade = iota
	kindBook
	kindGap
	kindError
	kindSubscribed
	kindOther
	kindCount
)

var kindNames = [kindCount]string{"trade", "book", "gap", "error", "subscribed", "other"}

func kindOf(name string) int {
	for i, n := range kindNames[:kindOther] {
		if n == name {
			return i
		}
	}
	return kindOther
}

// handle counts one event received at receipt. data is the event's JSON
// (the SSE data, or the WebSocket envelope's data).
func (c *consumer) handle(kind, id string, data []byte, receipt time.Time) {
	k := kindOf(kind)
	c.events[k]++
	switch k {
	case kindGap:
		c.gaps = countReason(c.gaps, data, "gap")
	}
	// An error event names the disconnect only when the stream ends right
	// after it: some (subscription_limit) leave the stream open.
	c.lastErrReason = ""
	if k == kindError {
		c.errEvents = countReason(c.errEvents, data, "error")
		c.lastErrReason = reasonOf(data)
		if c.lastErrReason == "" {
			c.lastErrReason = "error without reason"
		}
	}
	if k == kindSubscribed {
		return
	}
	if id != "" {
		v := c.ids.see(id)
		if v == idNewEpoch {
			c.epochs++
			v = idInOrder
		}
		c.idCounts[v]++
	}
	if (k == kindTrade || k == kindBook) && !c.slow {
		h := c.run.hists
		if t, ok := jsonTime(data, "received_at"); ok {
			h.delivery.record(receipt.Sub(t))
		}
		if t, ok := jsonTime(data, "time"); ok {
			h.endToEnd.record(receipt.Sub(t))
		}
	}
}

func countReason(m map[string]int, data []byte, what string) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	r := reasonOf(data)
	if r == "" {
		r = what + " without reason"
	}
	m[r]++
	return m
}

func reasonOf(data []byte) string {
	var v struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(data, &v)
	return v.Reason
}

// jsonTime finds the string field "key":"..." in a flat JSON object and
// parses it as RFC 3339. A scan, not a decode: events arrive by the ten
// thousand per second on a machine the server shares, and both fields are
// top-level strings without escapes in the contract's event shapes (the
// nested book levels hold only numbers).
func jsonTime(data []byte, key string) (time.Time, bool) {
	var pat [32]byte
	p := append(append(append(pat[:0], '"'), key...), `":"`...)
	i := bytes.Index(data, p)
	if i < 0 {
		return time.Time{}, false
	}
	rest := data[i+len(p):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}

// fail ends the stream with reason, keeping the first error's text.
func (c *consumer) fail(reason string, err error) {
	c.end = reason
	if err != nil && c.firstErr == "" {
		c.firstErr = err.Error()
	}
}

// streamEnded names why a read loop stopped on err: the run ended it
// (""), the server sent an error event then closed, or it closed.
func (c *consumer) streamEnded(ctx context.Context, err error) {
	switch {
	case ctx.Err() != nil:
		if c.slow && c.run.draining(ctx) {
			c.fail("still connected after drain", nil)
		}
	case c.lastErrReason != "" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		c.fail("error event: "+c.lastErrReason, nil)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		c.fail("eof", nil)
	default:
		c.fail("read error", err)
	}
}

// runSSE connects to /v1/stream and reads until the stream or ctx ends.
func (c *consumer) runSSE(ctx context.Context) {
	cfg := c.run.cfg
	q := url.Values{"codes": {strings.Join(c.codes, ",")}, "kinds": {strings.Join(cfg.Kinds, ",")}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Target+"/v1/stream?"+q.Encode(), nil)
	if err != nil {
		c.fail("request", err)
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.run.client(c.slow).Do(req)
	if err != nil {
		c.fail(transportReason(ctx), err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.fail(fmt.Sprintf("http %d", resp.StatusCode), fmt.Errorf("GET /v1/stream: status %d: %s", resp.StatusCode, bytes.TrimSpace(body)))
		return
	}
	c.connect()
	if c.slow && !c.run.stall(ctx) {
		return
	}
	r := newSSEReader(resp.Body)
	for {
		ev, err := r.next()
		if err != nil {
			c.streamEnded(ctx, err)
			return
		}
		if ev.comment {
			if string(ev.data) == "ping" {
				c.pings++
			}
			continue
		}
		// Only an event's own id line counts: one without inherits the
		// previous id, which would read as a repeat.
		id := ""
		if ev.ownID {
			id = ev.id
		}
		c.handle(ev.event, id, ev.data, c.run.cfg.Now())
	}
}

// transportReason names a failed connection: the run ending during the
// handshake is not the server's doing.
func transportReason(ctx context.Context) string {
	if ctx.Err() != nil {
		return ""
	}
	return "connect failed"
}

func (c *consumer) connect() {
	c.connected, c.connectedAt = true, time.Now()
}

// wsEnvelope is a server → client WebSocket message.
type wsEnvelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

// runWS connects to /v1/ws, subscribes, and reads until the connection or
// ctx ends.
func (c *consumer) runWS(ctx context.Context) {
	cfg := c.run.cfg
	conn, resp, err := websocket.Dial(ctx, cfg.Target+"/v1/ws", &websocket.DialOptions{HTTPClient: c.run.client(c.slow)})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			c.fail(fmt.Sprintf("http %d", resp.StatusCode), err)
		} else {
			c.fail(transportReason(ctx), err)
		}
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(sseMaxLine)
	sub, _ := json.Marshal(map[string]any{"op": "subscribe", "codes": c.codes, "kinds": cfg.Kinds})
	if err := conn.Write(ctx, websocket.MessageText, sub); err != nil {
		c.fail("subscribe failed", err)
		return
	}
	c.connect()
	if c.slow && !c.run.stall(ctx) {
		return
	}
	var buf bytes.Buffer
	for {
		_, rd, err := conn.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(rd)
		}
		if err != nil {
			c.wsEnded(ctx, err)
			return
		}
		receipt := cfg.Now()
		var env wsEnvelope
		if err := json.Unmarshal(buf.Bytes(), &env); err != nil {
			c.events[kindOther]++
			continue
		}
		c.handle(env.Type, env.ID, env.Data, receipt)
	}
}

// wsEnded names why a WebSocket read loop stopped: a close frame is
// named by its status and text.
func (c *consumer) wsEnded(ctx context.Context, err error) {
	var ce websocket.CloseError
	if ctx.Err() == nil && errors.As(err, &ce) {
		text := ce.Reason
		if len(text) > 60 {
			text = text[:60]
		}
		c.fail(fmt.Sprintf("close %d: %s", int(ce.Code), text), nil)
		return
	}
	c.streamEnded(ctx, err)
}
