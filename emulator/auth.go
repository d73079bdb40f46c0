package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
)

// token is one issued access token.
type token struct {
	value   string
	appKey  string
	secret  string // the app secret it was issued with
	issued  time.Time
	expires time.Time
	revoked bool
}

// keyTokens is the token history of one app key.
type keyTokens struct {
	last     *token    // the latest issued token
	lastCall time.Time // the latest successful tokenP call
}

// authState holds tokens and per-key issuance history.
type authState struct {
	mu     sync.Mutex // guards tokens, keys
	tokens map[string]*token
	keys   map[string]*keyTokens
}

func (a *authState) init() {
	a.tokens = map[string]*token{}
	a.keys = map[string]*keyTokens{}
}

// ExpireTokens expires every issued token now and forgets the issuance
// history, as if the TTL had passed: the next data call gets EGW00123 and
// the next tokenP call issues a fresh token at once (no EGW00133).
func (s *Server) ExpireTokens() {
	now := s.now()
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	for _, t := range s.auth.tokens {
		if t.expires.After(now) {
			t.expires = now
		}
	}
	clear(s.auth.keys)
}

// oauthError is the tokenP/revokeP error body (HTTP 403), fixture
// oauth2_tokenP.error_*.json: error_description first.
type oauthError struct {
	ErrorDescription string `json:"error_description"`
	ErrorCode        string `json:"error_code"`
}

// egwText holds the gateway's message texts (X-help, T).
var egwText = map[string]string{
	"EGW00001": "일시적 오류가 발생했습니다.",
	"EGW00002": "서버 에러가 발생했습니다.",
	"EGW00101": "유효하지 않은 요청입니다.",
	"EGW00102": "AppKey는 필수입니다.",
	"EGW00103": "유효하지 않은 AppKey입니다.",
	"EGW00104": "AppSecret은 필수입니다.",
	"EGW00105": "유효하지 않은 AppSecret입니다.",
	"EGW00115": "권한부여 타입(grant_type)은 필수입니다.",
	"EGW00116": "지원하지 않는 권한부여 타입(grant_type)입니다.",
	"EGW00121": "유효하지 않은 token 입니다.",
	"EGW00122": "token을 찾을 수 없습니다.",
	"EGW00123": "기간이 만료된 token 입니다.",
	"EGW00133": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
	"EGW00201": "초당 거래건수를 초과하였습니다.",
	"EGW00205": "credentials_type이 유효하지 않습니다.(Bearer)",
	"EGW00208": "고객유형(custtype)이 유효하지 않습니다.",
	"EGW00213": "모의투자 TR 이 아닙니다.",
}

func (s *Server) oauthFail(w http.ResponseWriter, code string) {
	s.stats.response(code)
	s.writeJSON(w, http.StatusForbidden, oauthError{ErrorDescription: egwText[code], ErrorCode: code})
}

// gatewayErr is a data-call EGW error: HTTP 500 with rt_cd "1" (REFERENCE
// §e: gateway errors arrive as 500 in practice; fixtures error_*.json).
func gatewayErr(code string) *reply {
	return &reply{status: http.StatusInternalServerError, rtCd: "1", msgCd: code, msg1: egwText[code]}
}

// readJSONBody decodes a small JSON object body into a string map; values
// that are not strings are ignored.
func readJSONBody(r *http.Request) (map[string]string, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		return nil, false
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, false
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out, true
}

// oauthBody reads an OAuth call (tokenP, revokeP, Approval): a POST whose
// JSON body carries appkey and the secret under secretField ("appsecret",
// or "secretkey" for Approval). A wrong method or body is EGW00101, a bad
// key/secret pair as checkKey says; then it has answered HTTP 403 and ok
// is false.
func (s *Server) oauthBody(w http.ResponseWriter, r *http.Request, secretField string) (body map[string]string, ok bool) {
	if r.Method != http.MethodPost {
		s.oauthFail(w, "EGW00101")
		return nil, false
	}
	body, ok = readJSONBody(r)
	if !ok {
		s.oauthFail(w, "EGW00101")
		return nil, false
	}
	if code := s.checkKey(body["appkey"], body[secretField]); code != "" {
		s.oauthFail(w, code)
		return nil, false
	}
	return body, true
}

