package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/kisfeed/kisfeed"
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

// validateStream checks the KIS WebSocket settings.
func (c Config) validateStream(p *problems) {
	if v := c.StreamURL; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			p.bad("KIS_WS_URL=%q: want a ws(s) URL like ws://127.0.0.1:9443/tryitout", redact(v))
		}
	}
	switch c.StreamTRs {
	case "krx", "integrated":
	default:
		p.bad("KIS_STREAM_TRS=%q: want krx or integrated", c.StreamTRs)
	}
	p.positive("KIS_STREAM_WATCHDOG", c.StreamWatchdog)
	if c.StreamSubscribeRate <= 0 || c.StreamSubscribeRate > 100 {
		p.bad("KIS_STREAM_SUBSCRIBE_RATE=%v: want messages per second above 0 and at most 100, like 10", c.StreamSubscribeRate)
	}
	if _, err := c.StreamCodeList(); err != nil {
		p.add(err)
	}
}

// StreamCodeList parses STREAM_CODES: 6-character codes, comma or space
// separated, each at most once.
func (c Config) StreamCodeList() ([]kisfeed.Code, error) {
	var out []kisfeed.Code
	seen := map[kisfeed.Code]bool{}
	for i, f := range strings.FieldsFunc(c.StreamCodes, func(r rune) bool { return r == ',' || r == ' ' }) {
		code, err := kisfeed.ParseCode(f)
		if err != nil {
			return nil, fmt.Errorf("STREAM_CODES entry %d: %w", i+1, err)
		}
		if seen[code] {
			return nil, fmt.Errorf("STREAM_CODES entry %d: %s listed twice", i+1, code)
		}
		seen[code] = true
		out = append(out, code)
	}
	return out, nil
}
