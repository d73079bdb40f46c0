package kis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

func TestNewClientOptions(t *testing.T) {
	t.Parallel()
	good := WithAppKey(testKey, testSecret)
	tests := []struct {
		name string
		opts []Option
		want string // substring of the error; "" = success
	}{
		{"ok", []Option{good}, ""},
		{"no key", nil, "app key and secret required"},
		{"empty secret", []Option{WithAppKey("k", " ")}, "want both non-empty"},
		{"bad base", []Option{good, WithBaseURL("ftp://x")}, "base url"},
		{"bad base empty", []Option{good, WithBaseURL("")}, "base url"},
		{"bad server", []Option{good, WithServer(Server(9))}, "server 9"},
		{"bad rate", []Option{good, WithRateLimit(0)}, "rate limit"},
		{"bad rate nan", []Option{good, WithRateLimit(-1)}, "rate limit"},
		{"nil limiter", []Option{good, WithLimiter(nil)}, "limiter"},
		{"bad timeout", []Option{good, WithTimeout(0)}, "timeout"},
		{"nil store", []Option{good, WithTokenStore(nil)}, "token store"},
		{"nil logger", []Option{good, WithLogger(nil)}, "logger"},
		{"nil clock", []Option{good, WithClock(nil)}, "clock"},
		{"bad retry", []Option{good, WithRetry(-1, time.Second, time.Second)}, "retry attempts"},
		{"bad retry delays", []Option{good, WithRetry(3, time.Second, time.Millisecond)}, "retry delays"},
		{"nil http", []Option{good, WithHTTPClient(nil)}, "http client"},
		{"bad margin", []Option{good, WithTokenMargin(-time.Second)}, "token margin"},
		{"bad queue", []Option{good, WithMaxQueue(0)}, "max queue"},
		{"nil observer", []Option{good, WithObserver(nil)}, "observer"},
		{"bad master", []Option{good, WithMasterURL("nope")}, "master url"},
		{"nil transport", []Option{good, WithTransport(nil)}, "transport wrapper: want non-nil"},
		{"transport returns nil", []Option{good, WithTransport(func(http.RoundTripper) http.RoundTripper { return nil })},
			"transport wrapper returned nil"},
		{"transport and http client", []Option{good, WithHTTPClient(http.DefaultClient),
			WithTransport(func(rt http.RoundTripper) http.RoundTripper { return rt })}, "want one"},
		{"transport", []Option{good, WithTransport(func(rt http.RoundTripper) http.RoundTripper { return rt })}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]Option{WithTokenStore(NewMemoryTokenStore())}, tt.opts...)
			c, err := NewClient(opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if c != nil {
				t.Fatalf("got a client with an error")
			}
		})
	}
}

func TestServerDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []Option
		wantURL  string
		wantRate float64
	}{
		{"real", nil, RealBaseURL, RealRateLimit * headroom},
		{"mock", []Option{WithServer(Mock)}, MockBaseURL, MockRateLimit * headroom},
		{"base url wins over server, any order", []Option{WithBaseURL("http://x:1"), WithServer(Mock)}, "http://x:1", MockRateLimit * headroom},
		{"explicit rate", []Option{WithServer(Mock), WithRateLimit(5)}, MockBaseURL, 5 * headroom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(append([]Option{WithAppKey(testKey, testSecret), WithTokenStore(NewMemoryTokenStore())}, tt.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.BaseURL(); got != tt.wantURL {
				t.Errorf("base url: got %s, want %s", got, tt.wantURL)
			}
			if got := c.RateLimit(); got != tt.wantRate {
				t.Errorf("rate: got %v, want %v", got, tt.wantRate)
			}
		})
	}
	if Real.String() != "real" || Mock.String() != "mock" || Server(7).String() != "Server(7)" {
		t.Errorf("Server.String: got %s %s %s", Real, Mock, Server(7))
	}
}

