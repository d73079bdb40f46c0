package emulator

import (
	"encoding/json"
	"testing"
)

// FuzzParseRequest feeds the subscribe-message parser arbitrary bytes: it
// never panics, and what it accepts is a complete, valid request.
func FuzzParseRequest(f *testing.F) {
	var golden map[string]json.RawMessage
	if err := json.Unmarshal(fixture(f, "websocket_messages.json"), &golden); err != nil {
		f.Fatal(err)
	}
	for _, k := range []string{"subscribe_request", "unsubscribe_request", "pingpong", "subscribe_response_ok"} {
		f.Add([]byte(golden[k]))
	}
	f.Add([]byte(`{"header":null,"body":{"input":null}}`))
	f.Add([]byte(`{"header":{"approval_key":"","custtype":"P","tr_type":"1"},"body":{"input":{"tr_id":"H0STCNT0","tr_key":"0059"}}}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte(`0|H0STCNT0|001|005930`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		req, code := parseRequest(msg)
		if code != "" {
			if _, ok := opspText[code]; !ok {
				t.Fatalf("code %q has no text", code)
			}
			out := controlJSON(req.trID, req.trKey, code, "", nil)
			if !json.Valid(out) {
				t.Fatalf("reply %q is not JSON", out)
			}
			return
		}
		if req.pingpong {
			return
		}
		if req.approvalKey == "" || (req.trType != "1" && req.trType != "2") || req.trID == "" ||
			!validTrKey(req.trKey) || (req.custtype != "P" && req.custtype != "B") {
			t.Fatalf("accepted an invalid request %+v from %q", req, msg)
		}
	})
}
