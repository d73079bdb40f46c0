package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fixtures holds testdata/websocket_messages.json (a copy of
// ../shared/kis/fixtures; TestFixtureCopies keeps it equal).
type fixtures struct {
	SubscribeRequest   json.RawMessage `json:"subscribe_request"`
	UnsubscribeRequest json.RawMessage `json:"unsubscribe_request"`
	SubscribeOK        json.RawMessage `json:"subscribe_response_ok"`
	PingPong           json.RawMessage `json:"pingpong"`
	Trade1             string          `json:"frame_H0STCNT0_count1"`
	Trade2             string          `json:"frame_H0STCNT0_count2"`
	Book               string          `json:"frame_H0STASP0"`
}

func loadFixtures(tb testing.TB) fixtures {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "websocket_messages.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var f fixtures
	if err := json.Unmarshal(b, &f); err != nil {
		tb.Fatal(err)
	}
	return f
}

// fakeKIS is a small KIS stand-in: /oauth2/Approval and a WebSocket at
// /tryitout speaking the reference's wire format (REFERENCE §b.3, §h):
// subscribe replies with real msg_cd/msg1, 41 registrations per session
// (OPSP0008), one session per app key (OPSP8996), unknown approval keys
// refused (OPSP0011).
type fakeKIS struct {
	srv   *httptest.Server
	conns chan *fakeConn // every accepted session

	mu       sync.Mutex
	keys     map[string]string    // guarded by mu: approval key → app key
	issued   map[string]int       // guarded by mu: app key → issuances
	live     map[string]*fakeConn // guarded by mu: app key → its session
	busy     map[string]bool      // guarded by mu: app key held elsewhere (OPSP8996)
	refuse   int                  // guarded by mu: refuse this many approval keys (OPSP0011)
	lastBody map[string]any       // guarded by mu: the last Approval request body
}

func newFakeKIS(t *testing.T) *fakeKIS {
	t.Helper()
	f := &fakeKIS{conns: make(chan *fakeConn, 64), keys: map[string]string{}, issued: map[string]int{},
		live: map[string]*fakeConn{}, busy: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/Approval", f.approval)
	mux.HandleFunc("/tryitout", f.accept)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKIS) wsURL() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/tryitout" }

func (f *fakeKIS) approval(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	app, _ := body["appkey"].(string)
	secret, _ := body["secretkey"].(string)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastBody = body
	if app == "" || secret == "" || body["grant_type"] != "client_credentials" {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error_code":"EGW00103","error_description":"유효하지 않은 AppKey입니다."}`)
		return
	}
	f.issued[app]++
	key := fmt.Sprintf("%s-approval-%d", app, f.issued[app])
	f.keys[key] = app
	fmt.Fprintf(w, `{"approval_key":%q}`, key)
}

func (f *fakeKIS) issuedFor(app string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[app]
}

// fakeConn is one accepted session.
type fakeConn struct {
	f      *fakeKIS
	ws     *websocket.Conn
	msgs   chan subscribeRequest // subscribe/unsubscribe messages, after the reply
	echoes chan string           // PINGPONG texts the client sent back
	done   chan struct{}

	mu   sync.Mutex
	app  string       // guarded by mu: the app key, from the first subscribe
	regs map[reg]bool // guarded by mu
}

func (f *fakeKIS) accept(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c := &fakeConn{f: f, ws: ws, msgs: make(chan subscribeRequest, 512), echoes: make(chan string, 16),
		done: make(chan struct{}), regs: map[reg]bool{}}
	f.conns <- c
	defer close(c.done)
	defer c.release()
	ctx := r.Context()
	for {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if strings.Contains(string(msg), `"PINGPONG"`) {
			c.echoes <- string(msg)
			continue
		}
		var req subscribeRequest
		if json.Unmarshal(msg, &req) != nil {
			continue
		}
		c.reply(ctx, req)
		c.msgs <- req
	}
}

// release frees the app key when the session ends.
func (c *fakeConn) release() {
	c.mu.Lock()
	app := c.app
	c.mu.Unlock()
	c.f.mu.Lock()
	if c.f.live[app] == c {
		delete(c.f.live, app)
	}
	c.f.mu.Unlock()
}

// reply answers one subscribe/unsubscribe as KIS does.
func (c *fakeConn) reply(ctx context.Context, req subscribeRequest) {
	in := req.Body.Input
	r := reg{code: in.TrKey, tr: in.TrID}
	f := c.f
	f.mu.Lock()
	app, known := f.keys[req.Header.ApprovalKey]
	if known && f.refuse > 0 {
		f.refuse--
		delete(f.keys, req.Header.ApprovalKey)
		known = false
	}
	holder := f.live[app]
	busy := f.busy[app]
	if known && holder == nil && !busy {
		f.live[app] = c
		holder = c
	}
	f.mu.Unlock()
	code, text := "OPSP0000", "SUBSCRIBE SUCCESS"
	c.mu.Lock()
	switch {
	case !known:
		code, text = "OPSP0011", "invalid approval : NOT FOUND"
	case busy || holder != c:
		code, text = "OPSP8996", "ALREADY IN USE appkey"
	case req.Header.TrType == "2":
		code, text = "OPSP0001", "UNSUBSCRIBE SUCCESS"
		delete(c.regs, r)
	case c.regs[r]:
		code, text = "OPSP0002", "ALREADY IN SUBSCRIBE"
	case len(c.regs) >= MaxRegistrations:
		code, text = "OPSP0008", "MAX SUBSCRIBE OVER"
	default:
		c.regs[r] = true
	}
	if known {
		c.app = app
	}
	c.mu.Unlock()
	rt := "1"
	if code == "OPSP0000" || code == "OPSP0001" {
		rt = "0"
	}
	out := fmt.Sprintf(`{"header":{"tr_id":%q,"tr_key":%q,"encrypt":"N"},"body":{"rt_cd":%q,"msg_cd":%q,"msg1":%q`,
		in.TrID, in.TrKey, rt, code, text)
	if code == "OPSP0000" {
		out += `,"output":{"iv":"0123456789abcdef","key":"0123456789abcdef0123456789abcdef"}`
	}
	_ = c.ws.Write(ctx, websocket.MessageText, []byte(out+"}}"))
}

func (c *fakeConn) registrations() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.regs)
}