// oauthGrant reads an OAuth call that grants something (tokenP,
// Approval): oauthBody, then grant_type must be client_credentials. On
// failure the answer is written and ok is false.
func (s *Server) oauthGrant(w http.ResponseWriter, r *http.Request, secretField string) (body map[string]string, ok bool) {
	body, ok = s.oauthBody(w, r, secretField)
	if !ok {
		return nil, false
	}
	if code := checkGrant(body["grant_type"]); code != "" {
		s.oauthFail(w, code)
		return nil, false
	}
	return body, true
}

// checkGrant validates grant_type: "" when it is client_credentials, else
// EGW00115 (missing) or EGW00116 (unsupported).
func checkGrant(gt string) string {
	switch gt {
	case "client_credentials":
		return ""
	case "":
		return "EGW00115"
	}
	return "EGW00116"
}

// checkKey validates an app key/secret pair against the registry: ""
// when fine, else EGW00102/00104 (missing) or EGW00103/00105 (unknown).
func (s *Server) checkKey(key, secret string) string {
	switch {
	case key == "":
		return "EGW00102"
	case secret == "":
		return "EGW00104"
	}
	if len(s.registry) > 0 {
		want, ok := s.registry[key]
		if !ok {
			return "EGW00103"
		}
		if secret != want {
			return "EGW00105"
		}
	}
	return ""
}

// tokenResponse is the tokenP success body, in the fixture's field order;
// expires_in is the one JSON number KIS sends.
type tokenResponse struct {
	AccessToken        string `json:"access_token"`
	AccessTokenExpired string `json:"access_token_token_expired"`
	TokenType          string `json:"token_type"`
	ExpiresIn          int64  `json:"expires_in"`
}

// serveTokenP is POST /oauth2/tokenP (REFERENCE §b.1).
//
// Rules, per app key: a call within the issue interval (60s) of the last
// successful call → 403 EGW00133 (rejected calls do not restart the
// interval, so a client retrying every 30s does get through); a call within
// the reuse window (6h) of the last issuance returns that same token with
// its remaining lifetime, unless it expired or was revoked; otherwise a new
// token. Older tokens stay valid until their own expiry (unconfirmed at
// KIS; the lenient reading, since clients must not depend on it either
// way).
func (s *Server) serveTokenP(w http.ResponseWriter, r *http.Request) {
	body, ok := s.oauthGrant(w, r, "appsecret")
	if !ok {
		return
	}
	key, secret := body["appkey"], body["appsecret"]
	now := s.now()
	s.auth.mu.Lock()
	kt := s.auth.keys[key]
	if kt == nil {
		kt = &keyTokens{}
		s.auth.keys[key] = kt
	}
	if s.issueInterval > 0 && !kt.lastCall.IsZero() && now.Sub(kt.lastCall) < s.issueInterval {
		s.auth.mu.Unlock()
		s.stats.token(key, false, true)
		s.oauthFail(w, "EGW00133")
		return
	}
	kt.lastCall = now
	t := kt.last
	issued := false
	if t == nil || t.revoked || !now.Before(t.expires) || now.Sub(t.issued) >= s.reuseWindow || t.secret != secret {
		t = &token{appKey: key, secret: secret, issued: now, expires: now.Add(s.tokenTTL)}
		t.value = newJWT(key, now, t.expires)
		s.auth.tokens[t.value] = t
		kt.last = t
		issued = true
	}
	resp := tokenResponse{
		AccessToken:        t.value,
		AccessTokenExpired: t.expires.In(kisfeed.KST).Format(time.DateTime),
		TokenType:          "Bearer",
		ExpiresIn:          int64(t.expires.Sub(now) / time.Second),
	}
	s.auth.mu.Unlock()
	s.stats.token(key, issued, false)
	if issued {
		s.log.Info("token issued", "appkey", maskKey(key), "expires", resp.AccessTokenExpired)
	}
	s.writeJSON(w, http.StatusOK, resp)
}

