package httpapi

import (
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed/internal/access"
)

// routeClass says what a request path needs from a caller when keys are
// configured.
type routeClass int

const (
	// classPublic needs nothing: /healthz, /readyz, /openapi.json, the
	// page at / and its /assets/, and paths no route answers (404).
	classPublic routeClass = iota
	// classData needs a key with the data scope and spends its quotas:
	// everything under /v1.
	classData
	// classMetrics is /metrics: public unless Options.MetricsRequireKey,
	// then it needs a key with the metrics scope.
	classMetrics
)

// classOf classifies by path, not by the matched route, so a /v1 path
// that matches nothing still answers 401 to a caller without a key: the
// shape of the API is not shown to strangers.
func classOf(path string) routeClass {
	switch {
	case path == "/v1" || strings.HasPrefix(path, "/v1/"):
		return classData
	case path == "/metrics":
		return classMetrics
	}
	return classPublic
}

// authorize checks r's key against the route's class. It returns the
// key's principal (nil on a public route or without access control) and
// false after writing a 401, 403 or 429 problem.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (*access.Principal, bool) {
	if s.guard == nil {
		return nil, true
	}
	class := classOf(r.URL.Path)
	need := access.ScopeData
	switch {
	case class == classPublic, class == classMetrics && !s.metricsNeedKey:
		return nil, true
	case class == classMetrics:
		need = access.ScopeMetrics
	}
	token, present := bearer(r.Header.Get("Authorization"))
	if !present && isStream(r.URL.Path) {
		token, present = streamCookie(r)
	}
	if token == "" {
		challenge, detail := `Bearer realm="kisfeed"`, "this route needs an API key: send Authorization: Bearer <key>"
		if present {
			// RFC 6750 §3.1: a malformed credential is invalid_request.
			challenge += `, error="invalid_request"`
			detail = "the Authorization header is not a Bearer token: send Authorization: Bearer <key>"
		}
		s.writeAuthProblem(w, r, challenge, detail)
		return nil, false
	}
	p := s.guard.Authenticate(token)
	if p == nil {
		s.writeAuthProblem(w, r, `Bearer realm="kisfeed", error="invalid_token"`, "unknown API key")
		return nil, false
	}
	if !p.Has(need) {
		s.writeProblem(w, Problem{Type: problemBase + "forbidden", Title: "Forbidden", Status: http.StatusForbidden,
			Instance: instance(r), Detail: "key " + p.Name() + " lacks the " + string(need) + " scope this route needs"})
		return p, false
	}
	if class == classData {
		var qe *access.QuotaError
		if err := p.CheckMiss(s.now()); errors.As(err, &qe) {
			s.writeProblem(w, quotaProblem(r, qe))
			return p, false
		}
	}
	return p, true
}

// quotaProblem is the 429 for a spent quota; its detail names the key,
// which is the caller's own. Retry-After is sent only when waiting helps
// (a miss bucket refills; streamed codes come back only when released).
func quotaProblem(r *http.Request, qe *access.QuotaError) Problem {
	p := Problem{Type: problemBase + "quota-exceeded", Title: "Quota exceeded",
		Status: http.StatusTooManyRequests, Instance: instance(r), Detail: qe.Error()}
	if qe.RetryAfter > 0 {
		p.RetryAfter = retrySeconds(qe.RetryAfter)
	}
	return p
}

// chargeMiss charges p for a data request whose answer reached the
// upstream: X-Cache: MISS (a value fetched just now), or a 504, which
// waited for the upstream in vain. The answer's headers tell, so no
// handler knows about quotas. A batch counts one miss, whatever number of
// its codes missed: the batcher asks for up to 30 codes in one upstream
// call. Routes in notCharged are never charged.
func (s *Server) chargeMiss(p *access.Principal, r *http.Request, rw *statusWriter) {
	if p == nil || notCharged[r.Pattern] {
		return
	}
	if v := rw.Header()["X-Cache"]; (len(v) == 1 && v[0] == "MISS") || rw.status == http.StatusGatewayTimeout {
		p.ChargeMiss(s.now(), 1)
	}
}

// notCharged lists the data routes whose X-Cache says MISS on every
// answer without asking the cache: their handlers build the answer's Meta
// themselves (origin "source"), so charging by the header would charge
// every answer. The universe comes from the stock master files, not from
// the rate-limited API. The calendar's verdicts are cached per day below
// the handler, which cannot tell whether one was; a key asking for many
// new days spends upstream calls uncharged, one per day (a known gap,
// until the calendar's answer carries its origin).
var notCharged = map[string]bool{
	"GET /v1/stocks":          true,
	"GET /v1/calendar/{date}": true,
}

// writeAuthProblem answers 401 with the Bearer challenge.
func (s *Server) writeAuthProblem(w http.ResponseWriter, r *http.Request, challenge, detail string) {
	w.Header().Set("WWW-Authenticate", challenge)
	s.writeProblem(w, Problem{Type: problemBase + "unauthorized", Title: "Unauthorized",
		Status: http.StatusUnauthorized, Instance: instance(r), Detail: detail})
}

// bearer returns the token of an "Authorization: Bearer <token>" value
// (the scheme is case-insensitive, RFC 9110 §11.1) and whether the header
// was sent at all.
func bearer(h string) (token string, present bool) {
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// retrySeconds rounds a wait up to whole seconds for Retry-After, at
// least 1: "0" would invite an immediate retry that is refused again.
func retrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// KeyCookie is the cookie the stream routes accept the API key from when
// no Authorization header is sent: a browser's EventSource (and
// WebSocket) cannot set headers. Set it HttpOnly, Secure behind TLS and
// SameSite=Strict, so scripts cannot read it and other sites cannot make
// a browser send it. Keys are never taken from the query string: URLs
// land in access logs and proxies.
const KeyCookie = "kisfeed_key"

// streamCookie returns the kisfeed_key cookie's value and whether it was
// sent.
func streamCookie(r *http.Request) (string, bool) {
	c, err := r.Cookie(KeyCookie)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(c.Value), true
}
