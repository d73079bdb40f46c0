package kis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

const pricePath = "/uapi/domestic-stock/v1/quotations/inquire-price"

// tokenGated serves the price fixture only to the token want; anything
// else gets EGW00123 with HTTP 500, as KIS does.
func tokenGated(t testing.TB, want string) http.HandlerFunc {
	b := fixture(t, "inquire-price.json")
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("authorization") != "Bearer "+want {
			errBody(500, "EGW00123", "기간이 만료된 token 입니다.")(w, r)
			return
		}
		w.Write(b)
	}
}

func tokenIssuer(tok string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeToken(w, tok, 86400) }
}

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 5, 20, 9, 0, 0, 0, kisfeed.KST)
	tests := []struct {
		name       string
		stored     *Token // in the store before the first call
		serverTok  string // the only token the data endpoint accepts
		issueTok   string // what tokenP hands out
		wantIssues int
		wantWait   bool // the client had to wait out the issuance interval
	}{
		{"lazy first issuance", nil, "new", "new", 1, false},
		{"stored token reused", &Token{Value: "old", Expires: start.Add(5 * time.Hour), IssuedAt: start.Add(-time.Hour)}, "old", "new", 0, false},
		{"within margin renewed", &Token{Value: "old", Expires: start.Add(5 * time.Minute), IssuedAt: start.Add(-23 * time.Hour)}, "new", "new", 1, false},
		{"within margin but issued 30 s ago kept", &Token{Value: "old", Expires: start.Add(5 * time.Minute), IssuedAt: start.Add(-30 * time.Second)}, "old", "new", 0, false},
		{"expired in store renewed", &Token{Value: "old", Expires: start.Add(-time.Minute), IssuedAt: start.Add(-25 * time.Hour)}, "new", "new", 1, false},
		{"refused token refreshed and replayed", &Token{Value: "old", Expires: start.Add(5 * time.Hour), IssuedAt: start.Add(-2 * time.Hour)}, "new", "new", 1, false},
		{"refused token issued 10 s ago waits the minute", &Token{Value: "old", Expires: start.Add(5 * time.Hour), IssuedAt: start.Add(-10 * time.Second)}, "new", "new", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.handle(pricePath, tokenGated(t, tt.serverTok))
			f.mu.Lock()
			f.tokenFunc = tokenIssuer(tt.issueTok)
			f.mu.Unlock()
			store := NewMemoryTokenStore()
			c := testClient(t, f.url(), WithTokenStore(store))
			clk := newFakeClock(start)
			clk.install(c)
			if tt.stored != nil {
				store.Save(t.Context(), c.storeID, tt.stored)
			}
			if _, _, err := c.Price(t.Context(), "000660"); err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if got := f.tokenCalls(); got != tt.wantIssues {
				t.Errorf("issuance calls: got %d, want %d", got, tt.wantIssues)
			}
			waited := clk.Now().Sub(start) > 0
			if waited != tt.wantWait {
				t.Errorf("waited for issuance interval: got %v, want %v", waited, tt.wantWait)
			}
			if tt.wantIssues > 0 {
				saved, _ := store.Load(t.Context(), c.storeID)
				if saved == nil || saved.Value != tt.issueTok || !saved.IssuedAt.Equal(clk.Now()) {
					t.Errorf("store: got %v, want the issued token at %s", saved, clk.Now())
				}
			}
		})
	}
}

func TestTokenIssueTooSoon(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 5, 20, 9, 0, 0, 0, kisfeed.KST)
	tooSoon := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(403)
		w.Write(fixture(t, "oauth2_tokenP.error_EGW00133.json"))
	}
	t.Run("no token: waits a minute and retries", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.handle(pricePath, tokenGated(t, "new"))
		f.mu.Lock()
		f.tokenFunc = sequence(tooSoon, tokenIssuer("new"))
		f.mu.Unlock()
		c := testClient(t, f.url())
		clk := newFakeClock(start)
		clk.install(c)
		if _, _, err := c.Price(t.Context(), "000660"); err != nil {
			t.Fatal(err)
		}
		if got := clk.Now().Sub(start); got != TokenIssueInterval {
			t.Errorf("waited %s, want %s", got, TokenIssueInterval)
		}
	})
	t.Run("valid token within margin is kept", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.handle(pricePath, tokenGated(t, "old"))
		f.mu.Lock()
		f.tokenFunc = tooSoon
		f.mu.Unlock()
		store := NewMemoryTokenStore()
		c := testClient(t, f.url(), WithTokenStore(store))
		newFakeClock(start).install(c)
		store.Save(t.Context(), c.storeID, &Token{Value: "old", Expires: start.Add(time.Minute), IssuedAt: start.Add(-24 * time.Hour)})
		if _, _, err := c.Price(t.Context(), "000660"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("always refused surfaces ErrTokenIssueTooSoon", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.mu.Lock()
		f.tokenFunc = tooSoon
		f.mu.Unlock()
		c := testClient(t, f.url())
		newFakeClock(start).install(c)
		_, err := c.Token(t.Context())
		if !errors.Is(err, ErrTokenIssueTooSoon) {
			t.Fatalf("got %v, want ErrTokenIssueTooSoon", err)
		}
		if f.tokenCalls() != 2 {
			t.Errorf("issuance calls: got %d, want 2 (one wait in between)", f.tokenCalls())
		}
	})
}

