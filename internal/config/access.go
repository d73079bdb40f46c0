package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kisfeed/kisfeed/internal/access"
)

// APIKeys parses KISFEED_API_KEYS with the per-key defaults
// KISFEED_API_KEY_MISS_RATE and KISFEED_API_KEY_MISS_BURST. The error
// names the variable, the entry and the field.
func (c Config) APIKeys() ([]access.Key, error) {
	keys, err := access.ParseKeys(c.APIKeyList, access.Quota{MissRate: c.APIKeyMissRate, MissBurst: c.APIKeyMissBurst})
	if err != nil {
		return nil, fmt.Errorf("KISFEED_API_KEYS %w", err)
	}
	return keys, nil
}

// DefaultPort is serve's port when KISFEED_ADDR and --addr are unset.
const DefaultPort = "8080"

// ListenAddr returns serve's listen address and whether it is the loopback
// default: KISFEED_ADDR when set; else ":8080" (every interface) when API
// keys are configured, and "127.0.0.1:8080" when none are, because then
// anyone who could reach the port would read data paid for by the KIS
// account and spend its request budget.
func (c Config) ListenAddr() (addr string, loopbackDefault bool) {
	switch {
	case c.HTTPAddr != "":
		return c.HTTPAddr, false
	case strings.TrimSpace(c.APIKeyList) != "":
		return ":" + DefaultPort, false
	}
	return "127.0.0.1:" + DefaultPort, true
}

// validateAccess checks the consumer keys, their quotas and /metrics'
// protection.
func (c Config) validateAccess(p *problems) {
	if c.APIKeyMissRate < 0 || c.APIKeyMissRate != c.APIKeyMissRate {
		p.bad("KISFEED_API_KEY_MISS_RATE=%v: want cache misses per second >= 0 (0 = no limit)", c.APIKeyMissRate)
	}
	p.atLeast("KISFEED_API_KEY_MISS_BURST", c.APIKeyMissBurst, 1)
	keys, err := c.APIKeys()
	if err != nil {
		p.add(err)
		return
	}
	if c.MetricsRequireKey && !slices.ContainsFunc(keys, func(k access.Key) bool { return k.Has(access.ScopeMetrics) }) {
		p.bad("METRICS_REQUIRE_KEY=true: no key in KISFEED_API_KEYS has the metrics scope (add :scopes=metrics to an entry), so nobody could read /metrics")
	}
}
