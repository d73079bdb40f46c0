package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if c.Mode() != ModeEmbedded {
		t.Errorf("default mode = %s, want embedded", c.Mode())
	}
	if c.PriceTTL != 30*time.Minute || c.OrderBookTTL != 10*time.Second {
		t.Errorf("TTLs = %s/%s, want 30m/10s", c.PriceTTL, c.OrderBookTTL)
	}
	if c.BreakerFailures != 5 || c.BreakerDelay != time.Minute {
		t.Errorf("breaker = %d/%s, want 5/60s", c.BreakerFailures, c.BreakerDelay)
	}
	if c.EffectiveRate() != 18 {
		t.Errorf("embedded rate = %v, want 18", c.EffectiveRate())
	}
}

func TestModesAndRates(t *testing.T) {
	tests := []struct {
		env  []string
		mode Mode
		rate float64
	}{
		{nil, ModeEmbedded, 18},
		{[]string{"ENABLE_KIS_API=false"}, ModeMock, 1},
		{[]string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s"}, ModeKIS, 1},
		{[]string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s", "KIS_USE_REAL_SERVER=true"}, ModeKIS, 18},
		{[]string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s", "KIS_USE_REAL_SERVER=true", "KIS_RATE_LIMIT=20"}, ModeKIS, 20},
		{[]string{"ENABLE_KIS_API=true", "KIS_APP_KEY=k", "KIS_APP_SECRET=s"}, ModeKIS, 1},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, " "), func(t *testing.T) {
			c, err := Load(tt.env, "")
			if err != nil {
				t.Fatal(err)
			}
			if c.Mode() != tt.mode || c.EffectiveRate() != tt.rate {
				t.Errorf("mode, rate = %s, %v; want %s, %v", c.Mode(), c.EffectiveRate(), tt.mode, tt.rate)
			}
		})
	}
}

func TestInvalidNamesEverySetting(t *testing.T) {
	_, err := Load([]string{
		"ENABLE_KIS_API=true", // no key
		"KIS_RATE_LIMIT=-3",
		"CACHE_PRICE_TTL=0s",
		"LOG_LEVEL=loud",
		"REDIS_URL=http://x",
		"BREAKER_FAILURES=0",
	}, "")
	if err == nil {
		t.Fatal("Load accepted invalid settings")
	}
	for _, name := range []string{"KIS_APP_KEY", "KIS_RATE_LIMIT", "CACHE_PRICE_TTL", "LOG_LEVEL", "REDIS_URL", "BREAKER_FAILURES"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestUnparsable(t *testing.T) {
	for _, kv := range []string{"KIS_TIMEOUT=soon", "KIS_RATE_LIMIT=fast", "KISFEED_SEED=x", "KIS_USE_REAL_SERVER=maybe"} {
		_, err := Load([]string{kv}, "")
		name, _, _ := strings.Cut(kv, "=")
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Load(%s) error = %v, want one naming %s", kv, err, name)
		}
	}
}

func TestDotenvAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".env")
	if err := os.WriteFile(p, []byte("KIS_APP_KEY=fromfile\nKIS_APP_SECRET=filesecret\nKISFEED_SEED=7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{"KISFEED_SEED=9"}, p)
	if err != nil {
		t.Fatal(err)
	}
	if c.AppKey != "fromfile" || c.Seed != 9 {
		t.Errorf("AppKey=%q Seed=%d, want fromfile and 9 (environment wins)", c.AppKey, c.Seed)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, err := Load([]string{"KIS_APP_KEY=k", "KIS_APP_SECRET=supersecretvalue", "KIS_APP_KEYS=k2:othersecret"}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(c.AppSecret)} {
		if strings.Contains(s, "supersecretvalue") {
			t.Errorf("secret printed: %s", s)
		}
	}
	keys, err := c.Keys()
	if err != nil || len(keys) != 2 || keys[1].Key != "k2" || keys[1].Secret.Reveal() != "othersecret" {
		t.Errorf("Keys() = %v, %v", keys, err)
	}
	if _, err := (Config{AppKeys: "nosecret"}).Keys(); err == nil || !strings.Contains(err.Error(), "KIS_APP_KEYS") {
		t.Errorf("Keys(nosecret) error = %v, want one naming KIS_APP_KEYS", err)
	}
	if got := Redact("postgres://u:pw@h/db"); strings.Contains(got, "pw") {
		t.Errorf("Redact left the password: %s", got)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("KIS_TIMEOUT", "10s")
	f.Add("KIS_RATE_LIMIT", "18")
	f.Add("REDIS_URL", "redis://127.0.0.1:6379/0")
	f.Add("ENABLE_KIS_API", "true")
	f.Fuzz(func(t *testing.T, k, v string) {
		c, err := Load([]string{k + "=" + v}, "")
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Load ok but Validate = %v", verr)
			}
		}
	})
}

func TestParseAndValidateTogether(t *testing.T) {
	_, err := Load([]string{"KIS_TIMEOUT=soon", "LOG_LEVEL=loud"}, "")
	if err == nil || !strings.Contains(err.Error(), "KIS_TIMEOUT") || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Errorf("error %v should name both KIS_TIMEOUT and LOG_LEVEL", err)
	}
	t.Log(err)
}

// TestEnvExample keeps .env.example loadable and complete: every variable the
// Config reads is documented there.
func TestEnvExample(t *testing.T) {
	path := filepath.Join("..", "..", ".env.example")
	c, err := Load(nil, path)
	if err != nil {
		t.Fatalf("Load(.env.example) = %v", err)
	}
	if c.Mode() != ModeEmbedded {
		t.Errorf(".env.example mode = %s, want embedded", c.Mode())
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		name := typ.Field(i).Tag.Get("env")
		if name != "" && !strings.Contains(string(doc), name+"=") {
			t.Errorf(".env.example does not document %s", name)
		}
	}
}

func TestMarketClock(t *testing.T) {
	wall := time.Date(2026, 11, 27, 22, 0, 0, 0, time.UTC)
	now := func() time.Time { return wall }
	c, err := Load([]string{"KISFEED_MARKET_TIME=2026-11-27 10:00"}, "")
	if err != nil {
		t.Fatal(err)
	}
	clock := c.MarketClock(now)
	wall = wall.Add(90 * time.Second)
	want := time.Date(2026, 11, 27, 1, 1, 30, 0, time.UTC) // 10:01:30 KST
	if got := clock(); !got.Equal(want) {
		t.Errorf("market clock = %s, want %s", got, want)
	}
	if got := Default().MarketClock(now)(); !got.Equal(wall) {
		t.Errorf("default market clock = %s, want the wall clock %s", got, wall)
	}
	if _, err := Load([]string{"KISFEED_MARKET_TIME=tomorrow"}, ""); err == nil || !strings.Contains(err.Error(), "KISFEED_MARKET_TIME") {
		t.Errorf("bad KISFEED_MARKET_TIME error = %v", err)
	}
}