func TestTokenExpiryFields(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 5, 20, 9, 0, 0, 0, kisfeed.KST)
	tests := []struct {
		name    string
		body    string
		want    time.Time
		wantErr string
	}{
		{"expires_in", `{"access_token":"a","token_type":"Bearer","expires_in":3600}`, start.Add(time.Hour), ""},
		{"earlier KST expiry wins", `{"access_token":"a","expires_in":86400,"access_token_token_expired":"2026-05-20 12:00:00"}`, start.Add(3 * time.Hour), ""},
		{"later KST expiry ignored", `{"access_token":"a","expires_in":3600,"access_token_token_expired":"2026-05-21 12:00:00"}`, start.Add(time.Hour), ""},
		{"no lifetime: 24 h", `{"access_token":"a"}`, start.Add(24 * time.Hour), ""},
		{"bad expiry", `{"access_token":"a","access_token_token_expired":"tomorrow"}`, time.Time{}, "access_token_token_expired"},
		{"no token", `{"token_type":"Bearer"}`, time.Time{}, "no access_token"},
		{"expires_in string", `{"access_token":"a","expires_in":"x"}`, time.Time{}, "expires_in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.mu.Lock()
			f.tokenFunc = func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(tt.body)) }
			f.mu.Unlock()
			c := testClient(t, f.url())
			newFakeClock(start).install(c)
			tok, err := c.Token(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tok.Expires.Equal(tt.want) {
				t.Errorf("expires: got %s, want %s", tok.Expires, tt.want)
			}
			if tok.Type != "Bearer" {
				t.Errorf("type: got %q, want Bearer", tok.Type)
			}
		})
	}
}