func TestPrice(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fixed("/uapi/domestic-stock/v1/quotations/inquire-price", "inquire-price.json")
	now := time.Date(2026, 5, 20, 10, 0, 0, 0, kisfeed.KST)
	c := testClient(t, f.url(), WithClock(func() time.Time { return now }))
	q, resp, err := c.Price(t.Context(), "000660")
	if err != nil {
		t.Fatal(err)
	}
	want := kisfeed.Quote{
		Code: "000660", Price: 128500, Open: 128500, High: 130000, Low: 128500, PrevClose: 128500,
		BasePrice: 128500, Change: 0, ChangeRate: 0, Volume: 2669075, TradingValue: 344570137500,
		UpperLimit: 167000, LowerLimit: 90000, TickSize: 500,
		Meta: kisfeed.Meta{Source: "kis", Origin: kisfeed.OriginSource, AsOf: now},
	}
	if *q != want {
		t.Errorf("got %+v\nwant %+v", *q, want)
	}
	if resp.StatusCode != 200 || resp.MsgCd != "MCA00000" {
		t.Errorf("response: got %d %s, want 200 MCA00000", resp.StatusCode, resp.MsgCd)
	}
	f.mu.Lock()
	h, qv := f.lastHdr, f.lastQuery
	f.mu.Unlock()
	for k, v := range map[string]string{
		"authorization": "Bearer " + testToken, "appkey": testKey, "appsecret": testSecret,
		"tr_id": TrPrice, "custtype": "P", "content-type": "application/json; charset=utf-8",
	} {
		if got := h.Get(k); got != v {
			t.Errorf("header %s: got %q, want %q", k, got, v)
		}
	}
	if qv["FID_COND_MRKT_DIV_CODE"][0] != "J" || qv["FID_INPUT_ISCD"][0] != "000660" {
		t.Errorf("query: got %v", qv)
	}
}

