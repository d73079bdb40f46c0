package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

func TestEmulatorCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"emulator", "--addr", "127.0.0.1:0", "--server", "mock", "--seed", "3"}, nil, strings.NewReader(""), pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the ready line: %v (stderr %s)", err, stderr.String())
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("ready line: got %q, want listening on http://127.0.0.1:PORT", line)
	}
	resp, err := http.Post(base+"/oauth2/tokenP", "application/json",
		strings.NewReader(`{"grant_type":"client_credentials","appkey":"k","appsecret":"s"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"expires_in":86400`) {
		t.Errorf("tokenP: got HTTP %d %s", resp.StatusCode, body)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code after cancel: got %d, want 0 (stderr %s)", code, stderr.String())
	}
}

func TestEmulatorCommandBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--server", "paper"}, "--server"},
		{[]string{"--fault", "error=0.1,boom=1"}, `unknown fault "boom"`},
		{[]string{"--latency", "uniform:9ms-1ms"}, "--latency"},
		{[]string{"--rate", "-1"}, "--rate"},
		{[]string{"--token-ttl", "0s"}, "--token-ttl"},
		{[]string{"--app-key", "nocolon"}, "--app-key"},
		{[]string{"--addr", "nowhere"}, "--addr"},
		{[]string{"--addr", "127.0.0.1:99999"}, `--addr "127.0.0.1:99999": want host:port with a port from 0 to 65535`},
		{[]string{"--addr", "127.0.0.1:-1"}, "--addr"},
		{[]string{"--token-ttl", "-1s"}, "--token-ttl -1s: want at least 1s"},
		{[]string{"--server", "bogus"}, `--server "bogus": want real or mock`},
		{[]string{"--bogus"}, "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append([]string{"emulator"}, tc.args...), nil, strings.NewReader(""), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("got exit %d stderr %q, want 2 mentioning %q", code, stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: got %q, want nothing", stdout.String())
			}
		})
	}
}

// TestEmulatorCommandWebSocket: the command serves the WebSocket on its
// listener, honours KISFEED_MARKET_TIME, and shuts down with a session
// open.
func TestEmulatorCommandWebSocket(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	env := []string{"KISFEED_MARKET_TIME=2026-11-27 10:00"}
	go func() {
		done <- run(ctx, []string{"emulator", "--addr", "127.0.0.1:0", "--feed-interval", "10ms"}, env, strings.NewReader(""), pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the ready line: %v (stderr %s)", err, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	base := strings.TrimPrefix(strings.TrimSpace(line), "listening on ")
	resp, err := http.Post(base+"/oauth2/Approval", "application/json",
		strings.NewReader(`{"grant_type":"client_credentials","appkey":"k","secretkey":"s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var ap struct {
		ApprovalKey string `json:"approval_key"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&ap)
	resp.Body.Close()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/tryitout", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	sub := `{"header":{"approval_key":"` + ap.ApprovalKey + `","custtype":"P","tr_type":"1","content-type":"utf-8"},` +
		`"body":{"input":{"tr_id":"H0STASP0","tr_key":"005930"}}}`
	if err := c.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
		t.Fatal(err)
	}
	for {
		_, m, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if rest, ok := strings.CutPrefix(string(m), "0|H0STASP0|001|005930^"); ok {
			if !strings.HasPrefix(rest, "1000") {
				t.Errorf("book at %.6s, want 10:00 (KISFEED_MARKET_TIME)", rest)
			}
			break
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code after cancel with a session open: got %d, want 0 (stderr %s)", code, stderr.String())
	}
}
