package config

import (
	"net/url"
	"os"
	"path/filepath"
)

// KIS's WebSocket endpoints (REFERENCE §a, §h.1). They repeat
// kis/stream's RealWSURL and MockWSURL because config imports no KIS
// package; cmd/kisfeed's tests check that the two pairs agree.
const (
	RealWSURL = "ws://ops.koreainvestment.com:21000/tryitout"
	MockWSURL = "ws://ops.koreainvestment.com:31000/tryitout"
)

// WebSocketURL is the one derivation of the KIS WebSocket URL every
// streaming command uses (kisfeed watch, serve's STREAM_CODES). restBase
// is the REST base URL in use (wiring.Stack.BaseURL: in embedded mode the
// built-in emulator's address); it counts only in embedded mode, since in
// KIS mode it is KIS's HTTPS host, which serves no WebSocket. In order:
//
//   - KIS_WS_URL when set;
//   - KIS_BASE_URL's host with ws:// (wss:// for https://) and /tryitout
//     when KIS_BASE_URL is set: a `kisfeed emulator` or a proxy serves the
//     WebSocket on the REST listener;
//   - in embedded mode, restBase's host the same way;
//   - else KIS's own: RealWSURL with KIS_USE_REAL_SERVER=true, else
//     MockWSURL.
//
// A base URL that does not parse falls through to the next rule
// (Validate already refused it).
func (c Config) WebSocketURL(restBase string) string {
	if c.StreamURL != "" {
		return c.StreamURL
	}
	if u, ok := wsFromREST(c.BaseURL); ok {
		return u
	}
	if c.Mode() == ModeEmbedded {
		if u, ok := wsFromREST(restBase); ok {
			return u
		}
	}
	if c.UseRealServer {
		return RealWSURL
	}
	return MockWSURL
}

// wsFromREST turns http://host:port/… into ws://host:port/tryitout.
func wsFromREST(base string) (string, bool) {
	if base == "" {
		return "", false
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", false
	}
	scheme := "ws"
	if u.Scheme == "https" {
		scheme = "wss"
	}
	return (&url.URL{Scheme: scheme, Host: u.Host, Path: "/tryitout"}).String(), true
}

// ApprovalPath is where the file store keeps WebSocket approval keys:
// KIS_APPROVAL_FILE when set, else approval-keys.json next to the token
// file (KIS_TOKEN_FILE's directory, or the user cache dir's kisfeed/,
// where tokens.json goes by default). "" when neither can be found (no
// home directory): keep approval keys in memory then.
func (c Config) ApprovalPath() string {
	if c.ApprovalFile != "" {
		return c.ApprovalFile
	}
	if c.TokenFile != "" {
		return filepath.Join(filepath.Dir(c.TokenFile), "approval-keys.json")
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "kisfeed", "approval-keys.json")
}