func TestPriceErrors(t *testing.T) {
	t.Parallel()
	okWith := func(field, value string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"rt_cd":"0","msg_cd":"MCA00000","msg1":"ok","output":{"stck_prpr":"100","%s":%q}}`, field, value)
		}
	}
	tests := []struct {
		name    string
		code    string
		h       http.HandlerFunc
		is      []error
		msg     string
		noCalls bool
		// field and value: the *MalformedError expected, with the code
		// and the raw object.
		field, value string
	}{
		{name: "malformed code", code: "12345", is: []error{kisfeed.ErrInvalid}, noCalls: true},
		{name: "lowercase code", code: "00593a", is: []error{kisfeed.ErrInvalid}, noCalls: true},
		{name: "unknown zero price", code: "999999", h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"rt_cd":"0","msg_cd":"MCA00000","msg1":"ok","output":{"stck_prpr":"0"}}`))
		}, is: []error{ErrUnknownStock, kisfeed.ErrNotFound}},
		{name: "rt_cd 7", code: "999999", h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"rt_cd":"7","msg_cd":"KIOK0560","msg1":"조회할 자료가 없습니다   "}`))
		}, is: []error{ErrUnknownStock, kisfeed.ErrNotFound}, msg: `"조회할 자료가 없습니다"`},
		{name: "bad integer", code: "005930", h: okWith("stck_oprc", "12a"), is: []error{ErrMalformed},
			msg: `kis FHKST01010100 stock 005930: output.stck_oprc: "12a" is not an integer`, field: "output.stck_oprc", value: "12a"},
		{name: "bad rate", code: "005930", h: okWith("prdy_ctrt", "1.2.3"), is: []error{ErrMalformed},
			msg: `output.prdy_ctrt: "1.2.3" is not a decimal number`, field: "output.prdy_ctrt", value: "1.2.3"},
		{name: "hex integer", code: "005930", h: okWith("acml_vol", "0x10"), is: []error{ErrMalformed},
			msg: `output.acml_vol: "0x10" is not an integer`, field: "output.acml_vol", value: "0x10"},
		{name: "empty price", code: "005930", h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"rt_cd":"0","msg_cd":"MCA00000","msg1":"ok","output":{"stck_prpr":""}}`))
		}, is: []error{ErrUnknownStock}},
		{name: "number not string", code: "005930", h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"rt_cd":"0","output":{"stck_prpr":100}}`))
		}, is: []error{ErrMalformed}, msg: `output.stck_prpr: "100" is not a JSON string`, field: "output.stck_prpr", value: "100"},
		{name: "object not object", code: "005930", h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"rt_cd":"0","output":[1]}`))
		}, is: []error{ErrMalformed}, field: "output", value: "[1]"},
		{name: "envelope type", code: "005930", h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"rt_cd":0,"output":{"stck_prpr":"1"}}`))
		}, is: []error{ErrMalformed}, field: "rt_cd", value: "0"},
		{name: "truncated json", code: "005930", h: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"rt_cd":"0","output":{"stck_prpr":"1`))
		}, msg: "not JSON"},
		{name: "business error in 200", code: "005930", h: errBody(200, "OPSQ2001", "시장구분코드 오류"),
			msg: "OPSQ2001"},
		{name: "mock unsupported", code: "005930", h: errBody(500, "EGW00213", "모의투자 TR 이 아닙니다."),
			is: []error{ErrUnsupported}},
		{name: "bad credentials", code: "005930", h: errBody(500, "EGW00105", "유효하지 않은 AppSecret"),
			is: []error{ErrInvalidCredentials}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			path := "/uapi/domestic-stock/v1/quotations/inquire-price"
			if tt.h != nil {
				f.handle(path, tt.h)
			}
			c := testClient(t, f.url())
			q, _, err := c.Price(t.Context(), tt.code)
			if err == nil {
				t.Fatalf("got quote %+v, want an error", q)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("got %v, want errors.Is %v", err, target)
				}
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q, want it to contain %q", err, tt.msg)
			}
			if tt.field != "" {
				var me *MalformedError
				switch {
				case !errors.As(err, &me):
					t.Errorf("got %T %v, want a *MalformedError", err, err)
				case me.Field != tt.field || me.Value != tt.value || me.Op != TrPrice || len(me.Raw) == 0 || !json.Valid(me.Raw):
					t.Errorf("got field %q value %q tr_id %q raw %s; want %q %q %s and the raw object",
						me.Field, me.Value, me.Op, me.Raw, tt.field, tt.value, TrPrice)
				case tt.field != "rt_cd" && me.Code != tt.code:
					t.Errorf("got code %q, want %q", me.Code, tt.code)
				}
			}
			calls := f.count(path)
			if tt.noCalls && calls != 0 {
				t.Errorf("got %d calls, want none", calls)
			}
			if !tt.noCalls && calls != 1 {
				t.Errorf("got %d calls, want exactly 1 (no retry)", calls)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write(fixture(t, "inquire-price.json")) }
	tests := []struct {
		name      string
		h         http.HandlerFunc
		wantErr   error
		wantCalls int
		wantMsg   string
	}{
		{"rate limited then ok", sequence(errBody(500, "EGW00201", "초당 거래건수를 초과하였습니다."), ok), nil, 2, ""},
		{"500 html then ok", sequence(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		}, ok), nil, 2, ""},
		{"gateway error then ok", sequence(errBody(500, "EGW00002", "서버 에러"), ok), nil, 2, ""},
		{"empty 503 then ok", sequence(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, ok), nil, 2, ""},
		{"rate limited forever", errBody(500, "EGW00201", "초당 거래건수를 초과하였습니다."), ErrRateLimited, 3, "after 3 attempts"},
		{"reset then ok", sequence(func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, ok), nil, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			path := "/uapi/domestic-stock/v1/quotations/inquire-price"
			f.handle(path, tt.h)
			var logs logBuffer
			c := testClient(t, f.url(), WithLogger(logs.logger()))
			_, _, err := c.Price(t.Context(), "000660")
			if tt.wantErr == nil && err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %q, want %q in it", err, tt.wantMsg)
			}
			if got := f.count(path); got != tt.wantCalls {
				t.Errorf("calls: got %d, want %d", got, tt.wantCalls)
			}
			if tt.name == "reset then ok" {
				return // net/http itself replays a GET whose reused connection died
			}
			if got := c.Stats().Retries; got != int64(tt.wantCalls-1) {
				t.Errorf("retries: got %d, want %d", got, tt.wantCalls-1)
			}
			if !strings.Contains(logs.String(), "tr_id="+TrPrice) {
				t.Errorf("retry log lacks tr_id: %s", logs.String())
			}
		})
	}
}

