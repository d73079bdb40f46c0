package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/access"
	"github.com/kisfeed/kisfeed/internal/clocktest"
)

// The test keys, in plaintext as consumers hold them; the server is given
// only their hashes.
const (
	dataKey    = "kf_test-data-key-0123456789"
	metricsKey = "kf_test-metrics-key-0123456789"
	otherKey   = "kf_test-other-key-0123456789"
	unknownKey = "kf_test-unknown-key-0123456789"
)

// authFixture is a server with three keys: "reader" (data), "ops"
// (metrics only) and "other" (data), reader with a miss quota of 1/s,
// burst 2, the others with the default 5/s, burst 30.
func authFixture(t *testing.T, src kisfeed.Source, now func() time.Time, metricsNeedKey bool) *fixture {
	t.Helper()
	list := strings.Join([]string{
		access.Entry("reader", dataKey, nil) + ":rate=1:burst=2",
		access.Entry("ops", metricsKey, []access.Scope{access.ScopeMetrics}),
		access.Entry("other", otherKey, nil),
	}, ",")
	keys, err := access.ParseKeys(list, access.Quota{MissRate: 5, MissBurst: 30})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{calls: new(atomic.Int64), logs: new(bytes.Buffer), reg: prometheus.NewRegistry()}
	if src == nil {
		src = fakeSource(f.calls)
	}
	f.srv = New(Options{
		Source: src, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs}, nil)),
		Gatherer: f.reg, Clock: kisfeed.Clock{Wall: now}, AccessLog: true, RequestTimeout: 5 * time.Second,
		Access: access.New(keys), MetricsRequireKey: metricsNeedKey,
	})
	return f
}

// TestAuthRoutes runs every kind of route against every kind of caller.
func TestAuthRoutes(t *testing.T) {
	t.Parallel()
	f := authFixture(t, nil, fixedNow, true)
	creds := []struct {
		name   string
		header string // the Authorization value, "" = none
	}{
		{"no key", ""},
		{"unknown key", "Bearer " + unknownKey},
		{"not bearer", "Basic " + dataKey},
		{"empty bearer", "Bearer "},
		{"data key", "Bearer " + dataKey},
		{"lowercase scheme", "bearer " + dataKey},
		{"metrics-only key", "Bearer " + metricsKey},
	}
	type want struct {
		status int
		typ    string // problem type slug, "" for a non-problem answer
	}
	unauth := want{401, "unauthorized"}
	forbidden := want{403, "forbidden"}
	dataRoute := map[string]want{"no key": unauth, "unknown key": unauth, "not bearer": unauth, "empty bearer": unauth,
		"data key": {200, ""}, "lowercase scheme": {200, ""}, "metrics-only key": forbidden}
	public := func(w want) map[string]want {
		m := map[string]want{}
		for _, c := range creds {
			m[c.name] = w
		}
		return m
	}
	tests := []struct {
		path string
		want map[string]want
	}{
		{"/v1/stocks/005930/quote", dataRoute},
		{"/v1/stocks/005930/orderbook", dataRoute},
		{"/v1/stocks/005930/info", dataRoute},
		{"/v1/stocks/005930/candles?interval=day&from=2025-03-04&to=2025-03-10", dataRoute},
		{"/v1/quotes?codes=005930,000660", dataRoute},
		{"/v1/stocks", dataRoute},
		{"/v1/calendar/2025-03-11", dataRoute},
		// A /v1 path no route answers: strangers learn nothing of the API.
		{"/v1/nope", map[string]want{"no key": unauth, "unknown key": unauth, "not bearer": unauth, "empty bearer": unauth,
			"data key": {404, "no-route"}, "lowercase scheme": {404, "no-route"}, "metrics-only key": forbidden}},
		{"/metrics", map[string]want{"no key": unauth, "unknown key": unauth, "not bearer": unauth, "empty bearer": unauth,
			"data key": forbidden, "lowercase scheme": forbidden, "metrics-only key": {200, ""}}},
		{"/healthz", public(want{200, ""})},
		{"/readyz", public(want{200, ""})},
		{"/openapi.json", public(want{200, ""})},
		// The page and its assets are public.
		{"/", public(want{200, ""})},
		{"/ui/app.js", public(want{200, ""})},
		{"/assets/app.js", public(want{404, "no-route"})},
	}
	for _, tt := range tests {
		for _, c := range creds {
			t.Run(tt.path+"/"+c.name, func(t *testing.T) {
				var hdr []string
				if c.header != "" {
					hdr = []string{"Authorization", c.header}
				}
				rec := f.get(t, tt.path, hdr...)
				w := tt.want[c.name]
				if rec.Code != w.status {
					t.Fatalf("status %d, want %d (body %s)", rec.Code, w.status, rec.Body)
				}
				if w.typ == "" {
					return
				}
				p := decode[Problem](t, rec)
				if p.Type != problemBase+w.typ || p.Status != w.status {
					t.Errorf("problem %s/%d, want %s/%d", p.Type, p.Status, problemBase+w.typ, w.status)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q, want application/problem+json", ct)
				}
				challenge := rec.Header().Get("WWW-Authenticate")
				switch {
				case w.status == 401 && !strings.HasPrefix(challenge, `Bearer realm="kisfeed"`):
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", challenge)
				case w.status == 401 && c.name == "unknown key" && !strings.Contains(challenge, `error="invalid_token"`):
					t.Errorf("WWW-Authenticate %q, want error=\"invalid_token\"", challenge)
				case w.status != 401 && challenge != "":
					t.Errorf("WWW-Authenticate %q on a %d", challenge, w.status)
				}
			})
		}
	}
}

