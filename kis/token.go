package kis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Token is a KIS access token. Its Value never prints: String, GoString
// and LogValue redact it. The JSON form is what a store shared with other
// processes keeps (internal/shared writes it to Redis as it is); the keys
// are fixed because replicas of other versions read the same record.
type Token struct {
	Value    string    `json:"value"`
	Type     string    `json:"type"` // "Bearer"
	Expires  time.Time `json:"expires"`
	IssuedAt time.Time `json:"issued_at"` // when this client (or a sharer) called tokenP
}

// RetainUntil is how long a store shared with other processes must keep
// t: until it expires, and at least two issuance intervals after its
// issuance, so that a revoked (valueless) token still tells the sharers
// when the app key last issued and they wait out [TokenIssueInterval].
func (t Token) RetainUntil() time.Time {
	if keep := t.IssuedAt.Add(2 * TokenIssueInterval); keep.After(t.Expires) {
		return keep
	}
	return t.Expires
}

// String describes the token without its value.
func (t Token) String() string {
	return fmt.Sprintf("kis.Token{Type:%s Expires:%s IssuedAt:%s Value:***}",
		t.Type, t.Expires.Format(time.RFC3339), t.IssuedAt.Format(time.RFC3339))
}

// GoString hides the value from %#v.
func (t Token) GoString() string { return t.String() }

// LogValue hides the value from log/slog.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", t.Type), slog.Time("expires", t.Expires),
		slog.Time("issued_at", t.IssuedAt))
}

// valid reports whether the token can be sent at now.
func (t *Token) valid(now time.Time) bool {
	return t != nil && t.Value != "" && now.Before(t.Expires)
}

// TokenStore persists tokens so that restarts and sibling processes reuse
// a valid token instead of issuing another.
type TokenStore interface {
	// Load returns the stored token for id, or nil, nil when there is none.
	Load(ctx context.Context, id string) (*Token, error)
	// Save stores t under id, replacing any previous token.
	Save(ctx context.Context, id string, t *Token) error
	// Lock serialises token issuance for id across every sharer of the
	// store; the caller must call unlock.
	Lock(ctx context.Context, id string) (unlock func(), err error)
}

// MemoryTokenStore keeps tokens in process memory.
type MemoryTokenStore struct {
	r *memoryRecords[Token]
}

// NewMemoryTokenStore returns an empty in-memory store.
func NewMemoryTokenStore() *MemoryTokenStore {
	return &MemoryTokenStore{r: newMemoryRecords[Token]()}
}

// Load implements [TokenStore].
func (s *MemoryTokenStore) Load(_ context.Context, id string) (*Token, error) {
	return s.r.load(id), nil
}

// Save implements [TokenStore].
func (s *MemoryTokenStore) Save(_ context.Context, id string, t *Token) error {
	if t == nil {
		return errors.New("save token: nil token")
	}
	s.r.save(id, *t)
	return nil
}

// Lock implements [TokenStore].
func (s *MemoryTokenStore) Lock(ctx context.Context, id string) (func(), error) {
	return s.r.lock(ctx, id)
}

// Token returns a valid access token, issuing one only when neither this
// client nor the store holds one that is still good. Concurrent callers
// share one refresh.
func (c *Client) Token(ctx context.Context) (*Token, error) {
	if t := c.token.Load(); t != nil && t.valid(c.now().Add(c.margin)) {
		return t, nil
	}
	return c.refresh(ctx, nil)
}

