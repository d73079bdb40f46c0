package loadtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeFrame is one thing the fake stream sends: an event, or a ": ping"
// comment when kind is "ping".
type fakeFrame struct {
	kind, id, data string
}

// fakeStream is a small server of the stream contract (stream-spec.md):
// GET /v1/stream (SSE) and GET /v1/ws (WebSocket), plus /metrics. Every
// consumer gets script(codes), then its stream ends as end says:
//
//	"eof"            the server closes the stream (SSE) or the
//	                 connection without a close frame (WebSocket)
//	"hold"           the stream stays open until the consumer leaves
//	"slow"           the slow-consumer cut-off: a final error event
//	                 (reason slow_consumer) then close (SSE), or close
//	                 1008 "slow consumer" (WebSocket)
//
// Consumers for which isSlow(codes) holds are cut off as slow after the
// script whatever end says. status, when set, refuses every stream.
type fakeStream struct {
	t       *testing.T
	script  func(codes []string) []fakeFrame
	end     string
	isSlow  func(codes []string) bool
	status  int
	metrics func(scrape int) string

	scrapes atomic.Int32
	hung    atomic.Int32 // "hold" SSE streams the client has left
	mu      sync.Mutex   // guards seen
	seen    []fakeRequest
}

// fakeRequest is what the fake saw of one consumer.
type fakeRequest struct {
	codes, kinds []string
	auth         string
	ws           bool
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metrics":
		n := int(f.scrapes.Add(1))
		if f.metrics != nil {
			fmt.Fprint(w, f.metrics(n))
		}
	case "/v1/stream":
		f.serveSSE(w, r)
	case "/v1/ws":
		f.serveWS(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeStream) record(req fakeRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, req)
}

func (f *fakeStream) serveSSE(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	codes, kinds := strings.Split(q.Get("codes"), ","), strings.Split(q.Get("kinds"), ",")
	f.record(fakeRequest{codes: codes, kinds: kinds, auth: r.Header.Get("Authorization")})
	if f.status != 0 {
		http.Error(w, `{"title":"refused"}`, f.status)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, fr := range f.script(codes) {
		if fr.kind == "ping" {
			fmt.Fprint(w, ": ping\r\n\r\n") // CRLF, as the format allows
			continue
		}
		if fr.id != "" {
			fmt.Fprintf(w, "id: %s\n", fr.id)
		}
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", fr.kind, fr.data)
	}
	switch {
	case f.isSlow != nil && f.isSlow(codes), f.end == "slow":
		fmt.Fprint(w, `event: error`+"\n"+`data: {"code":"","reason":"slow_consumer","detail":"queue full"}`+"\n\n")
	case f.end == "hold":
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		f.hung.Add(1)
	}
}

func (f *fakeStream) serveWS(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if f.status != 0 {
		f.record(fakeRequest{auth: auth, ws: true})
		http.Error(w, `{"title":"refused"}`, f.status)
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		f.t.Errorf("fake: accept: %v", err)
		return
	}
	defer conn.CloseNow()
	ctx := r.Context()
	var sub struct {
		Op    string   `json:"op"`
		Codes []string `json:"codes"`
		Kinds []string `json:"kinds"`
	}
	_, msg, err := conn.Read(ctx)
	if err != nil || json.Unmarshal(msg, &sub) != nil || sub.Op != "subscribe" {
		f.t.Errorf("fake: subscribe message %q: %v", msg, err)
		return
	}
	f.record(fakeRequest{codes: sub.Codes, kinds: sub.Kinds, auth: auth, ws: true})
	write := func(typ, id, data string) bool {
		env := fmt.Sprintf(`{"type":%q,"id":%q,"data":%s}`, typ, id, data)
		return conn.Write(ctx, websocket.MessageText, []byte(env)) == nil
	}
	if !write("subscribed", "", `{"codes":`+mustJSON(sub.Codes)+`}`) {
		return
	}
	for _, fr := range f.script(sub.Codes) {
		if fr.kind != "ping" && !write(fr.kind, fr.id, fr.data) {
			return
		}
	}
	switch {
	case f.isSlow != nil && f.isSlow(sub.Codes), f.end == "slow":
		// Close waits (up to 5 s) for the consumer's answer, which a
		// slow consumer gives when it drains; off the test's goroutine.
		_ = conn.Close(websocket.StatusPolicyViolation, "slow consumer")
	case f.end == "hold":
		conn.CloseRead(ctx)
		<-ctx.Done()
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Fixed instants of the fake events: with the consumer's clock stopped at
// fakeNow, every event's delivery latency is 5 ms and its end-to-end
// latency 20 ms.
var (
	fakeNow      = time.Date(2026, 3, 3, 10, 0, 0, 0, time.FixedZone("KST", 9*3600))
	fakeReceived = fakeNow.Add(-5 * time.Millisecond).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	fakeTime     = fakeNow.Add(-20 * time.Millisecond).Format(time.RFC3339Nano)
)

// trade returns a trade event's JSON for code.
func trade(code, id string) fakeFrame {
	return fakeFrame{"trade", id, fmt.Sprintf(`{"id":%q,"code":%q,"time":%q,"received_at":%q,"price":71000,"volume":3,"side":"buy"}`,
		id, code, fakeTime, fakeReceived)}
}

// book returns a book event's JSON for code, its levels nested as the
// contract's are.
func book(code, id string) fakeFrame {
	return fakeFrame{"book", id, fmt.Sprintf(`{"id":%q,"code":%q,"time":%q,"received_at":%q,"asks":[{"price":71100,"quantity":5}],"bids":[{"price":71000,"quantity":2}]}`,
		id, code, fakeTime, fakeReceived)}
}

// standardScript is every consumer's script in most tests: a ping, two
// trades and a book, one id sent twice, a gap, one id out of order, and a
// subscription_limit error event that leaves the stream open:
// 6 trades (one a duplicate), 1 book, 1 gap, 1 error, 1 ping.
func standardScript(codes []string) []fakeFrame {
	c := codes[0]
	return []fakeFrame{
		{kind: "ping"},
		trade(c, "e1-1"), book(c, "e1-2"), trade(c, "e1-3"),
		trade(c, "e1-3"), // duplicate
		{"gap", "e1-4", fmt.Sprintf(`{"code":%q,"from":"e0-9","to":"e1-1","reason":"epoch_change"}`, c)},
		trade(c, "e1-6"), trade(c, "e1-5"), // 5 after 6: out of order
		{"error", "", fmt.Sprintf(`{"code":%q,"reason":"subscription_limit","detail":"too many"}`, c)},
		trade(c, "e1-7"),
	}
}

// fakeConfig returns a config against srv with the fake clock, no ramp
// and a duration that bounds a broken test rather than timing a good one.
func fakeConfig(srv string, clients int, ws bool) StreamConfig {
	return StreamConfig{
		Target: srv, Clients: clients, PerClient: 1, WebSocket: ws,
		Codes: []string{"000010", "000020", "000030", "000040"}, Duration: time.Minute,
		Drain: 30 * time.Second, Now: func() time.Time { return fakeNow },
	}
}

// runFake runs cfg and fails the test on an error.
func runFake(t *testing.T, cfg StreamConfig) StreamResult {
	t.Helper()
	r, err := RunStream(t.Context(), cfg)
	if err != nil {
		t.Fatalf("RunStream: %v", err)
	}
	return r
}
