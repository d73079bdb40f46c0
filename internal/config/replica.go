package config

import (
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// minLeaseTTL is the shortest STREAM_LEASE_TTL accepted: renewals go every
// ttl/3 and a holder stops ttl/6 before expiry, so below a second a
// scheduling stall on a busy machine would end tenures for nothing.
const minLeaseTTL = time.Second

// validateReplicas checks NATS_URL, KISFEED_REPLICA and STREAM_LEASE_TTL.
func (c Config) validateReplicas(p *problems) {
	if c.NATSURL != "" {
		for _, one := range strings.Split(c.NATSURL, ",") {
			u, err := url.Parse(strings.TrimSpace(one))
			if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
				p.bad("NATS_URL=%q: want nats://host:port (comma-separated for a cluster)", redact(c.NATSURL))
				break
			}
		}
		if c.RedisURL == "" {
			p.bad("NATS_URL is set but REDIS_URL is not: replicas decide who holds the KIS sessions with a lease in Redis; set REDIS_URL (or unset NATS_URL for one process)")
		}
	}
	if r := c.Replica; r != "" && !validReplica(r) {
		p.bad("KISFEED_REPLICA=%q: want 1 to 48 letters, digits, '-' or '_' (it is a NATS subject token and part of the lease value)", r)
	}
	if c.StreamLeaseTTL < minLeaseTTL || c.StreamLeaseTTL > time.Minute {
		p.bad("STREAM_LEASE_TTL=%s: want %s to 1m, like 6s", c.StreamLeaseTTL, minLeaseTTL)
	}
}

// validReplica reports whether r can name a replica: a NATS subject token
// without wildcards, and no ':' (the lease value is "{replica}:{fence}").
func validReplica(r string) bool {
	if r == "" || len(r) > 48 {
		return false
	}
	for _, ch := range r {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// ReplicaName is KISFEED_REPLICA, or hostname-pid (characters outside
// [A-Za-z0-9_-] replaced by '-') when it is empty: unique among replicas
// on distinct hosts or processes.
func (c Config) ReplicaName() string {
	if c.Replica != "" {
		return c.Replica
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "kisfeed"
	}
	host = strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, host)
	name := host + "-" + strconv.Itoa(os.Getpid())
	if len(name) > 48 {
		name = name[len(name)-48:]
	}
	return name
}

// Replicated reports whether serve runs as one of several replicas
// (NATS_URL set).
func (c Config) Replicated() bool { return c.NATSURL != "" }
