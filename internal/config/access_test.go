package config

import (
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed/internal/access"
)

// TestAPIKeysErrors: a bad key list or quota names the variable, the
// entry and the field.
func TestAPIKeysErrors(t *testing.T) {
	t.Parallel()
	h := access.Hash("kf_x")
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"malformed hash", []string{"KISFEED_API_KEYS=alice:" + h + ",bob:12ab"}, []string{"KISFEED_API_KEYS entry 2 (bob): hash: want 64 hex digits"}},
		{"duplicate name", []string{"KISFEED_API_KEYS=alice:" + h + ",alice:" + access.Hash("kf_y")}, []string{"KISFEED_API_KEYS entry 2 (alice): name: already used by entry 1"}},
		{"bad override", []string{"KISFEED_API_KEYS=alice:" + h + ":burst=x"}, []string{"KISFEED_API_KEYS entry 1 (alice): burst:"}},
		{"negative rate", []string{"KISFEED_API_KEY_MISS_RATE=-1"}, []string{"KISFEED_API_KEY_MISS_RATE=-1: want cache misses per second >= 0"}},
		{"rate not a number", []string{"KISFEED_API_KEY_MISS_RATE=fast"}, []string{`KISFEED_API_KEY_MISS_RATE="fast": want a number`}},
		{"zero burst", []string{"KISFEED_API_KEY_MISS_BURST=0"}, []string{"KISFEED_API_KEY_MISS_BURST=0: want 1 or more"}},
		{"metrics key without keys", []string{"METRICS_REQUIRE_KEY=true"}, []string{"METRICS_REQUIRE_KEY=true: no key in KISFEED_API_KEYS has the metrics scope"}},
		{"metrics key without the scope", []string{"METRICS_REQUIRE_KEY=true", "KISFEED_API_KEYS=alice:" + h}, []string{"METRICS_REQUIRE_KEY=true: no key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(tt.env, "")
			if err == nil {
				t.Fatal("Load: nil error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want it to contain %q", err, w)
				}
			}
		})
	}
	c, err := Load([]string{"METRICS_REQUIRE_KEY=true", "KISFEED_API_KEY_MISS_RATE=2", "KISFEED_API_KEYS=ops:" + h + ":scopes=metrics, web:" + access.Hash("kf_y") + ":rate=0"}, "")
	if err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	keys, err := c.APIKeys()
	if err != nil || len(keys) != 2 || keys[0].Quota.MissRate != 2 || keys[1].Quota.MissRate != 0 || keys[0].Quota.MissBurst != 30 {
		t.Errorf("APIKeys() = %+v, %v; want ops at 2/s burst 30 and web unlimited", keys, err)
	}
}

// TestListenAddr: loopback by default without keys, every interface with
// keys, and an explicit KISFEED_ADDR always wins.
func TestListenAddr(t *testing.T) {
	t.Parallel()
	key := "KISFEED_API_KEYS=alice:" + access.Hash("kf_x")
	tests := []struct {
		name     string
		env      []string
		addr     string
		loopback bool
	}{
		{"no keys", nil, "127.0.0.1:8080", true},
		{"keys", []string{key}, ":8080", false},
		{"explicit without keys", []string{"KISFEED_ADDR=:9090"}, ":9090", false},
		{"explicit with keys", []string{key, "KISFEED_ADDR=10.0.0.1:80"}, "10.0.0.1:80", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tt.env, "")
			if err != nil {
				t.Fatal(err)
			}
			if addr, lb := c.ListenAddr(); addr != tt.addr || lb != tt.loopback {
				t.Errorf("ListenAddr() = %q, %v; want %q, %v", addr, lb, tt.addr, tt.loopback)
			}
		})
	}
}
