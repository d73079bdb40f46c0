package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestLoadtestStreamUsage: every bad flag is refused, exit 2, naming the
// flag, before any target is contacted (the target here does not exist).
func TestLoadtestStreamUsage(t *testing.T) {
	t.Parallel()
	base := []string{"loadtest", "stream", "--target", "http://127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"loadtest", "stream"}, "--target is required"},
		{[]string{"loadtest", "stream", "--target", "ftp://x"}, "--target \"ftp://x\""},
		{append(base, "--clients", "0"), "--clients 0: want 1 to 100000"},
		{append(base, "--per-client", "101", "--codes", "200"), "--per-client 101: want 1 to 100"},
		{append(base, "--per-client", "6", "--codes", "5"), "--per-client 6: more than --codes 5"},
		{append(base, "--codes", "0"), "--codes 0: want 1 or more"},
		{append(base, "--kinds", "trade,quote"), "--kinds \"quote\": want trade and/or book"},
		{append(base, "--duration", "0s"), "--duration 0s: want > 0"},
		{append(base, "--ramp", "-1s"), "--ramp -1s: want >= 0"},
		{append(base, "--clients", "2", "--slow", "3"), "--slow 3: want 0 to --clients (2)"},
		{append(base, "--drain", "0s"), "--drain 0s: want > 0"},
		{append(base, "--code-list", "005930,12"), "--code-list: invalid"},
		{append(base, "--code-list", "005930", "--per-client", "2"), "--per-client 2: more than the 1 codes of --code-list"},
		{append(base, "extra"), "loadtest stream takes no arguments, got \"extra\""},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), tc.args, []string{"ENABLE_KIS_API=false"}, strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q: want 2 and %q", tc.args[2:], code, stderr.String(), tc.want)
		}
	}
}

// TestLoadtestStreamHelp: --help teaches with examples, and plain
// loadtest names its stream subcommand without losing its own flags.
func TestLoadtestStreamHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"loadtest", "stream", "--help"}, []string{"Examples:", "--clients 1000 --codes 40 --per-client 5 --duration 5m",
			"--slow 1", "--ws", "delivery latency", "kisfeed_stream_*drop*", "KISFEED_API_KEY"}},
		{[]string{"loadtest", "--help"}, []string{"--rate", "--zipf", "stream", "kisfeed loadtest stream"}},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), tc.args, nil, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d (stderr %q)", tc.args, code, stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%v lacks %q", tc.args, w)
			}
		}
	}
}

// TestLoadtestStreamRun: against a minimal stream server, the command
// lists the codes from the target, sends KISFEED_API_KEY as a bearer
// token on every connection, and prints the figures as JSON.
func TestLoadtestStreamRun(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex // guards auths, streams
	var auths []string
	var streams []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stocks", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"stocks":[{"code":"000010"},{"code":"000020"},{"code":"000030"}]}`)
	})
	mux.HandleFunc("GET /v1/stream", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		streams = append(streams, r.URL.Query().Get("codes"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "id: e-1\nevent: trade\ndata: {\"received_at\":\"2026-03-03T01:00:00.000Z\",\"time\":\"2026-03-03T10:00:00+09:00\"}\n\n")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	args := []string{"loadtest", "stream", "--target", srv.URL, "--clients", "3", "--codes", "2", "--per-client", "1", "--ramp", "0s", "--json"}
	if code := run(t.Context(), args, []string{"KISFEED_API_KEY=kf_test"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d (stderr %q)", code, stderr.String())
	}
	var r struct {
		Connected   int            `json:"connected"`
		Events      map[string]int `json:"events"`
		Disconnects map[string]int `json:"disconnects"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if r.Connected != 3 || r.Events["trade"] != 3 || r.Disconnects["eof"] != 3 {
		t.Errorf("got %+v: want 3 connected, 3 trades, 3 eof", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(auths, " ") != "Bearer kf_test Bearer kf_test Bearer kf_test" {
		t.Errorf("authorization headers: got %q, want the key on each stream", auths)
	}
	// --codes 2 of the 3 listed: consumers on 000010, 000020, 000010.
	if got := strings.Join(slices.Sorted(slices.Values(streams)), ","); got != "000010,000010,000020" {
		t.Errorf("streams: got %s, want two on 000010, one on 000020", got)
	}
}