// maskKey shortens an app key for logs.
func maskKey(k string) string {
	if len(k) <= 6 {
		return "***"
	}
	return k[:4] + "***"
}

// newJWT returns a JWT-shaped token (~350 chars like KIS's) whose payload
// mirrors the portal example and whose signature is random, so tokens are
// unguessable and distinct.
func newJWT(appKey string, iat, exp time.Time) string {
	enc := base64.RawURLEncoding
	var rnd [64]byte
	_, _ = rand.Read(rnd[:])
	aud := fmt.Sprintf("%x-%x-%x-%x-%x", rnd[0:4], rnd[4:6], rnd[6:8], rnd[8:10], rnd[10:16])
	payload, _ := json.Marshal(map[string]any{
		"sub": "token", "aud": aud, "prdt_cd": "", "iss": "unogw",
		"exp": exp.Unix(), "iat": iat.Unix(), "jti": appKey,
	})
	return enc.EncodeToString([]byte(`{"typ":"JWT","alg":"HS512"}`)) + "." +
		enc.EncodeToString(payload) + "." + enc.EncodeToString(rnd[:])
}

// serveRevokeP is POST /oauth2/revokeP (REFERENCE §b.2).
func (s *Server) serveRevokeP(w http.ResponseWriter, r *http.Request) {
	body, ok := s.oauthBody(w, r, "appsecret")
	if !ok {
		return
	}
	s.auth.mu.Lock()
	t := s.auth.tokens[body["token"]]
	if t == nil || t.appKey != body["appkey"] {
		s.auth.mu.Unlock()
		s.oauthFail(w, "EGW00121")
		return
	}
	t.revoked = true
	s.auth.mu.Unlock()
	s.writeJSON(w, http.StatusOK, struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{200, "접근토큰 폐기에 성공하였습니다"})
}

// serveHashkey is POST /uapi/hashkey (REFERENCE §b.4): the body echoed as
// BODY plus its SHA-256 as HASH. Not counted against the REST limit.
func (s *Server) serveHashkey(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.writeReply(w, "", gatewayErr("EGW00101"))
		return
	}
	if code := s.checkKey(r.Header.Get("appkey"), r.Header.Get("appsecret")); code != "" {
		s.writeReply(w, "", gatewayErr(code))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	var v any
	if err != nil || json.Unmarshal(body, &v) != nil {
		s.writeReply(w, "", &reply{status: 200, rtCd: "2", msgCd: "OPSQ9997", msg1: "JSON PARSING ERROR : invalid json format"})
		return
	}
	sum := sha256.Sum256(body)
	s.writeJSON(w, http.StatusOK, struct {
		Body any    `json:"BODY"`
		Hash string `json:"HASH"`
	}{v, hex.EncodeToString(sum[:])})
}

// authorize checks a data call's credentials: app key/secret headers,
// Bearer token (known, unrevoked, unexpired, issued to this app key with
// this secret) and custtype. It returns the error reply or nil.
func (s *Server) authorize(r *http.Request) *reply {
	key, secret := r.Header.Get("appkey"), r.Header.Get("appsecret")
	switch {
	case key == "":
		return gatewayErr("EGW00102")
	case secret == "":
		return gatewayErr("EGW00104")
	}
	authz := r.Header.Get("authorization")
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authz), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return gatewayErr("EGW00205")
	}
	tok = strings.TrimSpace(tok)
	if code := s.checkKey(key, secret); code != "" {
		return gatewayErr(code)
	}
	now := s.now()
	s.auth.mu.Lock()
	t := s.auth.tokens[tok]
	var code string
	switch {
	case t == nil || t.revoked || t.appKey != key:
		code = "EGW00121"
	case !now.Before(t.expires):
		code = "EGW00123"
	case t.secret != secret:
		code = "EGW00105"
	}
	s.auth.mu.Unlock()
	if code != "" {
		return gatewayErr(code)
	}
	// custtype: python-kis sends none on quotation calls and works against
	// the real server, so missing is fine; present must be P or B.
	if v := r.Header.Values("custtype"); len(v) > 0 && v[0] != "P" && v[0] != "B" {
		return gatewayErr("EGW00208")
	}
	return nil
}
