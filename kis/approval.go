package kis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Approval key facts (REFERENCE §b.3).
const (
	// ApprovalKeyValidity is how long KIS honours an approval key. It is
	// checked only when a WebSocket session connects: an open session
	// keeps receiving past it.
	ApprovalKeyValidity = 24 * time.Hour
	// ApprovalIssueInterval is KIS's pacing of approval issuance: at most
	// one per second per app key.
	ApprovalIssueInterval = time.Second
	// DefaultApprovalMargin is how long before expiry a key is re-issued,
	// so that a reconnect never presents a key that dies on the way.
	DefaultApprovalMargin = 10 * time.Minute
)

// ApprovalKey is a WebSocket approval key (POST /oauth2/Approval). Its
// Value never prints: String, GoString and LogValue redact it. The JSON
// form is what stores shared with other processes keep.
type ApprovalKey struct {
	Value    string    `json:"value"`
	Expires  time.Time `json:"expires"`
	IssuedAt time.Time `json:"issued_at"`
}

// RetainUntil is how long a shared store must keep k: until it expires,
// and at least two issuance intervals after issuance so sharers still see
// when the app key last issued.
func (k ApprovalKey) RetainUntil() time.Time {
	if keep := k.IssuedAt.Add(2 * ApprovalIssueInterval); keep.After(k.Expires) {
		return keep
	}
	return k.Expires
}

// String describes the key without its value.
func (k ApprovalKey) String() string {
	return fmt.Sprintf("kis.ApprovalKey{Expires:%s IssuedAt:%s Value:***}",
		k.Expires.Format(time.RFC3339), k.IssuedAt.Format(time.RFC3339))
}

// GoString hides the value from %#v.
func (k ApprovalKey) GoString() string { return k.String() }

// LogValue hides the value from log/slog.
func (k ApprovalKey) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires", k.Expires), slog.Time("issued_at", k.IssuedAt))
}

// ApproverConfig configures an [Approver]. AppKey and AppSecret are
// required; the zero value of every other field is a documented default.
type ApproverConfig struct {
	BaseURL   string // REST base URL; default RealBaseURL
	AppKey    string
	AppSecret string
	// Store shares keys with restarts and other processes; default a
	// [MemoryApprovalKeyStore] (the caller picks a file or Redis store).
	Store      ApprovalKeyStore
	HTTPClient *http.Client     // default: 10 s timeout
	Now        func() time.Time // wall clock for expiry and pacing; default time.Now
	Margin     time.Duration    // re-issue this long before expiry; default DefaultApprovalMargin
	Log        *slog.Logger     // default: discard
}

// Approver hands out the approval key of one app key: the one it holds,
// else the store's, else (under the store's lock, at most one per
// [ApprovalIssueInterval]) a new one. Safe for concurrent use.
type Approver struct {
	cfg    ApproverConfig
	id     string
	lock   chan struct{} // one obtainer at a time in this process
	cur    atomic.Pointer[ApprovalKey]
	issued atomic.Int64
	sleep  func(context.Context, time.Duration) error
}

