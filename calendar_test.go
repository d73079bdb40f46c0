package kisfeed_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kisfeed/kisfeed"
)

func TestErrNoCalendar(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("%w for 2031-01-01: the built-in KRX calendar covers 2020–2027", kisfeed.ErrNoCalendar)
	if !errors.Is(err, kisfeed.ErrNoCalendar) || !errors.Is(err, kisfeed.ErrInvalid) || !kisfeed.IsBusinessError(err) {
		t.Errorf("%v: got Is(ErrNoCalendar) %v, Is(ErrInvalid) %v, business %v; want all true",
			err, errors.Is(err, kisfeed.ErrNoCalendar), errors.Is(err, kisfeed.ErrInvalid), kisfeed.IsBusinessError(err))
	}
	if errors.Is(fmt.Errorf("%w: bad code", kisfeed.ErrInvalid), kisfeed.ErrNoCalendar) {
		t.Errorf("a plain ErrInvalid matched ErrNoCalendar")
	}
	if got, want := err.Error(), "no trading calendar for 2031-01-01: the built-in KRX calendar covers 2020–2027"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