func TestTimeoutRetried(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	path := "/uapi/domestic-stock/v1/quotations/inquire-price"
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.handle(path, sequence(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, func(w http.ResponseWriter, r *http.Request) { w.Write(fixture(t, "inquire-price.json")) }))
	c := testClient(t, f.url(), WithTimeout(100*time.Millisecond))
	if _, _, err := c.Price(t.Context(), "000660"); err != nil {
		t.Fatalf("got %v, want success after a timed-out attempt", err)
	}
	if got := f.count(path); got != 2 {
		t.Errorf("calls: got %d, want 2", got)
	}
}

func TestContextCancelNotRetried(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := testClient(t, f.url())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := c.Price(ctx, "005930"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestSecretsNeverLeak provokes every kind of failure and checks that
// neither the app secret nor a token appears in any error or log line.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	echo := func(w http.ResponseWriter, r *http.Request) {
		// A hostile upstream echoing the credentials back.
		w.WriteHeader(500)
		fmt.Fprintf(w, `{"rt_cd":"1","msg_cd":"EGW00002","msg1":"%s %s"}`, r.Header.Get("appsecret"), r.Header.Get("authorization"))
	}
	html := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		fmt.Fprintf(w, "<html>%s %s</html>", r.Header.Get("appsecret"), r.Header.Get("authorization"))
	}
	f.handle("/uapi/domestic-stock/v1/quotations/inquire-price", echo)
	f.handle("/uapi/domestic-stock/v1/quotations/inquire-asking-price-exp-ccn", html)
	f.handle("/uapi/domestic-stock/v1/quotations/search-stock-info", errBody(500, "EGW00123", "기간이 만료된 token 입니다."))
	var logs logBuffer
	c := testClient(t, f.url(), WithLogger(logs.logger()))
	newFakeClock(time.Now()).install(c)
	var errs []error
	_, _, err := c.Price(t.Context(), "005930")
	errs = append(errs, err)
	_, _, err = c.OrderBook(t.Context(), "005930")
	errs = append(errs, err)
	_, err = c.StockInfo(t.Context(), "005930")
	errs = append(errs, err)
	tok, err := c.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c.log.Info("token", "token", tok, "ptr", *tok)
	text := logs.String() + fmt.Sprintf("%v %+v %#v %s", *tok, *tok, *tok, tok)
	// Bad credentials on tokenP.
	f2 := newFake(t)
	f2.mu.Lock()
	f2.tokenFunc = func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(403)
		w.Write(fixture(t, "oauth2_tokenP.error_EGW00103.json"))
	}
	f2.mu.Unlock()
	c2 := testClient(t, f2.url(), WithLogger(logs.logger()))
	_, _, err = c2.Price(t.Context(), "005930")
	if !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("got %v, want ErrInvalidCredentials", err)
	}
	errs = append(errs, err)
	for _, e := range errs {
		if e == nil {
			t.Fatal("want an error from every provoked call")
		}
		text += e.Error() + fmt.Sprintf(" %+v %#v\n", e, e)
	}
	text += logs.String()
	for _, secret := range []string{testSecret, testToken} {
		if strings.Contains(text, secret) {
			t.Errorf("secret %q leaked into:\n%s", secret[:8], text)
		}
	}
}