func TestTokenRequestBody(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var got map[string]string
	f.mu.Lock()
	f.tokenFunc = func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		writeToken(w, "a", 86400)
	}
	f.mu.Unlock()
	c := testClient(t, f.url())
	if _, err := c.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"grant_type": "client_credentials", "appkey": testKey, "appsecret": testSecret}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tokenP body: got %v, want %v", got, want)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var body map[string]string
	f.handle(pricePath, tokenGated(t, testToken))
	store := NewMemoryTokenStore()
	c := testClient(t, f.url(), WithTokenStore(store))
	start := time.Date(2026, 5, 20, 9, 0, 0, 0, kisfeed.KST)
	clk := newFakeClock(start)
	clk.install(c)
	// Nothing to revoke yet: no call.
	if err := c.Revoke(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Price(t.Context(), "000660"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	revokedBefore := f.revoked
	f.mu.Unlock()
	if err := c.Revoke(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	revoked := f.revoked - revokedBefore
	body = f.revokeReq
	f.mu.Unlock()
	if revoked != 1 || body["token"] != testToken || body["appkey"] != testKey {
		t.Errorf("revokeP: got %d calls, body keys %d", revoked, len(body))
	}
	saved, _ := store.Load(t.Context(), c.storeID)
	if saved == nil || saved.Value != "" || !saved.IssuedAt.Equal(start) {
		t.Errorf("store after revoke: got %v, want a valueless record keeping IssuedAt", saved)
	}
	// The next call must wait out the issuance minute, then issue.
	if _, _, err := c.Price(t.Context(), "000660"); err != nil {
		t.Fatal(err)
	}
	if got := clk.Now().Sub(start); got != TokenIssueInterval {
		t.Errorf("waited %s before reissuing, want %s", got, TokenIssueInterval)
	}
	// Revoke refused by the server.
	f.mu.Lock()
	f.revokeFn = func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"code":500,"message":"폐기 실패"}`))
	}
	f.mu.Unlock()
	if err := c.Revoke(t.Context()); err == nil || !strings.Contains(err.Error(), "code 500") {
		t.Errorf("got %v, want a code 500 error", err)
	}
}

func TestSharedStoreOneIssuance(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fixed(pricePath, "inquire-price.json")
	store, err := NewFileTokenStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		c := testClient(t, f.url(), WithTokenStore(store))
		wg.Go(func() {
			if _, _, err := c.Price(t.Context(), "000660"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := f.tokenCalls(); got != 1 {
		t.Errorf("issuance calls across 4 clients sharing a store: got %d, want 1", got)
	}
}

func TestTokenRedaction(t *testing.T) {
	t.Parallel()
	tok := Token{Value: testToken, Type: "Bearer", Expires: time.Unix(0, 0)}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "t", tok)
	out := fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, &tok) + b.String()
	if strings.Contains(out, testToken) {
		t.Errorf("token value printed: %s", out)
	}
}

func TestFileTokenStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "tokens.json")
	s, err := NewFileTokenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("path: got %s", s.Path())
	}
	ctx := t.Context()
	if tok, err := s.Load(ctx, "a"); tok != nil || err != nil {
		t.Fatalf("empty store: got %v %v, want nil nil", tok, err)
	}
	want := &Token{Value: "v", Type: "Bearer", Expires: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), IssuedAt: time.Date(2026, 1, 1, 3, 4, 5, 0, time.UTC)}
	if err := s.Save(ctx, "a", want); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "b", &Token{Value: "w"}); err != nil {
		t.Fatal(err)
	}
	// A second store on the same file (a restart) sees both.
	s2, _ := NewFileTokenStore(path)
	got, err := s2.Load(ctx, "a")
	if err != nil || got.Value != want.Value || !got.Expires.Equal(want.Expires) || !got.IssuedAt.Equal(want.IssuedAt) {
		t.Errorf("reload: got %v %v, want %v", got, err, want)
	}
	if got, _ := s2.Load(ctx, "b"); got == nil || got.Value != "w" {
		t.Errorf("reload b: got %v", got)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode: got %v %v, want 0600", st.Mode().Perm(), err)
	}
	if err := s.Save(ctx, "a", nil); err == nil {
		t.Error("save nil: want an error")
	}
	// Corrupt file: treated as empty.
	os.WriteFile(path, []byte("{not json"), 0o600)
	if tok, err := s.Load(ctx, "a"); tok != nil || err != nil {
		t.Errorf("corrupt: got %v %v, want nil nil", tok, err)
	}
	os.WriteFile(path, nil, 0o600)
	if tok, err := s.Load(ctx, "a"); tok != nil || err != nil {
		t.Errorf("empty file: got %v %v, want nil nil", tok, err)
	}
	if _, err := NewFileTokenStore(""); err == nil {
		t.Error("empty path: want an error")
	}
	if _, err := NewFileTokenStore(filepath.Join(path+".lock-is-not-a-dir", "x", "y")); err != nil {
		t.Logf("nested path: %v", err)
	}
}

func TestStoreLocks(t *testing.T) {
	t.Parallel()
	fs, err := NewFileTokenStore(filepath.Join(t.TempDir(), "t.json"))
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]TokenStore{"file": fs, "memory": NewMemoryTokenStore()}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			unlock, err := s.Lock(t.Context(), "id")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
			defer cancel()
			if _, err := s.Lock(ctx, "id"); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("second lock while held: got %v, want DeadlineExceeded", err)
			}
			unlock()
			unlock2, err := s.Lock(t.Context(), "id")
			if err != nil {
				t.Fatalf("lock after unlock: %v", err)
			}
			unlock2()
		})
	}
	if err := NewMemoryTokenStore().Save(t.Context(), "x", nil); err == nil {
		t.Error("memory save nil: want an error")
	}
}

func TestCurrentTokenAndIssuanceWaitLog(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(pricePath, tokenGated(t, testToken))
	var logs logBuffer
	// Info level, as the commands log: the wait must show there.
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c := testClient(t, f.url(), WithLogger(logger))
	clk := newFakeClock(time.Date(2026, 5, 20, 9, 0, 0, 0, kisfeed.KST))
	clk.install(c)
	if tok, err := c.CurrentToken(t.Context()); tok != nil || err != nil {
		t.Fatalf("CurrentToken before any call: got %v, %v; want nil, nil", tok, err)
	}
	if _, _, err := c.Price(t.Context(), "000660"); err != nil {
		t.Fatal(err)
	}
	if tok, err := c.CurrentToken(t.Context()); tok == nil || err != nil || tok.Value != testToken {
		t.Fatalf("CurrentToken after a call: got %v, %v; want the issued token", tok, err)
	}
	if err := c.Revoke(t.Context()); err != nil {
		t.Fatal(err)
	}
	if tok, err := c.CurrentToken(t.Context()); tok != nil || err != nil {
		t.Fatalf("CurrentToken after revoke: got %v, %v; want nil, nil", tok, err)
	}
	if _, _, err := c.Price(t.Context(), "000660"); err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); !strings.Contains(got, "level=INFO") || !strings.Contains(got, "waiting before the next token issuance") ||
		!strings.Contains(got, "wait=1m0s") {
		t.Errorf("log at info: got %q, want an INFO line about waiting 1m0s before the next issuance", got)
	}
}

// TestTokenRetainUntil: a shared store keeps a token until it expires, and
// a revoked or short-lived one at least two issuance intervals after its
// issuance (internal/shared sets the Redis TTL from it).
func TestTokenRetainUntil(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		tok  Token
		want time.Time
	}{
		{"live token: its expiry", Token{Value: "v", IssuedAt: t0, Expires: t0.Add(24 * time.Hour)}, t0.Add(24 * time.Hour)},
		{"revoked: two issuance intervals", Token{IssuedAt: t0, Expires: t0.Add(time.Second)}, t0.Add(2 * TokenIssueInterval)},
		{"expiry exactly at the pacing bound", Token{IssuedAt: t0, Expires: t0.Add(2 * TokenIssueInterval)}, t0.Add(2 * TokenIssueInterval)},
		{"no issuance time: its expiry", Token{Expires: t0}, t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.RetainUntil(); !got.Equal(tt.want) {
				t.Errorf("RetainUntil: got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTokenJSON: the JSON form of a Token is the record internal/shared
// keeps in Redis, which replicas of other versions read; its keys must not
// change.
func TestTokenJSON(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	tok := Token{Value: "jwt", Type: "Bearer", IssuedAt: t0, Expires: t0.Add(time.Hour)}
	raw, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"value":"jwt","type":"Bearer","expires":"2026-03-04T10:00:00Z","issued_at":"2026-03-04T09:00:00Z"}`
	if string(raw) != want {
		t.Errorf("JSON: got %s, want %s", raw, want)
	}
	var back Token
	if err := json.Unmarshal(raw, &back); err != nil || back != tok {
		t.Errorf("round trip: got %v, %v; want %v", back, err, tok)
	}
}

// blockingLockStore is a token store whose Lock blocks until the caller's
// context ends, reporting when it was entered and when it returned.
type blockingLockStore struct {
	*MemoryTokenStore
	entered, returned chan struct{}
}

func (s *blockingLockStore) Lock(ctx context.Context, _ string) (func(), error) {
	close(s.entered)
	<-ctx.Done()
	close(s.returned)
	return nil, ctx.Err()
}

// TestCloseEndsDetachedRefresh: the token refresh runs detached from its
// callers, so it outlives a caller that gives up; Close must cancel it
// and return only once it has ended (it writes the token store: a file
// store's temporary file and rename landed after the owner's Close, in a
// directory being removed), and a refresh after Close is refused.
func TestCloseEndsDetachedRefresh(t *testing.T) {
	f := newFake(t)
	store := &blockingLockStore{NewMemoryTokenStore(), make(chan struct{}), make(chan struct{})}
	c := testClient(t, f.url(), WithTokenStore(store))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx)
		errc <- err
	}()
	select {
	case <-store.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("refresh never reached the store's lock")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Token after cancel: %v, want context.Canceled", err)
	}
	select {
	case <-store.returned:
		t.Fatal("the detached refresh ended with its caller; it should outlive it until Close")
	default:
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-store.returned:
	default:
		t.Fatal("Close returned while the detached refresh was still running")
	}
	if _, err := c.Token(t.Context()); !errors.Is(err, ErrClientClosed) {
		t.Errorf("Token after Close: %v, want ErrClientClosed", err)
	}
}
