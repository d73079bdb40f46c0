package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Validate checks every setting and reports all problems at once, each
// naming its variable and what was expected.
func (c Config) Validate() error {
	var p problems
	c.validateUpstream(&p)
	c.validateTimes(&p)
	c.validateCounts(&p)
	c.validateStores(&p)
	c.validateAccess(&p)
	c.validateReplicas(&p)
	if len(p) == 0 {
		return nil
	}
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("invalid configuration: %s", strings.Join(msgs, "; "))
}

// problems collects what [Config.Validate] finds, in the order found.
type problems []error

func (p *problems) add(err error) { *p = append(*p, err) }

func (p *problems) bad(format string, a ...any) { p.add(fmt.Errorf(format, a...)) }

// httpURL reports v, when set, unless it is an http(s) URL with a host.
func (p *problems) httpURL(name, v, example string) {
	if v == "" {
		return
	}
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.bad("%s=%q: want an http(s) URL like %s", name, redact(v), example)
	}
}

// positive reports a duration that is not above zero.
func (p *problems) positive(name string, d time.Duration) {
	if d <= 0 {
		p.bad("%s=%s: want a duration > 0 like 30s", name, d)
	}
}

// atLeast reports a count below lo.
func (p *problems) atLeast(name string, v, lo int) {
	if v < lo {
		p.bad("%s=%d: want %d or more", name, v, lo)
	}
}

// validateUpstream checks where the data comes from: the KIS switch,
// keys and URLs, the market clock and the rate limit.
func (c Config) validateUpstream(p *problems) {
	switch strings.ToLower(strings.TrimSpace(c.EnableKISAPI)) {
	case "", "true", "false", "1", "0", "yes", "no":
	default:
		p.bad("ENABLE_KIS_API=%q: want true or false", c.EnableKISAPI)
	}
	keys, err := c.Keys()
	if err != nil {
		p.add(err)
	}
	if c.Mode() == ModeKIS {
		if len(keys) == 0 && c.AppKeys == "" {
			p.bad("KIS_APP_KEY required when ENABLE_KIS_API=true or KIS_BASE_URL is set")
		}
		if c.AppKey != "" && c.AppSecret == "" {
			p.bad("KIS_APP_SECRET required with KIS_APP_KEY")
		}
	}
	p.httpURL("KIS_BASE_URL", c.BaseURL, "http://127.0.0.1:9443")
	p.httpURL("KIS_MASTER_URL", c.MasterURL, "https://new.real.download.dws.co.kr")
	c.validateStream(p)
	if c.MarketTime != "" {
		if _, err := c.MarketStart(); err != nil {
			p.add(err)
		}
	}
	if c.RateLimit < 0 {
		p.bad("KIS_RATE_LIMIT=%v: want a rate > 0 (requests per second)", c.RateLimit)
	}
}

// validateTimes checks the timeouts, TTLs and intervals.
func (c Config) validateTimes(p *problems) {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"KIS_TIMEOUT", c.Timeout}, {"CACHE_PRICE_TTL", c.PriceTTL}, {"CACHE_ORDERBOOK_TTL", c.OrderBookTTL},
		{"CACHE_CANDLES_TTL", c.CandlesTTL}, {"CACHE_INFO_TTL", c.InfoTTL}, {"CACHE_STALE_MAX_AGE", c.StaleMaxAge},
	} {
		p.positive(d.name, d.v)
	}
	if c.StaleBudget < 0 {
		p.bad("CACHE_STALE_BUDGET=%s: want a duration >= 0 like 150ms (0 = wait for the upstream)", c.StaleBudget)
	}
	if c.RefreshRate < 0 {
		p.bad("CACHE_REFRESH_RATE=%v: want calls per second >= 0 (0 = no refresh-ahead)", c.RefreshRate)
	}
	if c.RefreshCodes < 0 {
		p.bad("CACHE_REFRESH_CODES=%d: want 0 or more (0 = 3000)", c.RefreshCodes)
	}
	p.positive("BREAKER_DELAY", c.BreakerDelay)
	if bp := c.BreakerProbe; bp != nil && *bp != 0 && *bp < minProbeInterval {
		p.bad("BREAKER_PROBE_INTERVAL=%s: want 0 (off), empty (automatic) or at least %s, like 1s", *bp, minProbeInterval)
	}
	if c.QuoteBatchWindow < 0 || c.QuoteBatchWindow > time.Second {
		p.bad("QUOTE_BATCH_WINDOW=%s: want 0 (off) to 1s, like 5ms", c.QuoteBatchWindow)
	}
	if c.TokenMargin < 0 || c.TokenMargin >= 24*time.Hour {
		p.bad("KIS_TOKEN_REFRESH_MARGIN=%s: want 0 to 24h", c.TokenMargin)
	}
}

