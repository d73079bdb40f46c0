package emulator

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

func tokenOf(t *testing.T, body []byte) tokenResponse {
	t.Helper()
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatalf("decode token %q: %v", body, err)
	}
	return tr
}

func TestTokenPShape(t *testing.T) {
	h := newHarness(t)
	rec := h.issue(testKey, testSecret)
	if rec.Code != 200 {
		t.Fatalf("HTTP %d, want 200", rec.Code)
	}
	if d := diffShape("$", shapeOf(t, fixture(t, "oauth2_tokenP.response.json")), shapeOf(t, rec.Body.Bytes())); d != "" {
		t.Errorf("shape: %s", d)
	}
	tr := tokenOf(t, rec.Body.Bytes())
	if tr.ExpiresIn != 86400 || tr.TokenType != "Bearer" {
		t.Errorf("got expires_in %d type %q, want 86400 Bearer", tr.ExpiresIn, tr.TokenType)
	}
	want := marketTime.Add(24 * time.Hour).In(kisfeed.KST).Format("2006-01-02 15:04:05")
	if tr.AccessTokenExpired != want {
		t.Errorf("access_token_token_expired: got %q, want %q", tr.AccessTokenExpired, want)
	}
	if n := len(tr.AccessToken); n < 200 || n > 350 {
		t.Errorf("token length %d, want ~350 like KIS", n)
	}
}

func TestTokenRules(t *testing.T) {
	h := newHarness(t)
	first := tokenOf(t, h.issue(testKey, testSecret).Body.Bytes())

	// Within 60 s: EGW00133, HTTP 403, the fixture's body shape.
	h.clock.Advance(30 * time.Second)
	rec := h.issue(testKey, testSecret)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("second call within 60s: got HTTP %d, want 403", rec.Code)
	}
	if got, want := compactJSON(t, rec.Body.Bytes()), compactJSON(t, fixture(t, "oauth2_tokenP.error_EGW00133.json")); got != want {
		t.Errorf("EGW00133 body: got %s, want %s", got, want)
	}
	// The rejected call does not restart the interval.
	h.clock.Advance(31 * time.Second)
	second := tokenOf(t, h.issue(testKey, testSecret).Body.Bytes())
	if second.AccessToken != first.AccessToken {
		t.Error("call within 6h: got a new token, want the same")
	}
	if second.ExpiresIn != 86400-61 {
		t.Errorf("expires_in of the reused token: got %d, want %d", second.ExpiresIn, 86400-61)
	}
	// Another app key has its own history.
	if rec := h.issue("other-key", "other-secret"); rec.Code != 200 {
		t.Errorf("other key: got HTTP %d, want 200", rec.Code)
	}
	// After 6 h: a new token; the old one stays valid until its expiry.
	h.clock.Advance(6 * time.Hour)
	third := tokenOf(t, h.issue(testKey, testSecret).Body.Bytes())
	if third.AccessToken == first.AccessToken {
		t.Error("call after 6h: got the same token, want a new one")
	}
	h.token = first.AccessToken
	if e := decodeEnv(t, h.get("inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930")); e.RtCd != "0" {
		t.Errorf("old token before its expiry: got %s, want success", e.MsgCd)
	}
	// After 24 h the first token is expired: HTTP 500 EGW00123.
	h.clock.Advance(18 * time.Hour)
	rec = h.get("inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930")
	if rec.Code != 500 || compactJSON(t, rec.Body.Bytes()) != compactJSON(t, fixture(t, "error_EGW00123.json")) {
		t.Errorf("expired token: got HTTP %d %s, want 500 EGW00123", rec.Code, rec.Body)
	}
	st := h.s.Stats()
	if st.TokensIssued != 3 || st.TokenRequests != 5 || st.TokenRejections != 1 {
		t.Errorf("stats: got issued %d requests %d rejections %d, want 3 5 1", st.TokensIssued, st.TokenRequests, st.TokenRejections)
	}
}

