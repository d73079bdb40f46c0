package fanout

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/access"
	"github.com/kisfeed/kisfeed/kis/stream"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestParseStreamRequest: bad parameters are 400 problems naming the
// parameter.
func TestParseStreamRequest(t *testing.T) {
	t.Parallel()
	many := make([]string, 101)
	for i := range many {
		many[i] = "0" + strings.Repeat("0", 1) + string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10)) + "0"
	}
	tests := []struct {
		name, query, lastID string
		param               string // "" = valid
		detail              string
	}{
		{"valid", "codes=005930,000660&kinds=trade", "", "", ""},
		{"valid, kinds default, dupes", "codes=005930,005930&codes=0088M0", "", "", ""},
		{"valid resume", "codes=005930", "e1-42", "", ""},
		{"no codes", "kinds=trade", "", "codes", "want 1 to 100"},
		{"empty codes", "codes=", "", "codes", "want 6 characters"},
		{"bad code", "codes=005930,59300", "", "codes", `stock code "59300"`},
		{"101 codes", "codes=" + strings.Join(many, ","), "", "codes", "more than 100 codes"},
		{"unknown kind", "codes=005930&kinds=trade,quote", "", "kinds", `kind "quote"`},
		{"unknown parameter", "codes=005930&code=000660", "", "code", "unknown parameter"},
		{"bad Last-Event-ID", "codes=005930", "42", "Last-Event-ID", "want <epoch>-<seq>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := testHub(t, Config{})
			r := httptest.NewRequest(http.MethodGet, "/v1/stream?"+tt.query, nil)
			if tt.lastID != "" {
				r.Header.Set("Last-Event-ID", tt.lastID)
			}
			_, err := ParseStreamRequest(r)
			if tt.param == "" {
				if err != nil {
					t.Fatalf("ParseStreamRequest: %v", err)
				}
				return
			}
			w := httptest.NewRecorder()
			NewSSEHandler(h, HandlerOptions{}).ServeHTTP(w, r)
			var p problem
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/problem+json" ||
				p.Param != tt.param || !strings.Contains(p.Detail, tt.detail) || p.Type != "/problems/invalid-parameter" {
				t.Errorf("got %d %s %+v; want 400 problem, param %q, detail with %q", w.Code, w.Header().Get("Content-Type"), p, tt.param, tt.detail)
			}
		})
	}
}

// sseClient reads frames (the text up to each blank line) from a
// stream.
type sseClient struct {
	resp *http.Response
	sc   *bufio.Scanner
}

func openSSE(t *testing.T, url string, header http.Header) *sseClient {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseClient{resp: resp, sc: bufio.NewScanner(resp.Body)}
}

