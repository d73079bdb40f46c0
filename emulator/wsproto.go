package emulator

import (
	"encoding/json"
	"strings"
)

// The WebSocket control protocol (REFERENCE §h.2–h.4, §e): subscribe
// requests in, control replies and PINGPONG out.

// Real-time TRs the emulator serves.
const (
	TrTrade     = "H0STCNT0" // 국내주식 실시간체결가 (KRX), 46 fields
	TrBook      = "H0STASP0" // 국내주식 실시간호가 (KRX), 59 fields
	TrTradeUnif = "H0UNCNT0" // 통합 (KRX+NXT) 체결가, real server only
	TrBookUnif  = "H0UNASP0" // 통합 (KRX+NXT) 호가, real server only (+6 fields)
	trPingPong  = "PINGPONG"
)

// MaxRegistrations is KIS's cap of registrations per session, summed over
// every real-time TR (N-rate: 41).
const MaxRegistrations = 41

// Control codes and texts. The success texts and ALREADY IN SUBSCRIBE are
// seen on the wire (§h.3); the others are the emulator's wording for the
// codes of §e (KIS's exact msg1 for them is unconfirmed; clients must
// branch on msg_cd, never on msg1).
const (
	opspSubscribed   = "OPSP0000"
	opspUnsubscribed = "OPSP0001"
	opspAlready      = "OPSP0002"
	opspNotFound     = "OPSP0003"
	opspMaxSubscribe = "OPSP0008"
	opspBadApproval  = "OPSP0011"
	opspBadTrKey     = "OPSP8993"
	opspInUse        = "OPSP8996"
	opspBadTrType    = "OPSP8997"
	opspBadCusttype  = "OPSP8998"
	opspNoTrKey      = "OPSP9990"
	opspNoInput      = "OPSP9991"
	opspNoBody       = "OPSP9992"
	opspNoAppKey     = "OPSP9996"
	opspNoCusttype   = "OPSP9997"
	opspNoHeader     = "OPSP9998"
	opspBadJSON      = "OPSP9999"
)

var opspText = map[string]string{
	opspSubscribed:   "SUBSCRIBE SUCCESS",
	opspUnsubscribed: "UNSUBSCRIBE SUCCESS",
	opspAlready:      "ALREADY IN SUBSCRIBE",
	opspNotFound:     "UNSUBSCRIBE ERROR(not found!)",
	opspMaxSubscribe: "MAX SUBSCRIBE OVER",
	opspBadApproval:  "invalid approval : NOT FOUND",
	opspBadTrKey:     "invalid tr_key",
	opspInUse:        "ALREADY IN USE appkey",
	opspBadTrType:    "invalid tr_type",
	opspBadCusttype:  "invalid custtype",
	opspNoTrKey:      "tr_key not found",
	opspNoInput:      "input not found",
	opspNoBody:       "body not found",
	opspNoAppKey:     "approval_key not found",
	opspNoCusttype:   "custtype not found",
	opspNoHeader:     "header not found",
	opspBadJSON:      "JSON PARSING ERROR : invalid json format",
}

// wsRequest is a parsed subscribe/unsubscribe message.
type wsRequest struct {
	approvalKey string
	custtype    string
	trType      string // "1" register, "2" unregister
	trID        string
	trKey       string
	pingpong    bool // a PINGPONG echoed back by the client
}

// wireRequest is the JSON of a client message. Pointers tell a missing
// object from an empty one.
type wireRequest struct {
	Header *struct {
		ApprovalKey *string `json:"approval_key"`
		Custtype    *string `json:"custtype"`
		TrType      *string `json:"tr_type"`
		TrID        string  `json:"tr_id"`
	} `json:"header"`
	Body *struct {
		Input *struct {
			TrID  *string `json:"tr_id"`
			TrKey *string `json:"tr_key"`
		} `json:"input"`
	} `json:"body"`
}