// NewApprover checks cfg and returns an Approver; it issues nothing yet.
func NewApprover(cfg ApproverConfig) (*Approver, error) {
	if strings.TrimSpace(cfg.AppKey) == "" || strings.TrimSpace(cfg.AppSecret) == "" {
		return nil, errors.New("kis approval: app key and secret: want both non-empty")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = RealBaseURL
	}
	if err := urlOption("base url", cfg.BaseURL, "want an http(s) URL", func(*options, string) {})(nil); err != nil {
		return nil, fmt.Errorf("kis approval: %w", err)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Store == nil {
		cfg.Store = NewMemoryApprovalKeyStore()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Margin <= 0 {
		cfg.Margin = DefaultApprovalMargin
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	// Not the token's id: a store shared with tokens must not mix them.
	id := "approval:" + storeID(cfg.BaseURL, cfg.AppKey)
	return &Approver{cfg: cfg, id: id, lock: make(chan struct{}, 1), sleep: sleepCtx}, nil
}

// Key returns a valid approval key value, issuing one only when neither
// this Approver nor its store holds one valid for at least the margin.
func (a *Approver) Key(ctx context.Context) (string, error) {
	if k := a.cur.Load(); a.usable(k, "") {
		return k.Value, nil
	}
	return a.obtain(ctx, "")
}

// Renew returns a key other than stale, the one KIS just refused
// (OPSP0011/OPSP9994): another sharer's newer key if the store has one,
// else a new issuance.
func (a *Approver) Renew(ctx context.Context, stale string) (string, error) {
	return a.obtain(ctx, stale)
}

// Issued returns how many keys this Approver issued.
func (a *Approver) Issued() int64 { return a.issued.Load() }

func (a *Approver) usable(k *ApprovalKey, stale string) bool {
	return k != nil && k.Value != "" && k.Value != stale && a.cfg.Now().Add(a.cfg.Margin).Before(k.Expires)
}

func (a *Approver) obtain(ctx context.Context, stale string) (string, error) {
	if err := acquire(ctx, a.lock); err != nil {
		return "", err
	}
	defer release(a.lock)
	if k := a.cur.Load(); a.usable(k, stale) {
		return k.Value, nil
	}
	store := a.cfg.Store
	if k, err := store.Load(ctx, a.id); err != nil {
		a.cfg.Log.Warn("kis: approval key store load failed", "err", err)
	} else if a.usable(k, stale) {
		a.cur.Store(k)
		return k.Value, nil
	}
	unlock, err := store.Lock(ctx, a.id)
	if err != nil {
		return "", fmt.Errorf("lock approval key store: %w", err)
	}
	defer unlock()
	last, err := store.Load(ctx, a.id) // a sharer may have issued meanwhile
	if err != nil {
		a.cfg.Log.Warn("kis: approval key store load failed", "err", err)
		last = nil
	}
	if a.usable(last, stale) {
		a.cur.Store(last)
		return last.Value, nil
	}
	if cur := a.cur.Load(); last == nil || (cur != nil && cur.IssuedAt.After(last.IssuedAt)) {
		last = cur
	}
	if last != nil {
		if wait := last.IssuedAt.Add(ApprovalIssueInterval).Sub(a.cfg.Now()); wait > 0 {
			if err := a.sleep(ctx, wait); err != nil {
				return "", err
			}
		}
	}
	k, err := a.issue(ctx)
	if err != nil {
		return "", err
	}
	if err := store.Save(ctx, a.id, k); err != nil {
		a.cfg.Log.Warn("kis: approval key store save failed", "err", err)
	}
	a.cur.Store(k)
	return k.Value, nil
}

// issue calls POST /oauth2/Approval once. The body names the secret
// "secretkey", not "appsecret" (REFERENCE §b.3).
func (a *Approver) issue(ctx context.Context) (*ApprovalKey, error) {
	body, _ := json.Marshal(map[string]string{
		"grant_type": "client_credentials",
		"appkey":     a.cfg.AppKey,
		"secretkey":  a.cfg.AppSecret,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.BaseURL+"/oauth2/Approval", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("issue approval key: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	issuedAt := a.cfg.Now()
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("issue approval key: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("issue approval key: read: %w", err)
	}
	var out struct {
		Key       string `json:"approval_key"`
		MsgCd     string `json:"msg_cd"`
		Msg1      string `json:"msg1"`
		ErrorCode string `json:"error_code"`
		ErrorDesc string `json:"error_description"`
		Code      string `json:"code"`
		Message   string `json:"message"`
	}
	_ = json.Unmarshal(raw, &out) // a non-JSON answer is an APIError below
	if resp.StatusCode == http.StatusOK && out.Key != "" {
		a.issued.Add(1)
		a.cfg.Log.Info("kis: websocket approval key issued", "expires", issuedAt.Add(ApprovalKeyValidity))
		return &ApprovalKey{Value: out.Key, IssuedAt: issuedAt, Expires: issuedAt.Add(ApprovalKeyValidity)}, nil
	}
	e := &APIError{HTTPStatus: resp.StatusCode, TrID: "Approval",
		MsgCd: firstNonEmpty(out.MsgCd, out.ErrorCode, out.Code),
		Msg1:  strings.TrimSpace(firstNonEmpty(out.Msg1, out.ErrorDesc, out.Message))}
	if e.MsgCd == "" && e.Msg1 == "" && resp.StatusCode == http.StatusOK {
		e.Msg1 = "response has no approval_key"
	}
	e.Msg1 = strings.ReplaceAll(e.Msg1, a.cfg.AppSecret, "***")
	return nil, fmt.Errorf("issue approval key: %w", e)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
