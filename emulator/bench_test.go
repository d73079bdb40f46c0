package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// BenchmarkThroughput drives parallel inquire-price calls through the
// handler (rate limit off) and reports requests per second.
func BenchmarkThroughput(b *testing.B) {
	s, err := New(WithMarket(sharedMarket()), WithRate(0), WithMarketClock(func() time.Time { return marketTime }))
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/oauth2/tokenP",
		jsonBody(map[string]string{"grant_type": "client_credentials", "appkey": testKey, "appsecret": testSecret})))
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		b.Fatal(err)
	}
	codes := []string{"005930", "000660", "035420", "005380", "035720", "068270"}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, quotationsPrefix+"inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD="+codes[i%len(codes)], nil)
			req.Header.Set("authorization", "Bearer "+tr.AccessToken)
			req.Header.Set("appkey", testKey)
			req.Header.Set("appsecret", testSecret)
			req.Header.Set("tr_id", "FHKST01010100")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("HTTP %d %s", w.Code, w.Body)
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