func TestTokenRevokeAndExpire(t *testing.T) {
	h := newHarness(t)
	tok := h.login()
	body, _ := json.Marshal(map[string]string{"appkey": testKey, "appsecret": testSecret, "token": tok})
	rec := h.do(http.MethodPost, "/oauth2/revokeP", nil, string(body))
	if rec.Code != 200 || compactJSON(t, rec.Body.Bytes()) != compactJSON(t, fixture(t, "oauth2_revokeP.response.json")) {
		t.Fatalf("revokeP: got HTTP %d %s", rec.Code, rec.Body)
	}
	rec = h.get("inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930")
	if rec.Code != 500 || compactJSON(t, rec.Body.Bytes()) != compactJSON(t, fixture(t, "error_EGW00121.json")) {
		t.Errorf("revoked token: got HTTP %d %s, want 500 EGW00121", rec.Code, rec.Body)
	}
	// A revoked token is not handed out again (after the 60 s interval).
	h.clock.Advance(time.Minute)
	if tok2 := h.login(); tok2 == tok {
		t.Error("tokenP after revoke: got the revoked token")
	}
	// ExpireTokens: EGW00123, then tokenP issues at once.
	rec = h.do(http.MethodPost, "/_emulator/expire-tokens", nil, "")
	if rec.Code != 200 {
		t.Fatalf("expire-tokens: HTTP %d", rec.Code)
	}
	if e := decodeEnv(t, h.get("inquire-price", "FHKST01010100", "FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930")); e.MsgCd != "EGW00123" {
		t.Errorf("after expire-tokens: got %s, want EGW00123", e.MsgCd)
	}
	old := h.token
	if tok3 := h.login(); tok3 == old {
		t.Error("tokenP after expire-tokens: got the expired token")
	}
}

func TestAppKeyRegistry(t *testing.T) {
	h := newHarness(t, WithAppKey(testKey, testSecret))
	tests := []struct {
		name, key, secret, code string
	}{
		{"unknown key", "nope", testSecret, "EGW00103"},
		{"wrong secret", testKey, "wrong", "EGW00105"},
		{"missing key", "", testSecret, "EGW00102"},
		{"missing secret", testKey, "", "EGW00104"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.issue(tc.key, tc.secret)
			var e oauthError
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != 403 || e.ErrorCode != tc.code {
				t.Errorf("got HTTP %d %s, want 403 %s", rec.Code, rec.Body, tc.code)
			}
		})
	}
	rec := h.issue("nope", testSecret)
	if got, want := compactJSON(t, rec.Body.Bytes()), compactJSON(t, fixture(t, "oauth2_tokenP.error_EGW00103.json")); got != want {
		t.Errorf("EGW00103 body: got %s, want %s", got, want)
	}
	if rec := h.issue(testKey, testSecret); rec.Code != 200 {
		t.Errorf("registered key: got HTTP %d, want 200", rec.Code)
	}
}

func TestApprovalAndHashkey(t *testing.T) {
	h := newHarness(t)
	rec := h.do(http.MethodPost, "/oauth2/Approval", nil, string(fixture(t, "oauth2_Approval.request.json")))
	if rec.Code != 200 {
		t.Fatalf("Approval: HTTP %d %s", rec.Code, rec.Body)
	}
	if d := diffShape("$", shapeOf(t, fixture(t, "oauth2_Approval.response.json")), shapeOf(t, rec.Body.Bytes())); d != "" {
		t.Errorf("Approval shape: %s", d)
	}
	// appsecret instead of secretkey is refused: the secret is missing.
	rec = h.do(http.MethodPost, "/oauth2/Approval", nil, string(fixture(t, "oauth2_tokenP.request.json")))
	if rec.Code != 403 {
		t.Errorf("Approval with appsecret: got HTTP %d, want 403", rec.Code)
	}
	rec = h.do(http.MethodPost, "/uapi/hashkey", map[string]string{"appkey": testKey, "appsecret": testSecret}, `{"PDNO":"005930"}`)
	var hk struct{ HASH string }
	if err := json.Unmarshal(rec.Body.Bytes(), &hk); err != nil || len(hk.HASH) != 64 {
		t.Errorf("hashkey: got HTTP %d %s, want a HASH", rec.Code, rec.Body)
	}
}
