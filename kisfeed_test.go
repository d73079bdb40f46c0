package kisfeed

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidateCode(t *testing.T) {
	tests := []struct {
		code string
		ok   bool
	}{
		{"005930", true},
		{"0088M0", true},
		{"00593", false},
		{"0059301", false},
		{"", false},
		{"abcdef", false},
		{"'; DROP", false},
		{"<scrip", false},
		{"005 30", false},
		{strings.Repeat("9", 1000), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.10q", tt.code), func(t *testing.T) {
			err := ValidateCode(tt.code)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateCode(%q) = %v, want ok=%v", tt.code, err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				if len(err.Error()) > 120 {
					t.Errorf("error message too long (%d bytes): long input must be truncated", len(err.Error()))
				}
			}
		})
	}
}

func TestParseIntervalAndMarket(t *testing.T) {
	for in, want := range map[string]Interval{"day": IntervalDay, "D": IntervalDay, "Week": IntervalWeek,
		"month": IntervalMonth, "minute": IntervalMinute, "1m": IntervalMinute} {
		if got, err := ParseInterval(in); err != nil || got != want {
			t.Errorf("ParseInterval(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseInterval("hour"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "minute, day, week or month") {
		t.Errorf("ParseInterval(hour) error = %v, want ErrInvalid listing the choices", err)
	}
	if m, err := ParseMarket("kosdaq"); err != nil || m != MarketKOSDAQ {
		t.Errorf("ParseMarket(kosdaq) = %q, %v", m, err)
	}
	if _, err := ParseMarket("nasdaq"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseMarket(nasdaq) error = %v, want ErrInvalid", err)
	}
}

func TestErrors(t *testing.T) {
	cause := errors.New("dial tcp: connection refused")
	err := fmt.Errorf("quote 005930: %w", &UnavailableError{RetryAfter: 42 * time.Second, Err: cause})
	if !errors.Is(err, ErrUnavailable) {
		t.Error("UnavailableError does not match ErrUnavailable")
	}
	if !errors.Is(err, cause) {
		t.Error("UnavailableError does not unwrap to its cause")
	}
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.RetryAfter != 42*time.Second {
		t.Errorf("errors.As: got %+v, want RetryAfter 42s", ue)
	}
	if !strings.Contains(err.Error(), "retry after 42s") {
		t.Errorf("message %q lacks the retry delay", err)
	}
	if !IsBusinessError(fmt.Errorf("x: %w", ErrNotFound)) || !IsBusinessError(ValidateCode("x")) {
		t.Error("IsBusinessError false for not-found / invalid")
	}
	if IsBusinessError(cause) || IsBusinessError(err) {
		t.Error("IsBusinessError true for an upstream failure")
	}
	be := &BatchError{Errs: map[string]error{"999999": ErrNotFound}}
	if be.Error() != "1 of the requested codes failed" {
		t.Errorf("BatchError = %q", be.Error())
	}
}

// TestMalformedError: the root malformed-value error matches its sentinel
// through wrapping, is not a business error (the breaker classifies it on
// its own), and its message names the request, the code, the field and a
// bounded value.
func TestMalformedError(t *testing.T) {
	tests := []struct {
		name string
		e    *MalformedError
		want string
	}{
		{"full", &MalformedError{Op: "FHKST11300006", Code: "005930", Field: "output[3].inter2_hgpr", Value: "70900x", Want: "an integer"},
			`malformed upstream value in FHKST11300006 for stock 005930: output[3].inter2_hgpr: "70900x" is not an integer`},
		{"bare", &MalformedError{Field: "output", Value: "["}, `malformed upstream value: output: "[" is not readable`},
		{"long value cut", &MalformedError{Field: "x", Value: strings.Repeat("9", 100), Want: "an integer"},
			`malformed upstream value: x: "` + strings.Repeat("9", 32) + `" is not an integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			err := fmt.Errorf("quotes: %w", tt.e)
			if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnavailable) || IsBusinessError(err) {
				t.Errorf("%v: want ErrMalformed only", err)
			}
			var me *MalformedError
			if !errors.As(err, &me) || me != tt.e {
				t.Errorf("errors.As: got %v, want the wrapped value", me)
			}
		})
	}
}

func TestDay(t *testing.T) {
	utc := time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC) // 01:00 KST on the 28th
	if got := Day(utc); !got.Equal(Date(2026, 11, 28)) {
		t.Errorf("Day(%s) = %s, want 2026-11-28 KST", utc, got)
	}
	if _, off := Date(2026, 1, 1).Zone(); off != 9*3600 {
		t.Errorf("KST offset = %d, want 32400", off)
	}
}