// refresh obtains a fresh token. stale, when set, is a token the server
// just refused: it is not reused even if its expiry says it is valid.
func (c *Client) refresh(ctx context.Context, stale *Token) (*Token, error) {
	key := "token"
	if stale != nil {
		key = "stale:" + stale.Value
	}
	ch := c.tokenGroup.DoChan(key, func() (any, error) {
		// Detached from the first caller's cancellation: the others wait
		// on the same result. Bounded by the HTTP timeout and the issuance
		// pacing wait, and by Close, which cancels it and waits for it
		// (it writes the token store).
		octx, done, err := c.detached.start(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		defer done()
		return c.obtain(octx, stale)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Token), nil
	}
}

// usable reports whether t can serve now instead of a new issuance.
func (c *Client) usable(t, stale *Token, now time.Time, margin time.Duration) bool {
	if !t.valid(now.Add(margin)) {
		return false
	}
	return stale == nil || t.Value != stale.Value
}

// obtain is the single refresher: memory, then the store, then (under the
// store's lock, re-checking the store) an issuance call.
func (c *Client) obtain(ctx context.Context, stale *Token) (*Token, error) {
	now := c.now()
	if t := c.token.Load(); c.usable(t, stale, now, c.margin) {
		return t, nil
	}
	if t, err := c.store.Load(ctx, c.storeID); err != nil {
		c.log.Warn("kis: token store load failed", "err", err)
	} else if c.usable(t, stale, now, c.margin) {
		c.token.Store(t)
		return t, nil
	}
	unlock, err := c.store.Lock(ctx, c.storeID)
	if err != nil {
		return nil, fmt.Errorf("lock token store: %w", err)
	}
	defer unlock()

	// Another process may have issued while we waited for the lock.
	last, err := c.store.Load(ctx, c.storeID)
	if err != nil {
		c.log.Warn("kis: token store load failed", "err", err)
		last = nil
	}
	if c.usable(last, stale, c.now(), c.margin) {
		c.token.Store(last)
		return last, nil
	}
	cur := c.token.Load()
	if last == nil || (cur != nil && cur.IssuedAt.After(last.IssuedAt)) {
		last = cur
	}
	// Never two issuance calls for one app key within a minute (EGW00133,
	// and every issuance sends the account holder a message).
	if last != nil && !last.IssuedAt.IsZero() {
		if wait := last.IssuedAt.Add(TokenIssueInterval).Sub(c.now()); wait > 0 {
			if c.usable(last, stale, c.now(), 0) {
				// Within the margin but still valid: keep using it.
				c.token.Store(last)
				return last, nil
			}
			// Info, not debug: a command line stands still for up to a
			// minute here, and without this line nobody knows why.
			c.log.Info("kis: waiting before the next token issuance (KIS allows one a minute per app key)",
				"wait", wait.Round(time.Second))
			if err := c.sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
	}
	t, err := c.issue(ctx)
	if err != nil && c.usable(last, stale, c.now(), 0) {
		// Renewal ahead of expiry failed (EGW00133, network): the current
		// token still works, so keep it and try again on a later call.
		c.log.Warn("kis: token renewal failed; keeping the current token", "err", err)
		c.token.Store(last)
		return last, nil
	}
	if errors.Is(err, ErrTokenIssueTooSoon) {
		// Someone issued for this key without telling our store: wait the
		// minute KIS asks for, then try once more.
		c.log.Warn("kis: token issuance refused as too soon; waiting", "wait", TokenIssueInterval)
		if err := c.sleep(ctx, TokenIssueInterval); err != nil {
			return nil, err
		}
		t, err = c.issue(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := c.store.Save(ctx, c.storeID, t); err != nil {
		c.log.Warn("kis: token store save failed", "err", err)
	}
	c.token.Store(t)
	return t, nil
}

type tokenResponse struct {
	AccessToken      string  `json:"access_token"`
	TokenType        string  `json:"token_type"`
	ExpiresIn        float64 `json:"expires_in"`
	Expired          string  `json:"access_token_token_expired"`
	ErrorCode        string  `json:"error_code"`
	ErrorDescription string  `json:"error_description"`
}

// issue calls tokenP once, through the rate limiter and the retry policy
// (5xx and timeouts are retried; EGW00133 and bad credentials are not).
func (c *Client) issue(ctx context.Context) (*Token, error) {
	body, _ := json.Marshal(map[string]string{
		"grant_type": "client_credentials",
		"appkey":     c.appKey,
		"appsecret":  c.appSecret,
	})
	req := &Request{Method: http.MethodPost, Path: "/oauth2/tokenP", TrID: "tokenP", body: body, noAuth: true}
	issuedAt := c.now()
	var tr tokenResponse
	if _, err := c.Do(ctx, req, &tr); err != nil {
		return nil, fmt.Errorf("issue token: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("issue token: response has no access_token")
	}
	exp := issuedAt.Add(24 * time.Hour)
	if tr.ExpiresIn > 0 {
		exp = issuedAt.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	if tr.Expired != "" {
		at, err := time.ParseInLocation("2006-01-02 15:04:05", strings.TrimSpace(tr.Expired), kisfeed.KST)
		if err != nil {
			return nil, fmt.Errorf("issue token: access_token_token_expired: %q is not YYYY-MM-DD HH:MM:SS", tr.Expired)
		}
		// The earlier of the two: a token that dies sooner than we think
		// costs a failed call, one that lives longer costs nothing.
		if at.Before(exp) {
			exp = at
		}
	}
	typ := tr.TokenType
	if typ == "" {
		typ = "Bearer"
	}
	c.tokensIssued.Add(1)
	c.observer.TokenIssued()
	c.log.Info("kis: access token issued", "expires", exp)
	return &Token{Value: tr.AccessToken, Type: typ, Expires: exp, IssuedAt: issuedAt}, nil
}

// CurrentToken returns the token this client holds, or else the one in
// its store, without ever issuing one; nil when there is none or it was
// revoked (a valueless record). The token command uses it to tell a
// revocation from a no-op.
func (c *Client) CurrentToken(ctx context.Context) (*Token, error) {
	t := c.token.Load()
	if t == nil || t.Value == "" {
		st, err := c.store.Load(ctx, c.storeID)
		if err != nil {
			return nil, fmt.Errorf("load token: %w", err)
		}
		t = st
	}
	if t == nil || t.Value == "" {
		return nil, nil
	}
	return t, nil
}

// Revoke revokes the current token (revokeP) and forgets it. The store
// keeps a valueless record with the issuance time, so the one-per-minute
// issuance pacing survives. Revoking with no token is a no-op.
func (c *Client) Revoke(ctx context.Context) error {
	t := c.token.Load()
	if t == nil || t.Value == "" {
		st, err := c.store.Load(ctx, c.storeID)
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		t = st
	}
	if t == nil || t.Value == "" {
		return nil
	}
	body, _ := json.Marshal(map[string]string{
		"appkey":    c.appKey,
		"appsecret": c.appSecret,
		"token":     t.Value,
	})
	req := &Request{Method: http.MethodPost, Path: "/oauth2/revokeP", TrID: "revokeP", body: body, noAuth: true}
	var out struct {
		Code    json.Number `json:"code"`
		Message string      `json:"message"`
	}
	if _, err := c.Do(ctx, req, &out); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if out.Code != "" && out.Code != "200" {
		return fmt.Errorf("revoke token: code %s %q", out.Code, c.redact(strings.TrimSpace(out.Message)))
	}
	exp := t.IssuedAt.Add(TokenIssueInterval)
	if now := c.now(); exp.Before(now) {
		exp = now.Add(time.Second)
	}
	gone := &Token{Type: t.Type, IssuedAt: t.IssuedAt, Expires: exp}
	c.token.Store(gone)
	if err := c.store.Save(ctx, c.storeID, gone); err != nil {
		return fmt.Errorf("revoke token: save: %w", err)
	}
	return nil
}