// send writes one text message to the client.
func (c *fakeConn) send(t testing.TB, msg string) {
	t.Helper()
	if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("fake send: %v", err)
	}
}

// drop ends the session abruptly: no close frame (the client sees 1006).
func (c *fakeConn) drop() { c.ws.CloseNow() }

// waitTimeout guards channel waits so a broken client fails the test
// instead of hanging it; nothing sleeps.
const waitTimeout = 10 * time.Second

func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// nextConn waits for the next accepted session.
func (f *fakeKIS) nextConn(t testing.TB) *fakeConn {
	t.Helper()
	return recv(t, f.conns, "a session")
}

// awaitSubs reads n subscribe messages of c.
func (c *fakeConn) awaitSubs(t testing.TB, n int) []subscribeRequest {
	t.Helper()
	out := make([]subscribeRequest, 0, n)
	for range n {
		out = append(out, recv(t, c.msgs, fmt.Sprintf("subscribe message %d of %d", len(out)+1, n)))
	}
	return out
}

// events is a Handler collecting events on a channel.
func eventSink(n int) (Handler, chan Event) {
	ch := make(chan Event, n)
	return func(e Event) { ch <- e }, ch
}

// obsRecorder is an Observer that forwards reconnect reasons and counts
// parse errors by reason.
type obsRecorder struct {
	NopObserver
	reconnects chan string
	mu         sync.Mutex
	parse      map[string]int
	frames     map[string]int
}

func newObs() *obsRecorder {
	return &obsRecorder{reconnects: make(chan string, 64), parse: map[string]int{}, frames: map[string]int{}}
}

func (o *obsRecorder) Reconnect(key, reason string) { o.reconnects <- key + ":" + reason }
func (o *obsRecorder) ParseError(reason string) {
	o.mu.Lock()
	o.parse[reason]++
	o.mu.Unlock()
}
func (o *obsRecorder) Frame(tr string, n int) {
	o.mu.Lock()
	o.frames[tr] += n
	o.mu.Unlock()
}

// fastOpts are the options every live test uses: no real waits.
func fastOpts(extra ...Option) []Option {
	return append([]Option{
		WithBackoff(Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}),
		WithSubscribePace(1e6, 1000),
	}, extra...)
}

// startClient builds a client on f with keys app1…appN and runs it until
// the test ends.
func startClient(t *testing.T, f *fakeKIS, nkeys int, cfg Config, opts ...Option) *Client {
	t.Helper()
	for i := range nkeys {
		cfg.Keys = append(cfg.Keys, Credentials{AppKey: fmt.Sprintf("app%d", i+1), AppSecret: "secret"})
	}
	cfg.RESTBaseURL, cfg.WSURL = f.srv.URL, f.wsURL()
	c, err := New(cfg, fastOpts(opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

// TestFixtureCopies checks testdata against ../shared/kis/fixtures when
// that directory sits beside the module (as in CI).
func TestFixtureCopies(t *testing.T) {
	shared := filepath.Join("..", "..", "..", "shared", "kis", "fixtures")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("no shared fixtures at %s", shared)
	}
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		got, _ := os.ReadFile(filepath.Join("testdata", e.Name()))
		want, err := os.ReadFile(filepath.Join(shared, e.Name()))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: testdata copy differs from %s (%v)", e.Name(), shared, err)
		}
	}
}
