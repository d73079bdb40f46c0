package kis

import (
	"crypto/tls"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestWithTransport: the wrapper gets the pooled transport with its
// settings (so callers such as internal/wiring need not copy them), and
// every request of the client goes through the wrapper.
func TestWithTransport(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.fixed("/uapi/domestic-stock/v1/quotations/inquire-price", "inquire-price.json")
	const timeout = 3 * time.Second
	var base *http.Transport
	var calls atomic.Int64
	c := testClient(t, f.url(), WithTimeout(timeout), WithTransport(func(rt http.RoundTripper) http.RoundTripper {
		base, _ = rt.(*http.Transport)
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls.Add(1)
			return rt.RoundTrip(r)
		})
	}))
	if base == nil {
		t.Fatal("wrapper got no *http.Transport, want the pooled one")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"ResponseHeaderTimeout", base.ResponseHeaderTimeout, timeout},
		{"TLS MinVersion", base.TLSClientConfig.MinVersion, uint16(tls.VersionTLS12)},
		{"HTTP/2 disabled (empty TLSNextProto)", base.TLSNextProto != nil && len(base.TLSNextProto) == 0, true},
		{"MaxIdleConnsPerHost", base.MaxIdleConnsPerHost, 64},
		{"client Timeout", c.http.Timeout, timeout},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if _, _, err := c.Price(t.Context(), "000660"); err != nil {
		t.Fatal(err)
	}
	// One token call and one price call, both through the wrapper.
	if got := calls.Load(); got != 2 {
		t.Errorf("requests through the wrapper: got %d, want 2", got)
	}
}
