package wiring

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/breaker"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

// TestCheckBreakerHalfOpen: /readyz's breaker check is ok only while the
// circuit is closed; open and half-open (mid-outage, waiting for a trial
// to succeed) are both degraded.
func TestCheckBreakerHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fail := errors.New("kis: HTTP 500")
		var down bool
		up := &sourcetest.Func{QuoteFn: func(context.Context, string) (*kisfeed.Quote, error) {
			if down {
				return nil, fail
			}
			return &kisfeed.Quote{Code: "005930"}, nil
		}}
		b, err := breaker.New(up, breaker.WithFailures(1), breaker.WithDelay(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		u := &Stack{breaker: b}
		steps := []struct {
			name string
			do   func()
			want string // "" = ready, else a substring of the failure
		}{
			{"closed", func() {}, ""},
			{"open", func() { down = true; _, _ = b.Quote(t.Context(), kisfeed.MustParseCode("005930")) }, "open"},
			{"delay passed", func() { time.Sleep(10 * time.Second) }, "half-open"},
			{"trial failed", func() { _, _ = b.Quote(t.Context(), kisfeed.MustParseCode("005930")) }, "open"},
			{"closed again", func() {
				time.Sleep(10 * time.Second)
				down = false
				_, _ = b.Quote(t.Context(), kisfeed.MustParseCode("005930"))
			}, ""},
		}
		for _, st := range steps {
			st.do()
			err := u.CheckBreaker(t.Context())
			switch {
			case st.want == "" && err != nil:
				t.Errorf("%s: got %v, want ready", st.name, err)
			case st.want != "" && (err == nil || !strings.Contains(err.Error(), st.want)):
				t.Errorf("%s: got %v, want an error saying %q", st.name, err, st.want)
			}
		}
	})
}
