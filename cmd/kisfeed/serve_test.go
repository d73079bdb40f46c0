package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/mock"
	"github.com/kisfeed/kisfeed/internal/sim"
)

// TestServeAndLoadtest drives both commands end to end on loopback: serve
// over the mock source, a short loadtest against it, then shutdown.
func TestServeAndLoadtest(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.Date(2025, time.March, 11, 11, 0, 0, 0, kisfeed.KST) }
	var closed atomic.Bool
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	a := &app{
		environ: []string{"LOG_LEVEL=warn"}, stdin: strings.NewReader(""), stdout: pw, stderr: &stderr, now: now,
		newUpstream: func(ctx context.Context, cfg config.Config, log *slog.Logger) (*upstream, error) {
			return &upstream{Source: mock.NewSource(sim.New(1), now), Close: func() error { closed.Store(true); return nil }}, nil
		},
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() {
		root := newRootCmd(a)
		root.SetArgs([]string{"serve", "--addr", "127.0.0.1:0"})
		served <- root.ExecuteContext(ctx)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listening line: %v (stderr %s)", err, stderr.String())
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("first line: got %q, want listening on http://127.0.0.1:PORT", line)
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
	lt := &app{environ: []string{"LOG_LEVEL=warn"}, stdin: strings.NewReader(""), stdout: &out, stderr: &stderr, now: now}
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

	cancel()
	if err := <-served; err != nil {
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
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--access-log=false"},
			[]string{"ENABLE_KIS_API=false", "LOG_LEVEL=warn"}, strings.NewReader(""), pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listening line: %v", err)
	}
	base := strings.TrimPrefix(strings.TrimSpace(line), "listening on ")
	fetch := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 2 {
		if code, body := fetch("/v1/stocks/005930/quote"); code != 200 {
			t.Fatalf("quote: got %d %s, want 200", code, body)
		}
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
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code: got %d, want 0; stderr %s", code, stderr.String())
	}
}
