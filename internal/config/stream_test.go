package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed"
)

func TestStreamSettings(t *testing.T) {
	for _, tc := range []struct {
		env     string
		wantErr string // "" = valid
	}{
		{"KIS_WS_URL=ws://127.0.0.1:9443/tryitout", ""},
		{"KIS_WS_URL=wss://ops.example.com/tryitout", ""},
		{"KIS_WS_URL=http://127.0.0.1:9443", "KIS_WS_URL=\"http://127.0.0.1:9443\": want a ws(s) URL"},
		{"KIS_STREAM_TRS=integrated", ""},
		{"KIS_STREAM_TRS=nxt", "KIS_STREAM_TRS=\"nxt\": want krx or integrated"},
		{"KIS_STREAM_WATCHDOG=0s", "KIS_STREAM_WATCHDOG=0s: want a duration > 0"},
		{"KIS_STREAM_SUBSCRIBE_RATE=0", "KIS_STREAM_SUBSCRIBE_RATE=0: want messages per second"},
		{"KIS_STREAM_SUBSCRIBE_RATE=500", "KIS_STREAM_SUBSCRIBE_RATE=500: want messages per second"},
		{"STREAM_CODES=005930, 000660", ""},
		{"STREAM_CODES=005930,59300", "STREAM_CODES entry 2:"},
		{"STREAM_CODES=005930,005930", "STREAM_CODES entry 2: 005930 listed twice"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			_, err := Load([]string{tc.env}, "")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Load error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestStreamCodeList(t *testing.T) {
	c, err := Load([]string{"STREAM_CODES=005930, 000660 035420"}, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.StreamCodeList()
	if err != nil {
		t.Fatal(err)
	}
	var want []kisfeed.Code
	for _, s := range []string{"005930", "000660", "035420"} {
		code, _ := kisfeed.ParseCode(s)
		want = append(want, code)
	}
	if !slices.Equal(got, want) {
		t.Errorf("StreamCodeList = %v, want %v", got, want)
	}
	if d := Default(); d.StreamTRs != "krx" || d.StreamWatchdog.String() != "30s" || d.StreamSubscribeRate != 10 {
		t.Errorf("defaults: trs %q watchdog %s rate %v", d.StreamTRs, d.StreamWatchdog, d.StreamSubscribeRate)
	}
}

func TestWebSocketURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		env      []string
		restBase string
		want     string
	}{
		{"KIS_WS_URL wins", []string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s", "KIS_WS_URL=ws://10.0.0.1:1/x", "KIS_BASE_URL=http://127.0.0.1:9443"}, "", "ws://10.0.0.1:1/x"},
		{"base URL's host", []string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s", "KIS_BASE_URL=http://127.0.0.1:9443/prefix"}, "http://ignored:1", "ws://127.0.0.1:9443/tryitout"},
		{"https base is wss", []string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s", "KIS_BASE_URL=https://proxy.example:8443"}, "", "wss://proxy.example:8443/tryitout"},
		{"embedded: the emulator's address", nil, "http://127.0.0.1:40001", "ws://127.0.0.1:40001/tryitout"},
		{"kis real", []string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s", "KIS_USE_REAL_SERVER=true"}, "https://openapi.koreainvestment.com:9443", RealWSURL},
		{"kis mock", []string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s"}, "https://openapivts.koreainvestment.com:29443", MockWSURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(tc.env, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.WebSocketURL(tc.restBase); got != tc.want {
				t.Errorf("WebSocketURL(%q) = %q, want %q", tc.restBase, got, tc.want)
			}
		})
	}
}

func TestApprovalPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{ApprovalFile: "/x/a.json", TokenFile: "/y/t.json"}, "/x/a.json"},
		{Config{TokenFile: "/y/t.json"}, "/y/approval-keys.json"},
	} {
		if got := tc.cfg.ApprovalPath(); got != tc.want {
			t.Errorf("ApprovalPath(%+v) = %q, want %q", tc.cfg, got, tc.want)
		}
	}
	if got := (Config{}).ApprovalPath(); got != "" && !strings.HasSuffix(got, "kisfeed/approval-keys.json") {
		t.Errorf("default ApprovalPath = %q, want …/kisfeed/approval-keys.json", got)
	}
}
