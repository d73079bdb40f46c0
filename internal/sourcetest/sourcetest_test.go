package sourcetest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
)

func TestFunc(t *testing.T) {
	t.Parallel()
	var f sourcetest.Func
	if _, err := f.Quote(t.Context(), kisfeed.MustParseCode("005930")); err == nil {
		t.Errorf("nil QuoteFn: got nil error, want one")
	}
	f.QuoteFn = func(_ context.Context, code string) (*kisfeed.Quote, error) {
		if code == "999990" {
			return nil, kisfeed.ErrNotFound
		}
		return &kisfeed.Quote{Code: code}, nil
	}
	qs, err := f.Quotes(t.Context(), kisfeed.MustParseCodes("005930", "999990"))
	var be *kisfeed.BatchError
	if !errors.As(err, &be) || qs[0] == nil || qs[1] != nil {
		t.Errorf("Quotes via QuoteFn: got %v, %v; want one quote and a BatchError", qs, err)
	}
	down := errors.New("upstream down")
	f.QuoteFn = func(context.Context, string) (*kisfeed.Quote, error) { return nil, down }
	if qs, err := f.Quotes(t.Context(), kisfeed.MustParseCodes("005930")); !errors.Is(err, down) || qs != nil {
		t.Errorf("Quotes via failing QuoteFn: got %v, %v; want nil and %v (not a BatchError)", qs, err, down)
	}
}
