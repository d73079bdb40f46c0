package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/internal/synthetic"
)

// TestServeAndLoadtest drives both commands end to end on loopback: serve
// over the mock source, a short loadtest against it, then shutdown.
func TestServeAndLoadtest(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.Date(2025, time.March, 11, 11, 0, 0, 0, kisfeed.KST) }
	var closed atomic.Bool
	var stderr bytes.Buffer
	a := &app{
		environ: []string{"LOG_LEVEL=warn"}, stdin: strings.NewReader(""), stderr: &stderr, clock: kisfeed.Clock{Wall: now},
		newUpstream: func(ctx context.Context, cfg config.Config, log *slog.Logger) (*upstream, error) {
			return &upstream{Source: synthetic.NewSource(sim.New(1), kisfeed.Clock{Market: now}), Close: func() error { closed.Store(true); return nil }}, nil
		},
	}
	base, stop := startServe(t, a)
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("listening line: got base %q, want http://127.0.0.1:PORT", base)
	}

	resp, err := http.Get(base + "/v1/stocks/005930/quote")
	if err != nil {
		t.Fatal(err)
	}
	var q map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&q)
	resp.Body.Close()
	if resp.StatusCode != 200 || q["code"] != "005930" || q["source"] != "mock" {
		t.Errorf("quote: got %d %v, want 200 with code 005930 from mock", resp.StatusCode, q)
	}

	var out bytes.Buffer
	lt := &app{environ: []string{"LOG_LEVEL=warn"}, stdin: strings.NewReader(""), stdout: &out, stderr: &stderr, clock: kisfeed.Clock{Wall: now}}
	root := newRootCmd(lt)
	root.SetArgs([]string{"loadtest", "--target", base, "--rate", "500", "--duration", "100ms", "--codes", "20", "--json"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("loadtest: %v (stderr %s)", err, stderr.String())
	}
	var r struct {
		Completed int         `json:"completed"`
		Errors    int         `json:"errors"`
		Statuses  map[int]int `json:"statuses"`
		P99ms     float64     `json:"p99_ms"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("loadtest output %q: %v", out.String(), err)
	}
	if r.Completed != 50 || r.Errors != 0 || r.Statuses[200] != 50 || r.P99ms <= 0 {
		t.Errorf("loadtest: got %+v, want 50 completed, 0 errors, p99 > 0", r)
	}

	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`kisfeed_http_requests_total{method="GET",route="/v1/stocks/{code}/quote",status="200"} 51`, "go_goroutines", `kisfeed_breaker_state{state="closed"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics: missing %s", want)
		}
	}

	if err := stop(); err != nil {
		t.Errorf("serve: got %v, want nil after shutdown", err)
	}
	if !closed.Load() {
		t.Errorf("upstream Close: not called on shutdown")
	}
}

func TestServeBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
		want string
		env  string // one more environment setting, if any
	}{
		{"bad timeout", []string{"serve", "--request-timeout", "0s"}, 2, "want durations > 0", ""},
		{"address without a port", []string{"serve", "--addr", "garbage"}, 2, `--addr "garbage": want host:port with a port from 0 to 65535`, ""},
		{"port out of range", []string{"serve", "--addr", ":99999"}, 2, `--addr ":99999": want host:port`, ""},
		{"negative port", []string{"serve", "--addr", "127.0.0.1:-1"}, 2, "--addr", ""},
		{"host that cannot be bound", []string{"serve", "--addr", "256.0.0.1:0"}, 1, "listen 256.0.0.1:0", ""},
		{"bad KISFEED_ADDR", []string{"serve"}, 2, `KISFEED_ADDR ":99999": want host:port`, "KISFEED_ADDR=:99999"},
		{"loadtest without target", []string{"loadtest"}, 2, "target", ""},
		{"loadtest bad target", []string{"loadtest", "--target", "ftp://x", "--codes", "1"}, 2, "want an http(s) URL", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			env := []string{"ENABLE_KIS_API=false"}
			if tt.env != "" {
				env = append(env, tt.env)
			}
			code := run(t.Context(), tt.args, env, strings.NewReader(""), &stdout, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q: want exit %d and %q", code, stderr.String(), tt.code, tt.want)
			}
		})
	}
}

