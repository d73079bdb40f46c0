package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kisfeed/kisfeed/internal/access"
)

func newAPIKeyCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "apikey",
		Short: "Make consumer API keys for serve (KISFEED_API_KEYS)",
	}
	var scopes string
	n := &cobra.Command{
		Use:   "new NAME",
		Short: "Print a fresh random API key once, and its KISFEED_API_KEYS entry",
		Long: `new prints a fresh random key for the consumer NAME, once: kisfeed keeps
only its SHA-256, so hand the key to the consumer now; a lost key is
replaced, not recovered. Then it prints the entry to add to
KISFEED_API_KEYS (entries are comma-separated):

  NAME:sha256hex[:rate=R][:burst=B][:scopes=data+metrics]

rate and burst override KISFEED_API_KEY_MISS_RATE and
KISFEED_API_KEY_MISS_BURST for this key; scopes default to data (the /v1
routes). The consumer sends the key as "Authorization: Bearer <key>".`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error { return a.newAPIKey(args[0], scopes) },
	}
	n.Flags().StringVar(&scopes, "scopes", "data", "scopes of the key, comma-separated: data, metrics")
	c.AddCommand(n)
	return c
}

func (a *app) newAPIKey(name, scopeList string) error {
	if !access.ValidName(name) {
		return usageError("NAME %q: want letters, digits, '.', '_' or '-' (1 to 64, starting with a letter or digit)", name)
	}
	var scopes []access.Scope
	for _, s := range strings.Split(scopeList, ",") {
		sc := access.Scope(strings.TrimSpace(s))
		if sc != access.ScopeData && sc != access.ScopeMetrics {
			return usageError("--scopes %q: want data and/or metrics, comma-separated", scopeList)
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	key, err := access.NewKey()
	if err != nil {
		return withExit(1, err)
	}
	_, err = fmt.Fprintf(a.stdout, "API key for %s (shown once; kisfeed keeps only its hash):\n  %s\n"+
		"Add this entry to KISFEED_API_KEYS (comma-separated):\n  %s\n",
		name, key, access.Entry(name, key, scopes))
	return err
}

// logAccess says in one line who may read the API: with keys, how many;
// without, that serve listens on loopback only (the default then), or
// warns that every route is public to whoever reaches addr.
func logAccess(log *slog.Logger, keys int, addr net.Addr, metricsNeedKey bool) {
	tcp, _ := addr.(*net.TCPAddr)
	switch {
	case keys > 0:
		log.Info("API keys required on /v1", "keys", keys, "metrics_require_key", metricsNeedKey)
	case tcp != nil && tcp.IP.IsLoopback():
		log.Info("no API keys configured (KISFEED_API_KEYS): listening on loopback only; set KISFEED_API_KEYS, or choose an address with --addr or KISFEED_ADDR")
	default:
		log.Warn("no API keys configured (KISFEED_API_KEYS): every route is public to whoever reaches the listen address")
	}
}

// apiKeyEnv names the process environment variable from which client
// commands (loadtest) take the API key they send to a serve that requires
// one. Not a flag: arguments show in the process list.
const apiKeyEnv = "KISFEED_API_KEY"

// withAPIKey returns base, sending key as a bearer token on every request
// when key is set.
func withAPIKey(key string, base http.RoundTripper) http.RoundTripper {
	if key == "" {
		return base
	}
	return &keyTransport{auth: "Bearer " + key, base: base}
}

// keyTransport adds the Authorization header, on a clone of the request
// as a RoundTripper must not change the one it is given.
type keyTransport struct {
	auth string
	base http.RoundTripper
}

func (t *keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", t.auth)
	return t.base.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach base.
func (t *keyTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