// TestAuthMetricsPublic: without MetricsRequireKey, /metrics needs no key
// even when keys guard /v1.
func TestAuthMetricsPublic(t *testing.T) {
	t.Parallel()
	f := authFixture(t, nil, fixedNow, false)
	if rec := f.get(t, "/metrics"); rec.Code != 200 {
		t.Errorf("/metrics without a key: status %d, want 200", rec.Code)
	}
	if rec := f.get(t, "/v1/stocks/005930/quote"); rec.Code != 401 {
		t.Errorf("quote without a key: status %d, want 401", rec.Code)
	}
}

// missSource answers 005930 as fetched from the upstream (X-Cache: MISS)
// and every other code from the cache (HIT).
func missSource() kisfeed.Source {
	src := fakeSource(new(atomic.Int64))
	src.QuoteFn = func(ctx context.Context, code string) (*kisfeed.Quote, error) {
		if code == "005930" {
			return testQuote(code, kisfeed.OriginSource), nil
		}
		return testQuote(code, kisfeed.OriginCache), nil
	}
	return src
}

// TestMissQuota: a key past its cache-miss quota gets 429 with
// Retry-After, while another key is served; hits are free until the
// bucket is empty, and the bucket refills with time.
func TestMissQuota(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(testNow)
	f := authFixture(t, missSource(), clock.Now, false)
	reader, other := []string{"Authorization", "Bearer " + dataKey}, []string{"Authorization", "Bearer " + otherKey}
	steps := []struct {
		name    string
		advance time.Duration
		path    string
		key     []string
		status  int
		cache   string // X-Cache of a 200
	}{
		{"hits are free", 0, "/v1/stocks/000660/quote", reader, 200, "HIT"},
		{"hits are free again", 0, "/v1/stocks/000660/quote", reader, 200, "HIT"},
		{"first miss", 0, "/v1/stocks/005930/quote", reader, 200, "MISS"},
		{"universe is not a miss", 0, "/v1/stocks", reader, 200, "MISS"},
		{"second miss empties the bucket", 0, "/v1/stocks/005930/quote", reader, 200, "MISS"},
		{"reader refused", 0, "/v1/stocks/005930/quote", reader, 429, ""},
		{"reader refused a hit too", 0, "/v1/stocks/000660/quote", reader, 429, ""},
		{"other key unaffected", 0, "/v1/stocks/005930/quote", other, 200, "MISS"},
		{"other key still unaffected", 0, "/v1/stocks/005930/quote", other, 200, "MISS"},
		{"half a token is not enough", 500 * time.Millisecond, "/v1/stocks/005930/quote", reader, 429, ""},
		{"refilled after a second", 500 * time.Millisecond, "/v1/stocks/005930/quote", reader, 200, "MISS"},
		{"and empty again", 0, "/v1/stocks/005930/quote", reader, 429, ""},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		rec := f.get(t, s.path, s.key...)
		if rec.Code != s.status {
			t.Fatalf("%s: status %d, want %d (%s)", s.name, rec.Code, s.status, rec.Body)
		}
		if s.status == 200 {
			if got := rec.Header().Get("X-Cache"); got != s.cache {
				t.Fatalf("%s: X-Cache %q, want %q", s.name, got, s.cache)
			}
			continue
		}
		p := decode[Problem](t, rec)
		ra := rec.Header().Get("Retry-After")
		if p.Type != problemBase+"quota-exceeded" || ra == "" || ra == "0" || ra != itoa(p.RetryAfter) {
			t.Errorf("%s: problem %s, Retry-After %q, retry_after %d; want quota-exceeded with matching Retry-After >= 1",
				s.name, p.Type, ra, p.RetryAfter)
		}
		if !strings.Contains(p.Detail, "reader") {
			t.Errorf("%s: detail %q should name the key", s.name, p.Detail)
		}
	}
}

