package emulator

import (
	"bytes"
	"encoding/json"
	"github.com/kisfeed/kisfeed/internal/clocktest"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sim"
)

// sharedMarket is built once: sim.New is cheap and the market is safe for
// concurrent use, and memoised series make later tests faster.
var sharedMarket = sync.OnceValue(func() *sim.Market { return sim.New(1) })

// fakeClock is the shared settable test clock.
type fakeClock = clocktest.Clock

func newClock(t time.Time) *fakeClock { return clocktest.New(t) }

// marketTime is 10:00 KST on Friday 2025-10-24, a trading day.
var marketTime = time.Date(2025, 10, 24, 10, 0, 0, 0, kisfeed.KST)

const (
	testKey    = "PSEXAMPLEAPPKEY00000000000000000000A"
	testSecret = "test-secret"
)

// harness is a server under test with a fake clock.
type harness struct {
	t     *testing.T
	s     *Server
	clock *fakeClock
	token string
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	clock := newClock(marketTime)
	base := []Option{WithMarket(sharedMarket()), WithClock(clock.Now), WithRate(0)}
	s, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &harness{t: t, s: s, clock: clock}
}

// do sends a request through the handler.
func (h *harness) do(method, target string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.s.ServeHTTP(rec, req)
	return rec
}

// issue calls tokenP for key/secret.
func (h *harness) issue(key, secret string) *httptest.ResponseRecorder {
	h.t.Helper()
	b, _ := json.Marshal(map[string]string{"grant_type": "client_credentials", "appkey": key, "appsecret": secret})
	return h.do(http.MethodPost, "/oauth2/tokenP", map[string]string{"content-type": "application/json; charset=UTF-8"}, string(b))
}

// login gets a token for the test key.
func (h *harness) login() string {
	h.t.Helper()
	rec := h.issue(testKey, testSecret)
	if rec.Code != 200 {
		h.t.Fatalf("tokenP: got HTTP %d %s, want 200", rec.Code, rec.Body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		h.t.Fatalf("tokenP body: %v", err)
	}
	h.token = tr.AccessToken
	return tr.AccessToken
}

// authHeaders are a data call's headers with the harness token.
func (h *harness) authHeaders(trID string) map[string]string {
	return map[string]string{
		"authorization": "Bearer " + h.token, "appkey": testKey, "appsecret": testSecret,
		"tr_id": trID, "custtype": "P", "content-type": "application/json; charset=utf-8",
	}
}

// get calls a quotation endpoint with the harness token.
func (h *harness) get(name, trID, query string) *httptest.ResponseRecorder {
	h.t.Helper()
	return h.do(http.MethodGet, quotationsPrefix+name+"?"+query, h.authHeaders(trID), "")
}

// envelope is the common part of a data reply.
type envelope struct {
	RtCd  string `json:"rt_cd"`
	MsgCd string `json:"msg_cd"`
	Msg1  string `json:"msg1"`
}

func decodeEnv(t *testing.T, rec *httptest.ResponseRecorder) envelope {
	t.Helper()
	var e envelope
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
	return e
}

// fixture reads a copied fixture from testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// compactJSON normalises JSON for byte comparison (key order kept).
func compactJSON(t testing.TB, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact %q: %v", b, err)
	}
	return buf.String()
}

// shape describes JSON structure: key order and value types.
type shape struct {
	kind string // object, array, string, number, bool, null
	keys []string
	kids map[string]*shape
	elem *shape // array element (first)
	n    int    // array length
}

func shapeOf(t testing.TB, b []byte) *shape {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	s, err := readShape(dec)
	if err != nil {
		t.Fatalf("shape of %q: %v", b, err)
	}
	return s
}

func readShape(dec *json.Decoder) (*shape, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			s := &shape{kind: "object", kids: map[string]*shape{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				kid, err := readShape(dec)
				if err != nil {
					return nil, err
				}
				s.keys = append(s.keys, k)
				s.kids[k] = kid
			}
			_, err := dec.Token()
			return s, err
		case '[':
			s := &shape{kind: "array"}
			for dec.More() {
				e, err := readShape(dec)
				if err != nil {
					return nil, err
				}
				if s.elem == nil {
					s.elem = e
				}
				s.n++
			}
			_, err := dec.Token()
			return s, err
		}
	case string:
		return &shape{kind: "string"}, nil
	case json.Number:
		return &shape{kind: "number"}, nil
	case bool:
		return &shape{kind: "bool"}, nil
	case nil:
		return &shape{kind: "null"}, nil
	}
	return nil, io.ErrUnexpectedEOF
}

// diffShape reports the first difference between want and got.
func diffShape(path string, want, got *shape) string {
	if want.kind != got.kind {
		return path + ": got " + got.kind + ", want " + want.kind
	}
	switch want.kind {
	case "object":
		if strings.Join(want.keys, ",") != strings.Join(got.keys, ",") {
			return path + ": keys\n got  " + strings.Join(got.keys, ",") + "\n want " + strings.Join(want.keys, ",")
		}
		for _, k := range want.keys {
			if d := diffShape(path+"."+k, want.kids[k], got.kids[k]); d != "" {
				return d
			}
		}
	case "array":
		if want.elem == nil {
			return ""
		}
		if got.elem == nil {
			return path + ": got an empty array, want rows"
		}
		return diffShape(path+"[0]", want.elem, got.elem)
	}
	return ""
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// wireHeader reads a header the emulator writes in KIS's lowercase wire
// form (not canonicalised).
func wireHeader(h http.Header, k string) []string { return h[k] }