// TestServeFactoryMock runs serve through the real factory in mock mode:
// readiness lists the breaker, and cache metrics reach /metrics.
func TestServeFactoryMock(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	a := &app{environ: []string{"ENABLE_KIS_API=false", "LOG_LEVEL=warn"}, stdin: strings.NewReader(""), stderr: &stderr, clock: kisfeed.Clock{Wall: time.Now}}
	base, stop := startServe(t, a, "--access-log=false")
	fetch := func(path string) (int, string) { return httpGet(t, base+path) }
	for range 2 {
		if code, body := fetch("/v1/stocks/005930/quote"); code != 200 {
			t.Fatalf("quote: got %d %s, want 200", code, body)
		}
	}
	// The mock market's calendar is the built-in 2020–2027 table.
	if code, body := fetch("/v1/calendar/2031-01-01"); code != 422 || !strings.Contains(body, "no trading calendar for 2031-01-01: the built-in KRX calendar covers 2020–2027") {
		t.Errorf("calendar beyond the table: got %d %s, want 422 no trading calendar", code, body)
	}
	if code, body := fetch("/readyz"); code != 200 || !strings.Contains(body, `"breaker":"ok"`) {
		t.Errorf("/readyz: got %d %s, want 200 with breaker ok", code, body)
	}
	_, metrics := fetch("/metrics")
	for _, want := range []string{`kisfeed_cache_hits_total{kind="price"} 1`, `kisfeed_cache_misses_total{kind="price"} 1`, `kisfeed_breaker_state{state="closed"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics: missing %s", want)
		}
	}
	// Mock mode has no KIS client, so no rate gauges; the calendar
	// gauges are there whatever the day (their values depend on it).
	if strings.Contains(metrics, "kisfeed_kis_rate_limit{") || !strings.Contains(metrics, "kisfeed_krx_trading_day ") {
		t.Errorf("/metrics: want no kisfeed_kis_rate_limit series and a kisfeed_krx_trading_day in mock mode")
	}
	if err := stop(); err != nil {
		t.Errorf("serve: got %v, want nil after shutdown; stderr %s", err, stderr.String())
	}
}

// TestLoadtestFlagsBeforeTarget checks every loadtest flag is refused
// (exit 2, naming the flag) before the target hears a single request.
func TestLoadtestFlagsBeforeTarget(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(func() {
		srv.Close()
		if n := hits.Load(); n != 0 {
			t.Errorf("target requests: got %d, want 0 (flags are checked first)", n)
		}
	})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"target without scheme", []string{"--target", strings.TrimPrefix(srv.URL, "http://")}, "--target"},
		{"target without host", []string{"--target", "http://"}, "--target"},
		{"zero rate", []string{"--rate", "0"}, "--rate 0: want 0 < rate"},
		{"negative rate", []string{"--rate", "-1"}, "--rate -1"},
		{"zero duration", []string{"--duration", "0s"}, "--duration 0s: want > 0"},
		{"negative duration", []string{"--duration", "-1s"}, "--duration -1s"},
		{"no codes", []string{"--codes", "0"}, "--codes 0: want 1 or more"},
		{"zipf 1", []string{"--zipf", "1"}, "--zipf 1: want an exponent > 1"},
		{"zipf 0", []string{"--zipf", "0"}, "--zipf 0: want an exponent > 1"},
		{"zero concurrency", []string{"--concurrency", "0"}, "--concurrency 0: want 1 or more"},
		{"too few requests", []string{"--rate", "0.5", "--duration", "1s"}, "--rate × --duration = 0 requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"loadtest", "--target", srv.URL}, tt.args...)
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), args, []string{"ENABLE_KIS_API=false"}, strings.NewReader(""), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q: want exit 2 and %q", code, stderr.String(), tt.want)
			}
		})
	}
}

// TestLoadtestFailures checks the exit status: 1 when requests got a 5xx
// or no answer, with the figures still printed; 0 when only 4xx came back.
func TestLoadtestFailures(t *testing.T) {
	t.Parallel()
	serve := func(status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/stocks" {
				_, _ = io.WriteString(w, `{"stocks":[{"code":"005930"}]}`)
				return
			}
			w.WriteHeader(status)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	tests := []struct {
		name   string
		target string
		code   int
		stdout string
		stderr string
	}{
		{"every request 500", serve(500), 1, "statuses    500:5", "5 of 5 requests failed (5 5xx, 0 unanswered)"},
		{"only 404s", serve(404), 0, "statuses    404:5", ""},
		{"target down", down.URL, 1, "", "does not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), []string{"loadtest", "--target", tt.target, "--rate", "100", "--duration", "50ms"},
				[]string{"ENABLE_KIS_API=false"}, strings.NewReader(""), &stdout, &stderr)
			if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q: want exit %d, stdout with %q, stderr with %q",
					code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
			}
			if strings.Contains(stdout.String(), "x-cache    \n") {
				t.Errorf("stdout %q: an empty x-cache line", stdout.String())
			}
		})
	}
}

// startServe runs "kisfeed serve --addr 127.0.0.1:0 extra..." for a in the
// background, waits for its listening line and returns the base URL and
// stop, which shuts serve down and returns its error. a.stdout is taken
// over to read the listening line.
func startServe(t *testing.T, a *app, extra ...string) (base string, stop func() error) {
	t.Helper()
	pr, pw := io.Pipe()
	a.stdout = pw
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		root := newRootCmd(a)
		root.SetArgs(append([]string{"serve", "--addr", "127.0.0.1:0"}, extra...))
		served <- root.ExecuteContext(ctx)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("reading the listening line: %v", err)
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		cancel()
		t.Fatalf("first line: got %q, want listening on http://ADDR", line)
	}
	var once sync.Once
	var serveErr error
	stop = func() error {
		once.Do(func() { cancel(); serveErr = <-served })
		return serveErr
	}
	t.Cleanup(func() { _ = stop() })
	return base, stop
}

// httpGet fetches url and returns the status and body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