// TestMissQuotaRetryAfter: Retry-After is the time until the bucket holds
// a whole miss again, rounded up, debt included.
func TestMissQuotaRetryAfter(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(testNow)
	keys, err := access.ParseKeys(access.Entry("slow", dataKey, nil)+":rate=0.25:burst=1", access.Quota{MissRate: 5, MissBurst: 30})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Source: missSource(), Clock: kisfeed.Clock{Wall: clock.Now}, Access: access.New(keys),
		Logger: slog.New(slog.DiscardHandler)})
	f := &fixture{srv: srv}
	auth := []string{"Authorization", "Bearer " + dataKey}
	if rec := f.get(t, "/v1/stocks/005930/quote", auth...); rec.Code != 200 {
		t.Fatalf("first miss: status %d, want 200", rec.Code)
	}
	rec := f.get(t, "/v1/stocks/005930/quote", auth...)
	if got := rec.Header().Get("Retry-After"); rec.Code != 429 || got != "4" {
		t.Errorf("at 0.25 misses/s after one miss: status %d, Retry-After %q; want 429, 4", rec.Code, got)
	}
}

// TestAuthAccessLog: keys sent by callers never reach the log; the key's
// configured name does.
func TestAuthAccessLog(t *testing.T) {
	t.Parallel()
	f := authFixture(t, nil, fixedNow, true)
	for _, k := range []string{dataKey, unknownKey, metricsKey} {
		f.get(t, "/v1/stocks/005930/quote", "Authorization", "Bearer "+k)
		f.get(t, "/metrics", "Authorization", "Bearer "+k)
	}
	f.get(t, "/v1/stocks/005930/quote", "Authorization", "Basic "+dataKey)
	log := f.logs.String()
	for _, k := range []string{dataKey, unknownKey, metricsKey, "test-data-key", access.Hash(dataKey)} {
		if strings.Contains(log, k) {
			t.Errorf("log shows %q:\n%s", k, log)
		}
	}
	for _, want := range []string{"key=reader", "key=ops", "status=401", "status=403"} {
		if !strings.Contains(log, want) {
			t.Errorf("access log: missing %s:\n%s", want, log)
		}
	}
}

// TestOpenAPISecurity keeps the document's security equal to what
// authorize does: /v1 operations inherit the bearer requirement and list
// 401, 403 and 429; public routes opt out with security: [].
func TestOpenAPISecurity(t *testing.T) {
	t.Parallel()
	var doc struct {
		Security   []map[string][]string `json:"security"`
		Components struct {
			SecuritySchemes map[string]struct {
				Type, Scheme string
			} `json:"securitySchemes"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			Security  *[]map[string][]string `json:"security"`
			Responses map[string]json.RawMessage
		} `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Security) != 1 || len(doc.Security[0]) != 1 {
		t.Fatalf("root security %v: want one bearer requirement", doc.Security)
	}
	for name := range doc.Security[0] {
		if s := doc.Components.SecuritySchemes[name]; s.Type != "http" || s.Scheme != "bearer" {
			t.Errorf("security scheme %s = %+v, want http bearer", name, s)
		}
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			t.Run(method+" "+path, func(t *testing.T) {
				codes := func(want ...string) {
					for _, c := range want {
						if _, ok := op.Responses[c]; !ok {
							t.Errorf("no %s response", c)
						}
					}
				}
				switch classOf(path) {
				case classData:
					if op.Security != nil {
						t.Errorf("security %v: a /v1 route should inherit the root requirement", *op.Security)
					}
					codes("401", "403", "429")
				case classMetrics:
					if op.Security == nil || !slices.ContainsFunc(*op.Security, func(m map[string][]string) bool { return len(m) == 0 }) {
						t.Errorf("security %v: want optional ({} among the alternatives)", op.Security)
					}
					codes("401", "403")
				default:
					if op.Security == nil || len(*op.Security) != 0 {
						t.Errorf("security %v: a public route wants security: []", op.Security)
					}
				}
			})
		}
	}
}

// TestQuotaProblem: Retry-After only when waiting helps, rounded up.
func TestQuotaProblem(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/v1/stream", nil)
	for _, tt := range []struct {
		wait time.Duration
		want int
	}{{0, 0}, {time.Millisecond, 1}, {1500 * time.Millisecond, 2}} {
		p := quotaProblem(r, &access.QuotaError{Key: "k", Quota: "streamed codes", Detail: "3 of 3", RetryAfter: tt.wait})
		if p.Status != 429 || p.RetryAfter != tt.want || !strings.Contains(p.Detail, "key k spent its streamed codes quota") {
			t.Errorf("wait %s: %+v, want 429 with retry_after %d naming the key", tt.wait, p, tt.want)
		}
	}
}
