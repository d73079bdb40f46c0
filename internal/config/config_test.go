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
	if c.BreakerFailures != 3 || c.BreakerDelay != time.Minute {
		t.Errorf("breaker = %d/%s, want 3/60s", c.BreakerFailures, c.BreakerDelay)
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
		"QUOTE_BATCH_WINDOW=-5ms",
		"CACHE_STALE_BUDGET=-1s",
		"CACHE_REFRESH_RATE=-1",
		"BREAKER_PROBE_INTERVAL=-1s",
	}, "")
	if err == nil {
		t.Fatal("Load accepted invalid settings")
	}
	for _, name := range []string{"KIS_APP_KEY", "KIS_RATE_LIMIT", "CACHE_PRICE_TTL", "LOG_LEVEL", "REDIS_URL", "BREAKER_FAILURES", "QUOTE_BATCH_WINDOW", "CACHE_STALE_BUDGET", "CACHE_REFRESH_RATE", "BREAKER_PROBE_INTERVAL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestProbeInterval(t *testing.T) {
	real := []string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s", "KIS_USE_REAL_SERVER=true"}
	mockServer := []string{"KIS_APP_KEY=k", "KIS_APP_SECRET=s"}
	tests := []struct {
		name    string
		env     []string
		want    time.Duration
		wantErr bool
	}{
		{"embedded: 1 s", nil, time.Second, false},
		{"real server: 1 s", real, time.Second, false},
		{"mock server (1 req/s): 18 s", mockServer, 18 * time.Second, false},
		{"mock server at 2 req/s: 9 s", append(mockServer, "KIS_RATE_LIMIT=2"), 9 * time.Second, false},
		{"real server above 18 req/s: still 1 s", append(real, "KIS_RATE_LIMIT=40"), time.Second, false},
		{"empty is automatic", append(mockServer, "BREAKER_PROBE_INTERVAL="), 18 * time.Second, false},
		{"0 is off", append(real, "BREAKER_PROBE_INTERVAL=0"), 0, false},
		{"set", append(mockServer, "BREAKER_PROBE_INTERVAL=3s"), 3 * time.Second, false},
		{"too short", []string{"BREAKER_PROBE_INTERVAL=10ms"}, 0, true},
		{"negative", []string{"BREAKER_PROBE_INTERVAL=-1s"}, 0, true},
		{"unparsable", []string{"BREAKER_PROBE_INTERVAL=often"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.env, "")
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "BREAKER_PROBE_INTERVAL") {
					t.Errorf("Load(%v) error = %v, want one naming BREAKER_PROBE_INTERVAL", tt.env, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ProbeInterval(); got != tt.want {
				t.Errorf("ProbeInterval() = %s, want %s", got, tt.want)
			}
		})
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

func TestRedact(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"password", "postgres://u:pw@h:5432/db", "postgres://u:***@h:5432/db"},
		{"user only", "redis://u@h:6379/0", "redis://u@h:6379/0"},
		{"no userinfo", "redis://h:6379/0", "redis://h:6379/0"},
		{"unparsable password", "redis://:S3CRET%zz@h:6379/0", "redis://***@h:6379/0"},
		{"password with #", "postgres://u:a#S3CRET@h/db", "postgres://***@h/db"},
		{"password with @", "postgres://u:a@S3CRET@h/db", "postgres://u:***@h/db"},
		{"query password", "postgres://h/db?user=u&password=S3CRET&sslmode=disable", "postgres://h/db?user=u&password=***&sslmode=disable"},
		{"no scheme", "u:S3CRET@h", "***@h"},
		{"path", "./kisfeed.db", "./kisfeed.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.raw); got != tt.want {
				t.Errorf("Redact(%q): got %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestBadURLsNeverPrintThePassword(t *testing.T) {
	tests := []struct {
		name, env, wantVar string
	}{
		{"redis unparsable", "REDIS_URL=redis://:S3CRET%zz@h:6379/0", "REDIS_URL"},
		{"redis wrong scheme", "REDIS_URL=http://u:S3CRET@h:6379/0", "REDIS_URL"},
		{"database wrong scheme", "DATABASE_URL=mysql://u:S3CRET@h/db", "DATABASE_URL"},
		{"database http", "DATABASE_URL=http://x", "DATABASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]string{tt.env}, "")
			if err == nil {
				t.Fatalf("Load(%s): got no error, want one naming %s", tt.env, tt.wantVar)
			}
			if !strings.Contains(err.Error(), tt.wantVar) {
				t.Errorf("error %q: want it to name %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error(), "S3CRET") {
				t.Errorf("error %q prints the password", err)
			}
		})
	}
	for _, ok := range []string{"postgres://u:p@h/db", "postgresql://h/db", "sqlite:x.db", "sqlite://x.db", "file:x.db", "x.db", "/tmp/x.db"} {
		if err := ValidateDatabaseURL(ok); err != nil {
			t.Errorf("ValidateDatabaseURL(%q): got %v, want nil", ok, err)
		}
	}
}

func TestBadDotenvNeverPrintsItsValues(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"unterminated quote", "KIS_APP_KEY=abc\nKIS_APP_SECRET=\"S3CRET\nLOG_LEVEL=info\n", "line 2 (KIS_APP_SECRET)"},
		{"garbage line", "KIS_APP_KEY=abc\nS3CRET garbage here\n", "line 2"},
		{"bare secret line", "KIS_APP_KEY=abc\nS3CRETVALUE\n", "line 2 (?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".env")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(nil, path)
			if err == nil {
				t.Fatal("Load: got no error, want one naming the bad line")
			}
			if strings.Contains(err.Error(), "S3CRET") {
				t.Errorf("error %q prints a value from the file", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := Load([]string{"KIS_BASE_URL=ftp://u:S3CRET@h", "KIS_APP_KEY=k", "KIS_APP_SECRET=s"}, ""); err == nil ||
		strings.Contains(err.Error(), "S3CRET") || !strings.Contains(err.Error(), "KIS_BASE_URL") {
		t.Errorf("bad KIS_BASE_URL: got %v, want an error naming KIS_BASE_URL without the password", err)
	}
}