func TestConcurrentTokenSingleflight(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fixed("/uapi/domestic-stock/v1/quotations/inquire-price", "inquire-price.json")
	c := testClient(t, f.url())
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if _, _, err := c.Price(t.Context(), "000660"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := f.tokenCalls(); got != 1 {
		t.Errorf("token calls: got %d, want 1", got)
	}
	if got := c.Stats().TokensIssued; got != 1 {
		t.Errorf("stats tokens: got %d, want 1", got)
	}
}

type countingObserver struct {
	mu                        sync.Mutex
	requests, retries, tokens int
	waits                     int
	statuses                  []int
}

func (o *countingObserver) Request(tr string, status int, msg string, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests++
	o.statuses = append(o.statuses, status)
}
func (o *countingObserver) Retry(string, string) { o.mu.Lock(); o.retries++; o.mu.Unlock() }
func (o *countingObserver) LimiterWait(time.Duration) {
	o.mu.Lock()
	o.waits++
	o.mu.Unlock()
}
func (o *countingObserver) TokenIssued() { o.mu.Lock(); o.tokens++; o.mu.Unlock() }

func TestObserverAndStats(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("/uapi/domestic-stock/v1/quotations/inquire-price",
		sequence(errBody(500, "EGW00201", "초당"), func(w http.ResponseWriter, r *http.Request) { w.Write(fixture(t, "inquire-price.json")) }))
	obs := &countingObserver{}
	c := testClient(t, f.url(), WithObserver(obs))
	if _, _, err := c.Price(t.Context(), "000660"); err != nil {
		t.Fatal(err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.requests != 3 || obs.retries != 1 || obs.tokens != 1 || obs.waits != 3 {
		t.Errorf("observer: got requests=%d retries=%d tokens=%d waits=%d, want 3 1 1 3", obs.requests, obs.retries, obs.tokens, obs.waits)
	}
	st := c.Stats()
	if st.Requests != 3 || st.Retries != 1 || st.RateLimited != 1 || st.TokensIssued != 1 {
		t.Errorf("stats: got %+v", st)
	}
}

type countLimiter struct {
	mu  sync.Mutex
	n   int
	err error
}

func (l *countLimiter) Wait(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return l.err
}

func TestSharedLimiter(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fixed("/uapi/domestic-stock/v1/quotations/inquire-price", "inquire-price.json")
	l := &countLimiter{}
	c := testClient(t, f.url(), WithLimiter(l))
	if _, _, err := c.Price(t.Context(), "000660"); err != nil {
		t.Fatal(err)
	}
	if l.n != 2 { // tokenP + inquire-price
		t.Errorf("shared limiter waits: got %d, want 2", l.n)
	}
	l.err = errors.New("redis down")
	if _, _, err := c.Price(t.Context(), "000660"); err == nil || !strings.Contains(err.Error(), "shared rate limiter") {
		t.Errorf("got %v, want a shared limiter error", err)
	}
}

func TestAPIErrorText(t *testing.T) {
	t.Parallel()
	e := &APIError{HTTPStatus: 500, RtCd: "1", MsgCd: "EGW00201", Msg1: "초당 거래건수를 초과하였습니다.", TrID: TrPrice}
	want := `kis FHKST01010100: http 500 rt_cd 1 EGW00201 "초당 거래건수를 초과하였습니다."`
	if got := e.Error(); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if !errors.Is(e, ErrRateLimited) || errors.Is(e, ErrTokenExpired) {
		t.Errorf("sentinel mapping wrong for %v", e)
	}
	if got := (&APIError{HTTPStatus: 502}).Error(); got != "kis: http 502" {
		t.Errorf("got %s", got)
	}
}
