package emulator

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// WebSocket approval keys (REFERENCE §b.3).

// Defaults of the approval-key rules.
const (
	// DefaultApprovalTTL is an approval key's validity (KIS: 24 h).
	DefaultApprovalTTL = 24 * time.Hour
	// DefaultApprovalInterval is the minimum time between two issuances
	// for one app key (N-rate: 1/s).
	DefaultApprovalInterval = time.Second
)

// WithApprovalTTL sets an approval key's validity (default 24h).
func WithApprovalTTL(d time.Duration) Option {
	return positive("approval ttl", d, func(o *options) { o.approvalTTL = d })
}

// WithApprovalInterval sets the minimum time between two /oauth2/Approval
// issuances of one app key (default 1s; a quicker call gets EGW00201). 0
// disables the check.
func WithApprovalInterval(d time.Duration) Option {
	return nonNegative("approval interval", d, func(o *options) { o.approvalEvery = d })
}

// approval is one issued approval key.
type approval struct {
	appKey  string
	expires time.Time
}

// approvals holds issued approval keys. A restart of the WebSocket side
// keeps them (KIS keys outlive sessions).
type approvals struct {
	mu       sync.Mutex // guards keys, lastCall
	keys     map[string]approval
	lastCall map[string]time.Time // app key → last successful issuance
}

func (a *approvals) init() {
	a.keys = map[string]approval{}
	a.lastCall = map[string]time.Time{}
}

// lookup returns the app key an approval key was issued to; expired
// reports whether it is past its validity at now.
func (a *approvals) lookup(key string, now time.Time) (appKey string, found, expired bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ap, ok := a.keys[key]
	if !ok {
		return "", false, false
	}
	return ap.appKey, true, !now.Before(ap.expires)
}

// serveApproval is POST /oauth2/Approval (REFERENCE §b.3): the secret
// travels as "secretkey"; not counted against the REST limit.
//
// Issuance is limited to 1/s per app key (N-rate). KIS documents no
// error for a quicker call; the emulator refuses it as the gateway refuses
// any call over a per-second limit (HTTP 500 EGW00201) rather than
// silently returning a key: the safer reading, since a client that
// tolerates the refusal also works against a lenient server, and one that
// spams Approval learns it here instead of in production. A refused call
// does not restart the interval. Every issuance is a new key, valid for
// 24 h on the emulator's clock (WithClock); older keys stay valid until
// their own expiry.
func (s *Server) serveApproval(w http.ResponseWriter, r *http.Request) {
	body, ok := s.oauthGrant(w, r, "secretkey")
	if !ok {
		return
	}
	appKey, now := body["appkey"], s.now()
	a := &s.approvals
	a.mu.Lock()
	if last, seen := a.lastCall[appKey]; seen && s.approvalInterval > 0 && now.Sub(last) < s.approvalInterval {
		a.mu.Unlock()
		s.ws.stats.approval(false)
		s.writeReply(w, "", gatewayErr("EGW00201"))
		return
	}
	a.lastCall[appKey] = now
	key := newApprovalKey()
	a.keys[key] = approval{appKey: appKey, expires: now.Add(s.approvalTTL)}
	a.mu.Unlock()
	s.ws.stats.approval(true)
	s.writeJSON(w, http.StatusOK, map[string]string{"approval_key": key})
}

// newApprovalKey returns a random UUID-shaped key (36 chars, as KIS's).
func newApprovalKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ExpireApprovalKeys expires every issued approval key now: the next
// subscribe of a new session with one gets OPSP0011; open sessions keep
// their registrations (KIS checks the key when a session starts).
func (s *Server) ExpireApprovalKeys() {
	now := s.now()
	s.approvals.mu.Lock()
	defer s.approvals.mu.Unlock()
	for k, ap := range s.approvals.keys {
		ap.expires = now
		s.approvals.keys[k] = ap
	}
	clear(s.approvals.lastCall)
}
