package kis

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/kisfeed/kisfeed/internal/clocktest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testKey    = "PSTESTAPPKEY0000000000000000000000AA"
	testSecret = "SECRETSECRETsecret+/SECRETSECRETsecret+/SECRETSECRETsecret+/SECRETSECRET"
	testToken  = "eyJTESTTOKENVALUE.payload.signature"
)

// fixture reads testdata/name.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeKIS is a minimal KIS server: tokenP/revokeP plus per-path handlers.
// Its base URL has a path prefix so absolute-path bugs surface.
type fakeKIS struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	handlers  map[string]http.HandlerFunc // guarded by mu
	calls     map[string]int              // guarded by mu: path → count
	tokens    int                         // guarded by mu: tokenP calls
	revoked   int                         // guarded by mu
	tokenFunc http.HandlerFunc            // guarded by mu: overrides tokenP
	revokeFn  http.HandlerFunc            // guarded by mu: overrides revokeP
	revokeReq map[string]string           // guarded by mu: last revokeP body
	open      bool                        // guarded by mu: handlers need no token
	lastHdr   http.Header                 // guarded by mu
	lastQuery map[string][]string         // guarded by mu
}

const prefix = "/kisprefix"

func newFake(t testing.TB) *fakeKIS {
	t.Helper()
	f := &fakeKIS{t: t, handlers: map[string]http.HandlerFunc{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKIS) url() string { return f.srv.URL + prefix }

func (f *fakeKIS) handle(path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[path] = h
}

// fixed serves a fixture file for path.
func (f *fakeKIS) fixed(path, name string) {
	b := fixture(f.t, name)
	f.handle(path, func(w http.ResponseWriter, r *http.Request) { w.Write(b) })
}

func (f *fakeKIS) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *fakeKIS) tokenCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens
}

func (f *fakeKIS) serve(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		http.Error(w, "no prefix", http.StatusNotFound)
		return
	}
	f.mu.Lock()
	f.calls[path]++
	f.lastHdr = r.Header.Clone()
	f.lastQuery = r.URL.Query()
	h := f.handlers[path]
	tf := f.tokenFunc
	rf := f.revokeFn
	open := f.open
	switch path {
	case "/oauth2/tokenP":
		f.tokens++
	case "/oauth2/revokeP":
		f.revoked++
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		f.revokeReq = body
	}
	f.mu.Unlock()
	switch {
	case path == "/oauth2/revokeP" && rf != nil:
		rf(w, r)
	case path == "/oauth2/tokenP" && tf != nil:
		tf(w, r)
	case path == "/oauth2/tokenP":
		writeToken(w, testToken, 86400)
	case path == "/oauth2/revokeP":
		w.Write([]byte(`{"code":200,"message":"접근토큰 폐기에 성공하였습니다"}`))
	case h != nil:
		if r.Header.Get("authorization") == "" && !open {
			w.WriteHeader(500)
			w.Write([]byte(`{"rt_cd":"1","msg_cd":"EGW00121","msg1":"유효하지 않은 token 입니다."}`))
			return
		}
		h(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func writeToken(w http.ResponseWriter, tok string, ttl int) {
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": ttl,
	})
}

// testClient builds a fast client against base: memory token store, no
// pacing to speak of, quick retries.
func testClient(t testing.TB, base string, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{
		WithBaseURL(base), WithAppKey(testKey, testSecret),
		WithTokenStore(NewMemoryTokenStore()), WithRateLimit(10000),
		WithRetry(3, time.Millisecond, 5*time.Millisecond), WithMasterURL(base),
	}, opts...)
	c, err := NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// logBuffer is a concurrency-safe buffer for a debug-level text logger.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// errBody answers with a KIS error body and status.
func errBody(status int, msgCd, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"rt_cd": "1", "msg_cd": msgCd, "msg1": msg})
	}
}

// sequence answers with each handler in turn, repeating the last.
func sequence(hs ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	i := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hs[min(i, len(hs)-1)]
		i++
		mu.Unlock()
		h(w, r)
	}
}

var _ = io.Discard
var _ = context.Background

// fakeClock is the shared settable test clock, plus install.
type fakeClock struct{ *clocktest.Clock }

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{clocktest.New(t)} }

// install makes c use the fake clock for time and for issuance waits.
func (c *fakeClock) install(cl *Client) {
	cl.now = c.Now
	cl.sleep = func(ctx context.Context, d time.Duration) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.Advance(d)
		return nil
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func nopBody(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
