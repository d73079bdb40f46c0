package emulator

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

func TestWSSubscribeReplies(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t)
	key := h.approval("APPKEY-A")
	c := h.dial("/tryitout")
	golden := map[string]json.RawMessage{}
	if err := json.Unmarshal(fixture(t, "websocket_messages.json"), &golden); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name, trType, trKey, fixture, code string
	}{
		{"subscribe", "1", "005930", "subscribe_response_ok", opspSubscribed},
		{"again", "1", "005930", "already_subscribed", opspAlready},
		{"unsubscribe", "2", "005930", "unsubscribe_response_ok", opspUnsubscribed},
		{"not subscribed", "2", "005930", "already_subscribed", opspNotFound},
	}
	for _, st := range steps {
		c.send(subMsg(key, st.trType, "H0STCNT0", st.trKey))
		r, raw := c.control()
		if d := diffShape("$", shapeOf(t, golden[st.fixture]), shapeOf(t, []byte(raw))); d != "" {
			t.Errorf("%s: shape vs %s: %s", st.name, st.fixture, d)
		}
		if r.Body.MsgCd != st.code || r.Header.TrID != "H0STCNT0" || r.Header.TrKey != st.trKey {
			t.Errorf("%s: got %s %s/%s, want %s", st.name, r.Body.MsgCd, r.Header.TrID, r.Header.TrKey, st.code)
		}
		if st.code == opspSubscribed && (len(r.Body.Output.IV) != 16 || len(r.Body.Output.Key) != 32) {
			t.Errorf("%s: output %+v, want a 16-char iv and a 32-char key", st.name, r.Body.Output)
		}
	}
	if r, _ := c.control2(subMsg(key, "1", "H0STCNT0", "005930")); r.Body.Msg1 != "SUBSCRIBE SUCCESS" || r.Body.RtCd != "0" {
		t.Errorf("resubscribe: %+v, want rt_cd 0 SUBSCRIBE SUCCESS", r.Body)
	}
}

// control2 sends msg and returns the reply.
func (c *wsClient) control2(msg string) (controlReply, string) {
	c.t.Helper()
	c.send(msg)
	return c.control()
}

func TestWSBadRequests(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t, WithServerKind(KindMock))
	key := h.approval("APPKEY-B")
	c := h.dial("/")
	tests := []struct {
		name, msg, code string
	}{
		{"not json", `{"header":`, opspBadJSON},
		{"no header", `{"body":{"input":{"tr_id":"H0STCNT0","tr_key":"005930"}}}`, opspNoHeader},
		{"no approval key", `{"header":{"custtype":"P","tr_type":"1"},"body":{"input":{"tr_id":"H0STCNT0","tr_key":"005930"}}}`, opspNoAppKey},
		{"bad custtype", subMsgWith(key, "X", "1", "H0STCNT0", "005930"), opspBadCusttype},
		{"tr_type 0", subMsg(key, "0", "H0STCNT0", "005930"), opspBadTrType},
		{"no body", `{"header":{"approval_key":"` + key + `","custtype":"P","tr_type":"1"}}`, opspNoBody},
		{"no tr_key", `{"header":{"approval_key":"` + key + `","custtype":"P","tr_type":"1"},"body":{"input":{"tr_id":"H0STCNT0"}}}`, opspNoTrKey},
		{"bad tr_key", subMsg(key, "1", "H0STCNT0", "5930"), opspBadTrKey},
		{"unknown tr_id", subMsg(key, "1", "H0XXXXX0", "005930"), opspNoInput},
		{"real-only tr_id on mock", subMsg(key, "1", "H0UNCNT0", "005930"), opspNoInput},
		{"unknown approval key", subMsg("00000000-0000-4000-8000-000000000000", "1", "H0STCNT0", "005930"), opspBadApproval},
	}
	for _, tc := range tests {
		r, _ := c.control2(tc.msg)
		if r.Body.MsgCd != tc.code || r.Body.RtCd != "1" {
			t.Errorf("%s: got %s rt_cd %s (%s), want %s rt_cd 1", tc.name, r.Body.MsgCd, r.Body.RtCd, r.Body.Msg1, tc.code)
		}
	}
}

func subMsgWith(key, custtype, trType, trID, trKey string) string {
	return `{"header":{"approval_key":"` + key + `","custtype":"` + custtype + `","tr_type":"` + trType +
		`","content-type":"utf-8"},"body":{"input":{"tr_id":"` + trID + `","tr_key":"` + trKey + `"}}}`
}

func TestWSRegistrationCap(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t)
	key := h.approval("APPKEY-C")
	c := h.dial("/tryitout")
	for i := range MaxRegistrations {
		tr := TrTrade
		if i%2 == 1 {
			tr = TrBook // the cap sums every TR
		}
		if code := c.subscribe(key, "1", tr, codeN(i/2)); code != opspSubscribed {
			t.Fatalf("registration %d: got %s, want %s", i+1, code, opspSubscribed)
		}
	}
	if code := c.subscribe(key, "1", TrTrade, "999990"); code != opspMaxSubscribe {
		t.Fatalf("registration 42: got %s, want %s", code, opspMaxSubscribe)
	}
	if code := c.subscribe(key, "2", TrTrade, codeN(0)); code != opspUnsubscribed {
		t.Fatalf("unsubscribe: got %s", code)
	}
	if code := c.subscribe(key, "1", TrTrade, "999990"); code != opspSubscribed {
		t.Fatalf("after unsubscribe: got %s, want %s", code, opspSubscribed)
	}
	a := h.s.Stats().WebSocket.PerAppKey["APPKEY-C"]
	if a.Registrations != 41 || a.RegistrationsMax != 41 {
		t.Errorf("stats %+v, want 41 registrations now and at most", a)
	}
}

func codeN(i int) string { return strconv.Itoa(100000 + i) }

func TestWSOneSessionPerAppKey(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t)
	key := h.approval("APPKEY-D")
	first := h.dial("/tryitout")
	if code := first.subscribe(key, "1", TrTrade, "005930"); code != opspSubscribed {
		t.Fatalf("first session: %s", code)
	}
	h.clock.Advance(time.Second)
	second := h.dial("/tryitout")
	// A fresh approval key does not help: the app key holds a session.
	if code := second.subscribe(h.approval("APPKEY-D"), "1", TrTrade, "005930"); code != opspInUse {
		t.Fatalf("second session: got %s, want %s", code, opspInUse)
	}
	// Another app key is fine.
	if code := second.subscribe(h.approval("APPKEY-E"), "1", TrTrade, "005930"); code != opspSubscribed {
		t.Fatalf("second session, other key: got %s", code)
	}
	st := h.s.Stats().WebSocket
	if st.InUseRejections != 1 || st.MaxSessionsPerAppKey != 1 || st.SessionsCurrent != 2 {
		t.Errorf("stats: opsp8996 %d, max per key %d, current %d; want 1, 1, 2", st.InUseRejections, st.MaxSessionsPerAppKey, st.SessionsCurrent)
	}
}
