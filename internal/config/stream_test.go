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
