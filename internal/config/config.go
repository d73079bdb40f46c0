// Package config defines every kisfeed setting, read from the environment
// and an optional .env file. Only cmd/kisfeed calls [Load]; tests build a
// [Config] directly from [Default].
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
)

// Mode says which upstream the data-source factory builds.
type Mode string

// The upstream modes.
const (
	// ModeEmbedded runs the built-in emulator in-process and talks to it
	// through the real KIS client: the default when no credentials are set.
	ModeEmbedded Mode = "embedded"
	// ModeKIS talks to KIS (real or mock server, or KIS_BASE_URL).
	ModeKIS Mode = "kis"
	// ModeMock serves the synthetic market in-process, no HTTP at all.
	ModeMock Mode = "mock"
)

// AppKey is one KIS app key and its secret. The secret never prints.
type AppKey struct {
	Key    string
	Secret Secret
}

// Secret is a string that prints as *** in logs, errors and fmt verbs.
type Secret string

// String hides the value.
func (Secret) String() string { return "***" }

// GoString hides the value from %#v.
func (Secret) GoString() string { return `"***"` }

// LogValue hides the value from log/slog.
func (Secret) LogValue() any { return "***" }

// Reveal returns the secret itself, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

// Config is every setting. Field tags name the environment variables;
// .env.example documents each one.
type Config struct {
	// EnableKISAPI: unset = automatic (KIS when credentials or a base URL
	// are set, else the embedded emulator); "false" = synthetic market; "true" =
	// KIS, credentials required.
	EnableKISAPI string `env:"ENABLE_KIS_API"`

	AppKey    string `env:"KIS_APP_KEY"`
	AppSecret Secret `env:"KIS_APP_SECRET"`
	// AppKeys lists extra key:secret pairs, comma separated, to spread load.
	AppKeys       string        `env:"KIS_APP_KEYS"`
	UseRealServer bool          `env:"KIS_USE_REAL_SERVER" envDefault:"false"`
	BaseURL       string        `env:"KIS_BASE_URL"`
	RateLimit     float64       `env:"KIS_RATE_LIMIT"` // 0 = server default (18 real, 1 mock)
	Timeout       time.Duration `env:"KIS_TIMEOUT" envDefault:"10s"`
	TokenFile     string        `env:"KIS_TOKEN_FILE"` // "" = user cache dir
	RetryAttempts int           `env:"KIS_RETRY_ATTEMPTS" envDefault:"4"`
	TokenMargin   time.Duration `env:"KIS_TOKEN_REFRESH_MARGIN" envDefault:"10m"`
	MaxQueue      int           `env:"KIS_MAX_QUEUE" envDefault:"10000"`

	// MasterURL is the host serving the stock master zips
	// (/common/master/*.mst.zip). Empty = KIS's public download host
	// (kis.DefaultMasterURL), whatever KIS_BASE_URL says, so that a proxy
	// in front of the API is not asked for files it does not have — except
	// when KIS_BASE_URL is a loopback address: that is a local `kisfeed
	// emulator`, which serves the master files itself, and a machine
	// pointed at one is often offline (see MasterHost).
	MasterURL string `env:"KIS_MASTER_URL"`

	// StreamURL is the KIS WebSocket endpoint (REFERENCE §h.1). Empty =
	// by server: ws://ops.koreainvestment.com:21000/tryitout (real), port
	// 31000 (mock), or, when KIS_BASE_URL is set, the same host with ws://
	// and /tryitout (a `kisfeed emulator` serves both on one listener).
	StreamURL string `env:"KIS_WS_URL"`
	// StreamTRs picks the real-time TRs: "krx" (H0STCNT0/H0STASP0) or
	// "integrated" (H0UNCNT0/H0UNASP0, KRX+NXT, real server only).
	StreamTRs string `env:"KIS_STREAM_TRS" envDefault:"krx"`
	// StreamWatchdog reconnects a session that received neither data nor
	// PINGPONG for this long (three of KIS's ~10 s PINGPONGs missed).
	StreamWatchdog time.Duration `env:"KIS_STREAM_WATCHDOG" envDefault:"30s"`
	// StreamSubscribeRate paces subscribe/unsubscribe messages per session
	// (KIS warns that subscribe storms get an app key or IP blocked; 10/s
	// restores a full 41-registration session in about 4 s).
	StreamSubscribeRate float64 `env:"KIS_STREAM_SUBSCRIBE_RATE" envDefault:"10"`
	// ApprovalFile keeps WebSocket approval keys (24 h) across restarts;
	// "" = next to the token file. With REDIS_URL they are shared there.
	ApprovalFile string `env:"KIS_APPROVAL_FILE"`
	// StreamCodes are streamed by `serve` from start-up, their trades and
	// books written through into the cache; empty = none.
	StreamCodes string `env:"STREAM_CODES"`

	// Seed of the synthetic market (synthetic source and embedded emulator).
	Seed int64 `env:"KISFEED_SEED" envDefault:"1"`
	// MarketTime, when set, starts the synthetic market's clock (mock
	// source and embedded emulator) at this instant and lets it run in real
	// time from there — e.g. "2026-11-27T10:00:00+09:00" to load-test during
	// simulated market hours at any hour of the day. Empty = wall clock.
	MarketTime string `env:"KISFEED_MARKET_TIME"`

	RedisURL string `env:"REDIS_URL"`

	// NATSURL makes serve one replica of several: the replica holding the
	// stream lease (in Redis) runs the KIS sessions and publishes events on
	// NATS; every replica serves its consumers from NATS. Empty = one
	// process does it all in memory. Requires REDIS_URL.
	NATSURL string `env:"NATS_URL"`
	// Replica names this replica in the lease and on NATS; empty =
	// hostname-pid ([Config.ReplicaName]). It must be unique among live
	// replicas.
	Replica string `env:"KISFEED_REPLICA"`
	// StreamLeaseTTL is the stream lease's time to live: a dead holder's
	// sessions pass to another replica within about ttl + ttl/3.
	StreamLeaseTTL  time.Duration `env:"STREAM_LEASE_TTL" envDefault:"6s"`
	PriceTTL        time.Duration `env:"CACHE_PRICE_TTL" envDefault:"30m"`
	OrderBookTTL    time.Duration `env:"CACHE_ORDERBOOK_TTL" envDefault:"10s"`
	CandlesTTL      time.Duration `env:"CACHE_CANDLES_TTL" envDefault:"1h"`
	InfoTTL         time.Duration `env:"CACHE_INFO_TTL" envDefault:"24h"`
	StaleMaxAge     time.Duration `env:"CACHE_STALE_MAX_AGE" envDefault:"72h"`
	MemoryEntries   int           `env:"CACHE_MEMORY_ENTRIES" envDefault:"20000"`
	SharedRateLimit bool          `env:"KISFEED_SHARED_RATE_LIMIT" envDefault:"true"` // with REDIS_URL
	// QuoteBatchWindow is how long concurrent cold quote misses for
	// different codes are collected into one intstock-multprice call (≤ 30
	// codes) on servers that batch natively; 0 = no batching. 5 ms is what
	// a lone miss pays: a tenth of KIS's answer time and of the 55 ms
	// between rate slots at 18 req/s (see package batch).
	QuoteBatchWindow time.Duration `env:"QUOTE_BATCH_WINDOW" envDefault:"5ms"`

	// StaleBudget is how long a lookup with a stale copy waits for the
	// upstream before answering with the copy (the upstream call goes on
	// and fills the cache); 0 = wait for the upstream. See
	// cache.WithStaleBudget for the 150 ms default.
	StaleBudget time.Duration `env:"CACHE_STALE_BUDGET" envDefault:"150ms"`
	// RefreshRate is the most multi-quote calls per second refresh-ahead
	// makes to keep the most-requested prices fresh (0 = off; see
	// cache.Refresh). RefreshCodes bounds the codes kept warm, and
	// RefreshUniverse also warms codes not asked for yet.
	RefreshRate     float64 `env:"CACHE_REFRESH_RATE" envDefault:"2"`
	RefreshCodes    int     `env:"CACHE_REFRESH_CODES" envDefault:"3000"`
	RefreshUniverse bool    `env:"CACHE_REFRESH_UNIVERSE" envDefault:"true"`

	// BreakerFailures is how many failed exchanges in a row open the
	// circuit. 3, not gobreaker's 5: every failed attempt counts (see
	// source's retry gate), and when all lookups are fresh hits the only
	// call reaching KIS in an outage is refresh-ahead's, one at a time, so
	// the count grows only as fast as one call's retry backoff — 5
	// attempts span 4 backoffs (200 ms doubling, ±25 %: at least 2.25 s),
	// 3 span 0.45–0.75 s. A false opening is cheap to undo: the recovery
	// probe (BREAKER_PROBE_INTERVAL) closes it within about an interval.
	BreakerFailures  int           `env:"BREAKER_FAILURES" envDefault:"3"`
	BreakerDelay     time.Duration `env:"BREAKER_DELAY" envDefault:"60s"`
	BreakerSuccesses int           `env:"BREAKER_SUCCESSES" envDefault:"1"`
	// BreakerProbe is how often, while the circuit is open, one price
	// request checks whether KIS is back, so the circuit closes within an
	// interval of an outage's end instead of after BREAKER_DELAY. nil
	// (unset or empty) = automatic, see [Config.ProbeInterval]; 0 = off.
	BreakerProbe *time.Duration `env:"BREAKER_PROBE_INTERVAL"`

	DatabaseURL   string `env:"DATABASE_URL"` // "" = SQLite at ./kisfeed.db
	IngestWorkers int    `env:"INGEST_WORKERS" envDefault:"8"`

	// HTTPAddr is serve's listen address; empty = [Config.ListenAddr]'s
	// default (loopback without API keys).
	HTTPAddr  string `env:"KISFEED_ADDR"`
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`

	// APIKeyList lists the consumer API keys, hashed (see [Config.APIKeys]);
	// empty = no access control.
	APIKeyList string `env:"KISFEED_API_KEYS"`
	// APIKeyMissRate and APIKeyMissBurst are each key's default cache-miss
	// bucket: misses per second (0 = no limit) and burst.
	APIKeyMissRate  float64 `env:"KISFEED_API_KEY_MISS_RATE" envDefault:"5"`
	APIKeyMissBurst int     `env:"KISFEED_API_KEY_MISS_BURST" envDefault:"30"`
	// MetricsRequireKey makes /metrics ask for a key with the metrics
	// scope (else it is public, like /healthz).
	MetricsRequireKey bool `env:"METRICS_REQUIRE_KEY" envDefault:"false"`
}

// Default returns the configuration with every default applied, as if the
// environment were empty.
func Default() Config {
	c, err := parse(map[string]string{})
	if err != nil {
		panic(err) // defaults are constants; a failure is a programming error
	}
	return c
}

// Load reads the environment (environ as os.Environ returns it), then the
// .env file at dotenvPath if it exists (variables already set win), and
// validates the result. The error names every bad setting.
func Load(environ []string, dotenvPath string) (Config, error) {
	m := map[string]string{}
	if dotenvPath != "" {
		if b, err := os.ReadFile(dotenvPath); err == nil {
			vals, perr := godotenv.UnmarshalBytes(b)
			if perr != nil {
				return Config{}, dotenvError(dotenvPath, b)
			}
			for k, v := range vals {
				m[k] = v
			}
		}
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	c, perr := parse(m)
	verr := c.Validate()
	switch {
	case perr != nil && verr != nil:
		// Report both kinds at once so one run names every bad setting,
		// leaving out the follow-on complaint about a variable that did
		// not parse (it is zero now).
		msgs := []string{perr.Error()}
		for _, v := range strings.Split(strings.TrimPrefix(verr.Error(), "invalid configuration: "), "; ") {
			name, _, _ := strings.Cut(v, "=")
			if !strings.Contains(perr.Error(), name+"=") {
				msgs = append(msgs, v)
			}
		}
		return c, errors.New(strings.Join(msgs, "; "))
	case perr != nil:
		return c, perr
	}
	return c, verr
}

// dotenvError describes a .env file that does not parse by the line and
// variable where it stops, never by the parser's own message, which quotes
// the offending value — often KIS_APP_SECRET with a stray quote.
func dotenvError(path string, b []byte) error {
	lines := strings.SplitAfter(string(b), "\n")
	for i := range lines {
		if _, err := godotenv.Unmarshal(strings.Join(lines[:i+1], "")); err != nil {
			// Only a variable name is shown; a line without '=' may be a
			// pasted secret on its own.
			name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimSpace(lines[i]), "export "), "=")
			if name = strings.TrimSpace(name); !hasValue || !envName.MatchString(name) {
				name = "?"
			}
			return fmt.Errorf("read %s: line %d (%s): want KEY=value, quotes closed on the same line (the value is not shown: it may be a secret)", path, i+1, name)
		}
	}
	return fmt.Errorf("read %s: want KEY=value lines (the parser's message is not shown: it quotes values, which may be secrets)", path)
}

func parse(m map[string]string) (Config, error) {
	var c Config
	err := env.ParseWithOptions(&c, env.Options{Environment: m})
	if err != nil {
		var agg env.AggregateError
		if errors.As(err, &agg) {
			var msgs []string
			for _, e := range agg.Errors {
				msgs = append(msgs, describe(e, m))
			}
			return c, fmt.Errorf("invalid configuration: %s", strings.Join(msgs, "; "))
		}
		return c, fmt.Errorf("invalid configuration: %w", err)
	}
	return c, nil
}

// describe rewrites a parse error to name the environment variable and the
// value it could not use, instead of the Go field.
func describe(err error, m map[string]string) string {
	var pe env.ParseError
	if errors.As(err, &pe) {
		if f, ok := reflect.TypeOf(Config{}).FieldByName(pe.Name); ok {
			name := f.Tag.Get("env")
			want := map[string]string{
				"time.Duration":  "a duration like 10s or 5m",
				"*time.Duration": "a duration like 10s or 5m",
				"float64":        "a number",
				"int":            "a whole number",
				"int64":          "a whole number",
				"bool":           "true or false",
			}[pe.Type.String()]
			return fmt.Sprintf("%s=%q: want %s", name, m[name], want)
		}
	}
	return err.Error()
}

// Mode returns which upstream the settings select.
func (c Config) Mode() Mode {
	switch strings.ToLower(strings.TrimSpace(c.EnableKISAPI)) {
	case "false", "0", "no":
		return ModeMock
	case "true", "1", "yes":
		return ModeKIS
	}
	if c.AppKey != "" || c.BaseURL != "" || c.AppKeys != "" {
		return ModeKIS
	}
	return ModeEmbedded
}

// Keys returns every configured app key: KIS_APP_KEY first, then
// KIS_APP_KEYS in order.
func (c Config) Keys() ([]AppKey, error) {
	var keys []AppKey
	if c.AppKey != "" {
		keys = append(keys, AppKey{Key: c.AppKey, Secret: c.AppSecret})
	}
	for i, pair := range strings.Split(c.AppKeys, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, s, ok := strings.Cut(pair, ":")
		if !ok || k == "" || s == "" {
			return nil, fmt.Errorf("KIS_APP_KEYS entry %d: want key:secret", i+1)
		}
		keys = append(keys, AppKey{Key: k, Secret: Secret(s)})
	}
	return keys, nil
}

// EffectiveRate returns KIS_RATE_LIMIT, or the server's documented limit
// when unset: 18 req/s on the real server (KIS lowered it from 20 in 2026),
// 1 req/s on the mock server (REFERENCE §f).
func (c Config) EffectiveRate() float64 {
	if c.RateLimit > 0 {
		return c.RateLimit
	}
	if c.UseRealServer || c.Mode() == ModeEmbedded {
		return 18
	}
	return 1
}

// probeShare is the share of one app key's rate budget the automatic
// recovery probe spends while the circuit is open: one request in 18, which
// is one a second at the real server's 18 req/s.
const probeShare = 1.0 / 18

// minProbeInterval is the shortest BREAKER_PROBE_INTERVAL: a probe waits
// for a rate slot like any request, and much faster probing would take a
// large share of the budget the moment the circuit closes.
const minProbeInterval = 100 * time.Millisecond

// ProbeInterval is BREAKER_PROBE_INTERVAL with its automatic default
// applied: an interval that spends [probeShare] of the per-key rate, and
// never less than 1 s — 1 s on the real server and the built-in emulator
// (18 req/s: a closed circuit within a second of an outage's end, for 5.5 %
// of the budget, and only while the circuit is open), 18 s on KIS's mock
// server (1 req/s, where a probe a second would take every slot another
// replica sharing the key could use, and minutes of stale data cost a
// developer little). 0 = no probe.
func (c Config) ProbeInterval() time.Duration {
	if c.BreakerProbe != nil {
		return *c.BreakerProbe
	}
	return max(time.Second, time.Duration(float64(time.Second)/(probeShare*c.EffectiveRate())).Truncate(time.Millisecond))
}

// MarketStart parses KISFEED_MARKET_TIME: RFC 3339, or "YYYY-MM-DD HH:MM"
// read as KST. The zero time means "use the wall clock".
func (c Config) MarketStart() (time.Time, error) {
	if c.MarketTime == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, c.MarketTime); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", c.MarketTime, kst); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("KISFEED_MARKET_TIME=%q: want RFC 3339 like 2026-11-27T10:00:00+09:00 or \"2026-11-27 10:00\" (KST)", c.MarketTime)
}

// MarketClock returns the clock the synthetic market runs on: now itself
// without KISFEED_MARKET_TIME, else one that starts at that instant when
// MarketClock is called and advances with now.
func (c Config) MarketClock(now func() time.Time) func() time.Time {
	start, err := c.MarketStart()
	if err != nil || start.IsZero() {
		return now
	}
	origin := now()
	return func() time.Time { return start.Add(now().Sub(origin)) }
}

var kst = time.FixedZone("KST", 9*60*60)

// MasterHost is where the stock master files come from, "" for KIS's own
// download host (kis.DefaultMasterURL): KIS_MASTER_URL when set; else
// KIS_BASE_URL when it is a loopback address (a local `kisfeed emulator`
// serves /common/master/ beside the API, and a remote proxy forwards only
// the API); else "".
func (c Config) MasterHost() string {
	if c.MasterURL != "" {
		return c.MasterURL
	}
	if c.BaseURL == "" {
		return ""
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return ""
	}
	host := u.Hostname()
	if host == "localhost" {
		return c.BaseURL
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return c.BaseURL
	}
	return ""
}
