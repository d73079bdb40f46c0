package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsHarness is an emulator on an httptest server with a fake clock that
// drives tokens, approval keys and the market alike.
type wsHarness struct {
	t     *testing.T
	s     *Server
	url   string // http://127.0.0.1:PORT
	clock *fakeClock
}

func newWSHarness(t *testing.T, opts ...Option) *wsHarness {
	t.Helper()
	clock := newClock(marketTime)
	base := []Option{WithMarket(sharedMarket()), WithClock(clock.Now), WithRate(0),
		WithFeedInterval(2 * time.Millisecond), WithPingInterval(time.Hour), WithTokenIssueInterval(0)}
	s, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		_ = s.Close()
		ts.Close()
	})
	return &wsHarness{t: t, s: s, url: ts.URL, clock: clock}
}

// approval issues an approval key for appKey.
func (h *wsHarness) approval(appKey string) string {
	h.t.Helper()
	body := `{"grant_type":"client_credentials","appkey":"` + appKey + `","secretkey":"s"}`
	resp, err := http.Post(h.url+"/oauth2/Approval", "application/json", strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ApprovalKey string `json:"approval_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || len(out.ApprovalKey) != 36 {
		h.t.Fatalf("Approval: HTTP %d %v key %q", resp.StatusCode, err, out.ApprovalKey)
	}
	return out.ApprovalKey
}

// dial opens a session at path ("/tryitout" or "/").
func (h *wsHarness) dial(path string) *wsClient {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.url, "http")+path, nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v", path, err)
	}
	h.t.Cleanup(func() { _ = c.CloseNow() })
	return &wsClient{t: h.t, c: c}
}

// wsClient is a test client: it sends requests and reads messages with a
// deadline, so a missing message fails the test instead of hanging it.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func subMsg(key, trType, trID, trKey string) string {
	return `{"header":{"approval_key":"` + key + `","custtype":"P","tr_type":"` + trType +
		`","content-type":"utf-8"},"body":{"input":{"tr_id":"` + trID + `","tr_key":"` + trKey + `"}}}`
}

func (c *wsClient) send(msg string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next text message, failing after 5 s.
func (c *wsClient) read() string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return string(b)
}

// control reads messages until a JSON control reply (skipping data
// frames and PINGPONG) and decodes it.
func (c *wsClient) control() (controlReply, string) {
	c.t.Helper()
	for {
		m := c.read()
		if !strings.HasPrefix(m, "{") || strings.Contains(m, `"PINGPONG"`) {
			continue
		}
		var r controlReply
		if err := json.Unmarshal([]byte(m), &r); err != nil {
			c.t.Fatalf("control %q: %v", m, err)
		}
		return r, m
	}
}

// subscribe sends a request and returns the reply's msg_cd.
func (c *wsClient) subscribe(key, trType, trID, trKey string) string {
	c.t.Helper()
	c.send(subMsg(key, trType, trID, trKey))
	r, _ := c.control()
	return r.Body.MsgCd
}

// frame reads messages until a data frame of trID and returns its
// records split into fields.
func (c *wsClient) frame(trID string) [][]string {
	c.t.Helper()
	for {
		m := c.read()
		if !strings.HasPrefix(m, "0|"+trID+"|") {
			continue
		}
		return splitFrame(c.t, m, fieldCount(trID))
	}
}

func fieldCount(trID string) int {
	switch trID {
	case TrBook:
		return bookFields
	case TrBookUnif:
		return bookFields + unifBookExtra
	}
	return tradeFields
}

// splitFrame parses "0|TR|NNN|f^f…" into n-field records, as python-kis
// does: the field count must be count × n.
func splitFrame(t *testing.T, m string, n int) [][]string {
	t.Helper()
	parts := strings.SplitN(m, "|", 4)
	if len(parts) != 4 || len(parts[2]) != 3 {
		t.Fatalf("frame %.80q: want 0|TR|NNN|data", m)
	}
	count := 0
	for _, ch := range parts[2] {
		count = count*10 + int(ch-'0')
	}
	fields := strings.Split(parts[3], "^")
	if count == 0 || len(fields) != count*n {
		t.Fatalf("frame %s: %d fields for %d records, want %d each", parts[1], len(fields), count, n)
	}
	recs := make([][]string, count)
	for k := range recs {
		recs[k] = fields[k*n : (k+1)*n]
	}
	return recs
}