// parseRequest reads one client text message. On failure it returns the
// OPSP code to answer with, and whatever tr_id/tr_key it could read (the
// reply's header echoes them).
func parseRequest(msg []byte) (req wsRequest, code string) {
	var w wireRequest
	if err := json.Unmarshal(msg, &w); err != nil {
		return req, opspBadJSON
	}
	if w.Header != nil && w.Header.TrID == trPingPong {
		req.pingpong = true
		return req, ""
	}
	if w.Body != nil && w.Body.Input != nil {
		if w.Body.Input.TrID != nil {
			req.trID = *w.Body.Input.TrID
		}
		if w.Body.Input.TrKey != nil {
			req.trKey = *w.Body.Input.TrKey
		}
	}
	h := w.Header
	switch {
	case h == nil:
		return req, opspNoHeader
	case h.ApprovalKey == nil || *h.ApprovalKey == "":
		return req, opspNoAppKey
	case h.Custtype == nil || *h.Custtype == "":
		return req, opspNoCusttype
	case *h.Custtype != "P" && *h.Custtype != "B":
		return req, opspBadCusttype
	case h.TrType == nil || (*h.TrType != "1" && *h.TrType != "2"):
		// "0" for unregister appears in some docstrings but is wrong
		// (§h.2): the emulator refuses it so such clients notice.
		return req, opspBadTrType
	case w.Body == nil:
		return req, opspNoBody
	case w.Body.Input == nil || w.Body.Input.TrID == nil || req.trID == "":
		return req, opspNoInput
	case w.Body.Input.TrKey == nil || req.trKey == "":
		return req, opspNoTrKey
	}
	req.approvalKey, req.custtype, req.trType = *h.ApprovalKey, *h.Custtype, *h.TrType
	if !validTrKey(req.trKey) {
		return req, opspBadTrKey
	}
	return req, ""
}

// validTrKey accepts a short stock code: 6 characters of digits and
// capital letters (new codes like 0001A0 carry a letter). A well-formed
// code that is not listed is accepted and simply never trades, as KIS
// does not check a registration against the master.
func validTrKey(k string) bool {
	if len(k) != 6 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// trSupported reports whether the server kind serves trID. The 통합
// (KRX+NXT) TRs exist on the real server only (a portal inventory tags
// them real-only, §k.1): on the mock server they are answered as an
// unknown tr_id (OPSP9991 with a msg1 saying so), since 모의투자 has no
// such TR rather than a special refusal code.
func trSupported(kind, trID string) bool {
	switch trID {
	case TrTrade, TrBook:
		return true
	case TrTradeUnif, TrBookUnif:
		return kind == KindReal
	}
	return false
}

// controlReply is a server → client control message (§h.3), fields in
// the wire's order.
type controlReply struct {
	Header controlHeader `json:"header"`
	Body   controlBody   `json:"body"`
}

type controlHeader struct {
	TrID    string `json:"tr_id"`
	TrKey   string `json:"tr_key"`
	Encrypt string `json:"encrypt"`
}

type controlBody struct {
	RtCd   string         `json:"rt_cd"`
	MsgCd  string         `json:"msg_cd"`
	Msg1   string         `json:"msg1"`
	Output *controlOutput `json:"output,omitempty"`
}

type controlOutput struct {
	IV  string `json:"iv"`
	Key string `json:"key"`
}

// reply builds the control reply of code for trID/trKey; msg1 overrides
// the standard text when not empty. OPSP0000 carries the AES parameters
// (market-data TRs are never encrypted, but KIS sends them anyway).
func controlJSON(trID, trKey, code, msg1 string, out *controlOutput) []byte {
	rt := "1"
	if code == opspSubscribed || code == opspUnsubscribed {
		rt = "0"
	}
	if msg1 == "" {
		msg1 = opspText[code]
	}
	b, _ := json.Marshal(controlReply{
		Header: controlHeader{TrID: trID, TrKey: trKey, Encrypt: "N"},
		Body:   controlBody{RtCd: rt, MsgCd: code, Msg1: msg1, Output: out},
	})
	return b
}

// pingJSON is the server's PINGPONG message; datetime is YYYYMMDDHHMMSS.
func pingJSON(datetime string) []byte {
	var b strings.Builder
	b.WriteString(`{"header":{"tr_id":"PINGPONG","datetime":"`)
	b.WriteString(datetime)
	b.WriteString(`"}}`)
	return []byte(b.String())
}