// validateCounts checks the sizes and counts.
func (c Config) validateCounts(p *problems) {
	p.atLeast("KIS_RETRY_ATTEMPTS", c.RetryAttempts, 0)
	p.atLeast("KIS_MAX_QUEUE", c.MaxQueue, 1)
	p.atLeast("CACHE_MEMORY_ENTRIES", c.MemoryEntries, 1)
	p.atLeast("BREAKER_FAILURES", c.BreakerFailures, 1)
	p.atLeast("BREAKER_SUCCESSES", c.BreakerSuccesses, 1)
	if c.IngestWorkers < 1 || c.IngestWorkers > 256 {
		p.bad("INGEST_WORKERS=%d: want 1 to 256", c.IngestWorkers)
	}
}

// validateStores checks the Redis and database URLs and the logging.
func (c Config) validateStores(p *problems) {
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			p.bad("REDIS_URL=%q: want redis://host:port/db", redact(c.RedisURL))
		}
	}
	if c.DatabaseURL != "" {
		if err := ValidateDatabaseURL(c.DatabaseURL); err != nil {
			p.bad("DATABASE_URL=%v", err)
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		p.bad("LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel)
	}
	switch strings.ToLower(c.LogFormat) {
	case "text", "json":
	default:
		p.bad("LOG_FORMAT=%q: want text or json", c.LogFormat)
	}
}

// redact hides a password in a URL. It works on the text, not on a parsed
// URL, because the URLs that most need hiding are the ones that do not
// parse (a password with a stray '%' or '#'): url.Parse fails on them and
// printing them whole would print the password. Everything between the
// scheme and the last '@' of the authority is userinfo; with a ':' the part
// after it is the password, replaced by a literal "***" (url.UserPassword
// would escape it to %2A%2A%2A). An unparsable userinfo is hidden whole.
func redact(raw string) string {
	return passwordParam.ReplaceAllString(redactUserinfo(raw), "${1}***")
}

// envName matches an environment variable's name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// passwordParam matches a password given as a query parameter
// (postgres://h/db?password=...), which pgx accepts.
var passwordParam = regexp.MustCompile(`(?i)([?&](?:ssl)?password=)[^&#]*`)

func redactUserinfo(raw string) string {
	rest, scheme := raw, ""
	if i := strings.Index(raw, "://"); i >= 0 {
		scheme, rest = raw[:i+3], raw[i+3:]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return raw
	}
	userinfo, host := rest[:at], rest[at:]
	if _, err := url.Parse(scheme + userinfo + "@x"); err != nil || scheme == "" {
		return scheme + "***" + host
	}
	user, _, hasPassword := strings.Cut(userinfo, ":")
	if !hasPassword {
		return raw
	}
	return scheme + user + ":***" + host
}

// Redact hides a password in a connection URL for logs and errors, also
// when the URL does not parse.
func Redact(raw string) string { return redact(raw) }

// ValidateDatabaseURL checks a DATABASE_URL or --db value: a postgres:// or
// postgresql:// URL, a sqlite:, sqlite3: or file: URL, or a plain file path.
// Any other scheme (mysql://, http://) is refused rather than taken for a
// SQLite file of that name. The error names the value with its password
// hidden.
func ValidateDatabaseURL(raw string) error {
	i := strings.Index(raw, "://")
	if i < 0 {
		return nil // a path, or sqlite:path / file:path
	}
	switch strings.ToLower(raw[:i]) {
	case "postgres", "postgresql", "sqlite", "sqlite3", "file":
		return nil
	}
	return fmt.Errorf("%q: want postgres://user:password@host:5432/db, sqlite:path or a file path", redact(raw))
}
