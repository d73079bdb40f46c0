package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/access"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// TestAPIKeyNew: the printed entry holds the hash of the printed key, and
// the key authenticates against it.
func TestAPIKeyNew(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"apikey", "new", "dash-1", "--scopes", "data,metrics"}, nil, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("stdout %q: want 4 lines (title, key, title, entry)", stdout.String())
	}
	key, entry := strings.TrimSpace(lines[1]), strings.TrimSpace(lines[3])
	if !strings.HasPrefix(key, "kf_") || strings.Contains(entry, key) {
		t.Fatalf("key %q, entry %q: want a kf_ key and an entry without it", key, entry)
	}
	keys, err := access.ParseKeys(entry, access.Quota{MissRate: 5, MissBurst: 30})
	if err != nil {
		t.Fatalf("entry %q: %v", entry, err)
	}
	p := access.New(keys).Authenticate(key)
	if p == nil || p.Name() != "dash-1" || !p.Has(access.ScopeMetrics) || !p.Has(access.ScopeData) {
		t.Errorf("entry %q does not authenticate the key with data and metrics", entry)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"apikey", "new", "has space"}, `NAME "has space"`},
		{[]string{"apikey", "new", "x", "--scopes", "admin"}, `--scopes "admin"`},
		{[]string{"apikey", "new"}, "accepts 1 arg"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), tt.args, nil, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) || stdout.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, no key, %q", tt.args, code, stdout.String(), stderr.String(), tt.want)
		}
	}
}

// mockApp is an app whose upstream is the synthetic market.
func mockApp(environ []string, stderr *bytes.Buffer) *app {
	now := func() time.Time { return time.Date(2025, time.March, 11, 11, 0, 0, 0, kisfeed.KST) }
	return &app{
		environ: environ, stdin: strings.NewReader(""), stderr: stderr, clock: kisfeed.Clock{Wall: now},
		newUpstream: func(ctx context.Context, cfg config.Config, log *slog.Logger) (*upstream, error) {
			return &upstream{Source: synthetic.NewSource(sim.New(1), kisfeed.Clock{Market: now}), Close: func() error { return nil }}, nil
		},
	}
}

// TestServeAPIKeys runs serve with one key: /v1 needs it, the access log
// names the key and never shows it, and one line says keys are required.
func TestServeAPIKeys(t *testing.T) {
	t.Parallel()
	const key = "kf_serve-test-key-0123456789"
	var stderr bytes.Buffer
	// rate=0: the synthetic market answers every quote as a miss, and
	// the loadtest below must not run into the quota.
	a := mockApp([]string{"LOG_LEVEL=info", "KISFEED_API_KEYS=web:" + access.Hash(key) + ":rate=0"}, &stderr)
	base, stop := startServe(t, a)
	get := func(path, auth string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		path, auth string
		want       int
	}{
		{"/v1/stocks/005930/quote", "", 401},
		{"/v1/stocks/005930/quote", "Bearer kf_wrong", 401},
		{"/v1/stocks/005930/quote", "Bearer " + key, 200},
		{"/healthz", "", 200},
		{"/metrics", "", 200}, // METRICS_REQUIRE_KEY unset
	} {
		if got := get(tt.path, tt.auth); got != tt.want {
			t.Errorf("GET %s with %q: status %d, want %d", tt.path, tt.auth, got, tt.want)
		}
	}
	// loadtest sends KISFEED_API_KEY from its environment.
	for _, tt := range []struct {
		env    string
		status int
	}{{"KISFEED_API_KEY=" + key, 200}, {"KISFEED_API_KEY=", 401}} {
		var out, lterr bytes.Buffer
		lt := &app{environ: []string{"LOG_LEVEL=warn", tt.env}, stdin: strings.NewReader(""), stdout: &out, stderr: &lterr, clock: a.clock}
		root := newRootCmd(lt)
		root.SetArgs([]string{"loadtest", "--target", base, "--rate", "200", "--duration", "50ms", "--codes", "5", "--json"})
		_ = root.ExecuteContext(t.Context())
		var r struct {
			Completed int         `json:"completed"`
			Statuses  map[int]int `json:"statuses"`
		}
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("loadtest with %s: output %q: %v (stderr %s)", tt.env, out.String(), err, lterr.String())
		}
		if r.Completed == 0 || r.Statuses[tt.status] != r.Completed {
			t.Errorf("loadtest with %s: %+v, want every answer %d", tt.env, r, tt.status)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	log := stderr.String()
	if strings.Contains(log, key) || strings.Contains(log, "serve-test-key") {
		t.Errorf("log shows the key:\n%s", log)
	}
	for _, want := range []string{"API keys required on /v1", "keys=1", "key=web", "status=401"} {
		if !strings.Contains(log, want) {
			t.Errorf("log: missing %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "no API keys configured") {
		t.Errorf("log says no keys with one configured:\n%s", log)
	}
}

// TestServeNoKeysLoopback: without keys serve says, in one line, that it
// listens on loopback only.
func TestServeNoKeysLoopback(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	a := mockApp([]string{"LOG_LEVEL=info"}, &stderr)
	base, stop := startServe(t, a)
	if code, _ := httpGet(t, base+"/v1/stocks/005930/quote"); code != 200 {
		t.Errorf("quote without keys configured: status %d, want 200", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stderr.String(), "no API keys configured (KISFEED_API_KEYS): listening on loopback only"); n != 1 {
		t.Errorf("log has the loopback line %d times, want once:\n%s", n, stderr.String())
	}
}

// TestLogAccess: the one access line for each case.
func TestLogAccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		keys int
		addr net.Addr
		want string
	}{
		{"keys", 2, &net.TCPAddr{IP: net.IPv6zero, Port: 8080}, "level=INFO msg=\"API keys required on /v1\" keys=2"},
		{"loopback", 0, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, "level=INFO msg=\"no API keys configured (KISFEED_API_KEYS): listening on loopback only"},
		{"every interface", 0, &net.TCPAddr{IP: net.IPv6zero, Port: 8080}, "level=WARN msg=\"no API keys configured (KISFEED_API_KEYS): every route is public"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logAccess(slog.New(slog.NewTextHandler(&buf, nil)), tt.keys, tt.addr, false)
			if strings.Count(buf.String(), "\n") != 1 || !strings.Contains(buf.String(), tt.want) {
				t.Errorf("logged %q, want one line with %q", buf.String(), tt.want)
			}
		})
	}
}