// frame returns the next frame ("" at the end of the stream).
func (c *sseClient) frame() string {
	var b strings.Builder
	for c.sc.Scan() {
		if c.sc.Text() == "" {
			return b.String()
		}
		b.WriteString(c.sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}

// watchSubscribes returns a channel that gets a token each time a
// consumer's subscription took effect. Call it before serving.
func watchSubscribes(h *Hub) <-chan struct{} {
	ch := make(chan struct{}, 1000)
	h.onSubscribe = func() { ch <- struct{}{} }
	return ch
}

// TestSSEGolden: the frames of a stream (events, a refusal, the final
// error on shutdown) match testdata/sse.golden.
func TestSSEGolden(t *testing.T) {
	t.Parallel()
	d := newFakeDemand()
	d.refuse = func(code string, _ stream.Kind) error {
		if code == "035720" {
			return limitErr()
		}
		return nil
	}
	h, _ := testHub(t, Config{Demand: d})
	subscribed := watchSubscribes(h)
	srv := httptest.NewServer(NewSSEHandler(h, HandlerOptions{Ping: time.Hour}))
	t.Cleanup(srv.Close)
	c := openSSE(t, srv.URL+"/v1/stream?codes=005930,035720&kinds=trade,book", nil)
	<-subscribed
	h.Publish(trade("005930", 71000, t0))
	h.Publish(book("005930", 71100, t0))
	h.Publish(gap("005930", t0, t0.Add(2*time.Second)))
	var got strings.Builder
	for range 4 {
		got.WriteString(c.frame())
		got.WriteString("\n")
	}
	h.Close()
	got.WriteString(c.frame())
	golden(t, "sse.golden", got.String())
}

// TestSSEResume: a reconnect with Last-Event-ID gets the missed events.
func TestSSEResume(t *testing.T) {
	t.Parallel()
	h, _ := testHub(t, Config{})
	srv := httptest.NewServer(NewSSEHandler(h, HandlerOptions{Ping: time.Hour}))
	t.Cleanup(srv.Close)
	for i := range 3 {
		h.Publish(trade("005930", int64(i), t0))
	}
	c := openSSE(t, srv.URL+"/v1/stream?codes=005930", http.Header{"Last-Event-Id": {"e1-1"}})
	for _, want := range []string{"id: e1-2\nevent: trade\n", "id: e1-3\nevent: trade\n"} {
		if f := c.frame(); !strings.HasPrefix(f, want) {
			t.Errorf("frame %q, want it to start %q", f, want)
		}
	}
}

// TestSSESlowConsumer: a consumer whose writes block is disconnected
// when its queue overflows, gets a final error event, and is counted;
// Publish never waits for it.
func TestSSESlowConsumer(t *testing.T) {
	t.Parallel()
	obs := newCountObserver()
	h, _ := testHub(t, Config{QueueSize: 4, Observer: obs})
	subscribed := watchSubscribes(h)
	w := &blockingWriter{header: http.Header{}, unblock: make(chan struct{}), wrote: make(chan struct{}, 100)}
	r := httptest.NewRequest(http.MethodGet, "/v1/stream?codes=005930", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewSSEHandler(h, HandlerOptions{Ping: time.Hour}).ServeHTTP(w, r)
	}()
	<-subscribed
	h.Publish(trade("005930", 0, t0))
	<-w.wrote // the writer is now stuck in its first write
	for i := range 10 {
		h.Publish(trade("005930", int64(i+1), t0))
	}
	close(w.unblock)
	<-done
	out := w.body()
	if !strings.HasSuffix(out, "event: error\ndata: {\"reason\":\"slow_consumer\",\"detail\":\"the queue of 4 events is full: read faster or subscribe to fewer codes\"}\n\n") {
		t.Errorf("stream ends %q, want the slow_consumer error event", out[max(0, len(out)-200):])
	}
	if obs.disconnectsOf(ReasonSlowConsumer) != 1 {
		t.Errorf("slow disconnects %d, want 1", obs.disconnectsOf(ReasonSlowConsumer))
	}
}

// blockingWriter is a ResponseWriter whose first event write blocks
// until unblock is closed.
type blockingWriter struct {
	mu      sync.Mutex
	header  http.Header
	buf     strings.Builder
	unblock chan struct{}
	wrote   chan struct{}
	blocked bool
}

func (w *blockingWriter) Header() http.Header { return w.header }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Flush()              {}
func (w *blockingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	first := !w.blocked
	w.blocked = true
	w.mu.Unlock()
	if first {
		w.wrote <- struct{}{}
		<-w.unblock
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.WriteString(string(b))
}
func (w *blockingWriter) body() string { w.mu.Lock(); defer w.mu.Unlock(); return w.buf.String() }

// TestSSEOutlivesServerTimeouts: a stream on a server with short read
// and write timeouts keeps going past them (pings arrive well after).
func TestSSEOutlivesServerTimeouts(t *testing.T) {
	t.Parallel()
	h, _ := testHub(t, Config{})
	// Timeouts long enough that a loaded -race run still sends the request
	// within them; the stream then runs four times as long.
	srv := httptest.NewUnstartedServer(NewSSEHandler(h, HandlerOptions{Ping: 50 * time.Millisecond}))
	srv.Config.ReadTimeout = 250 * time.Millisecond
	srv.Config.WriteTimeout = 250 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	c := openSSE(t, srv.URL+"/v1/stream?codes=005930", nil)
	start := time.Now()
	pings := 0
	for time.Since(start) < time.Second {
		if f := c.frame(); f != ": ping\n" {
			t.Fatalf("frame %q after %s, want a ping (the stream died)", f, time.Since(start))
		}
		pings++
	}
	if pings < 5 {
		t.Errorf("%d pings in 1 s, want ≥ 5", pings)
	}
}

// TestSSEQuota: the request's API key (from the context) is charged per
// code and refunded when the stream ends.
func TestSSEQuota(t *testing.T) {
	t.Parallel()
	key := access.Key{Name: "k", Hash: sha256.Sum256([]byte("secret")), Scopes: []access.Scope{access.ScopeData},
		Quota: access.Quota{StreamCodes: 1}}
	p := access.New([]access.Key{key}).Authenticate("secret")
	h, _ := testHub(t, Config{})
	subscribed := watchSubscribes(h)
	w := &blockingWriter{header: http.Header{}, unblock: make(chan struct{}), wrote: make(chan struct{}, 100)}
	close(w.unblock)
	ctx, cancel := context.WithCancel(access.NewContext(context.Background(), p))
	r := httptest.NewRequest(http.MethodGet, "/v1/stream?codes=005930,000660", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewSSEHandler(h, HandlerOptions{Ping: time.Hour}).ServeHTTP(w, r)
	}()
	<-subscribed
	if err := p.AcquireCodes(1); err == nil {
		t.Error("the key had room for another code while streaming its limit")
	}
	cancel()
	<-done
	if !strings.Contains(w.body(), `"reason":"quota"`) {
		t.Errorf("body %q lacks a quota error event", w.body())
	}
	if err := p.AcquireCodes(1); err != nil {
		t.Errorf("after the stream ended: %v, want the quota back", err)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}
