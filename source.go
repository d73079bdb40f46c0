package kisfeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Source is where market data comes from. Implementations stack: the KIS
// source talks to the API, the mock source computes from the synthetic
// market, and decorators (cache, circuit breaker) wrap another Source
// without knowing what is underneath.
//
// Every method validates its input first and returns an error wrapping
// [ErrInvalid] for a malformed code or parameter, [ErrNotFound] for a
// well-formed code that is not listed, and [ErrUnavailable] when the
// upstream cannot be reached and nothing cached can stand in. Any other
// error is an upstream failure (timeout, 5xx, exhausted retries).
type Source interface {
	// Quote returns the current price snapshot of one stock.
	Quote(ctx context.Context, code string) (*Quote, error)
	// Quotes returns snapshots for many codes, in the order asked. A code
	// that fails on its own (unknown, malformed) is reported in the
	// returned *[BatchError] while the others are still returned; the
	// slice then holds nil at that position. Any other error fails the
	// whole call.
	Quotes(ctx context.Context, codes []string) ([]*Quote, error)
	// OrderBook returns the 10-level book of one stock.
	OrderBook(ctx context.Context, code string) (*OrderBook, error)
	// Candles returns a candle series, oldest first.
	Candles(ctx context.Context, q CandleQuery) (*Candles, error)
	// StockInfo returns descriptive data about one stock.
	StockInfo(ctx context.Context, code string) (*StockInfo, error)
	// Universe returns every listed security (all groups, sorted by code);
	// callers filter with [Stock.IsCommonStock] and the like.
	Universe(ctx context.Context) ([]Stock, error)
	// IsTradingDay reports whether KRX trades on the KST calendar day of
	// date.
	IsTradingDay(ctx context.Context, date time.Time) (bool, error)
}

// Sentinel errors. Implementations wrap them (fmt.Errorf("...: %w", ErrX))
// so callers can branch with errors.Is.
var (
	// ErrInvalid marks bad input: a malformed code, an impossible date
	// range, an unknown interval. Never retried, never trips a breaker.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound marks a well-formed code that is not listed, or a
	// request with no data. Never retried, never trips a breaker.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable marks an upstream that cannot be reached now (circuit
	// open, outage) with no cached value to serve instead.
	ErrUnavailable = errors.New("upstream unavailable")
	// ErrMalformed marks an answer the upstream gave successfully that
	// holds a value the adapter cannot read: a non-numeric price, a bad
	// date, a JSON type it does not expect. Every [*MalformedError]
	// matches it. It is a data problem of one response, not an outage:
	// breakers do not count it, and a batch call fails only the code whose
	// row held it.
	ErrMalformed = errors.New("malformed value in upstream response")
)

// MalformedError is one unreadable value in an otherwise successful
// upstream answer. Adapters keep decoding strict (no silent zeros) and
// return it, or an error of their own that unwraps to it, so callers
// outside the adapter (ingest records it as a rejected bar) read the
// field, the value and the raw row without importing the adapter. It
// holds only response data, never a secret.
type MalformedError struct {
	// Op names the upstream request that answered, as its adapter calls
	// it (for KIS, the tr_id, e.g. FHKST11300006); empty when unknown.
	Op string
	// Field is the value's full name in the answer, with the row index
	// for arrays: output[3].inter2_hgpr, output2[0].stck_clpr.
	Field string
	// Value is the offending value as sent (adapters bound its length);
	// for a JSON type mismatch, the JSON text.
	Value string
	// Want is what was expected, e.g. "an integer".
	Want string
	// Code is the stock code the row or object belongs to, when known.
	Code string
	// Raw is the offending row or object as received (or re-encoded), for
	// an audit trail.
	Raw json.RawMessage
}

func (e *MalformedError) Error() string {
	msg := "malformed upstream value"
	if e.Op != "" {
		msg += " in " + e.Op
	}
	if e.Code != "" {
		msg += " for stock " + e.Code
	}
	want := e.Want
	if want == "" {
		want = "readable"
	}
	// %.32q: a long value is cut (Raw keeps it), so one bad row cannot
	// flood a log line.
	return fmt.Sprintf("%s: %s: %.32q is not %s", msg, e.Field, e.Value, want)
}

// Is makes every MalformedError match [ErrMalformed].
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// UnavailableError is returned (wrapping [ErrUnavailable]) when a circuit
// breaker refuses a call; RetryAfter says when it will try again.
type UnavailableError struct {
	RetryAfter time.Duration
	Err        error // the last upstream failure, if known
}

func (e *UnavailableError) Error() string {
	msg := "upstream unavailable"
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter.Round(time.Second))
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the last upstream failure.
func (e *UnavailableError) Unwrap() error { return e.Err }

// BatchError reports the codes of a batch call that failed on their own.
type BatchError struct {
	// Errs maps a code to its error (wrapping ErrNotFound or ErrInvalid).
	Errs map[string]error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%d of the requested codes failed", len(e.Errs))
}

// IsBusinessError reports whether err is a caller or data problem (invalid
// input, unknown code, no data) rather than an upstream failure. Circuit
// breakers and retries use it: business errors are neither retried nor
// counted as failures.
func IsBusinessError(err error) bool {
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound)
}

// Code is a KRX short code that has passed [ParseCode]: the zero value
// is empty, and every other value is well formed, because outside this
// package a Code is only built by ParseCode. Edges (HTTP parameters, CLI
// arguments, ingest's --codes) parse once and hand the Code inward.
type Code struct{ s string }

// ParseCode checks that s is a 6-character KRX short code: six digits
// ("005930"), or the alphanumeric form KRX issues for newer listings
// ("0088M0"). The error wraps [ErrInvalid] and says what was expected.
func ParseCode(s string) (Code, error) {
	if !validCode(s) {
		shown := s
		if len(shown) > 20 {
			shown = shown[:20] + "…"
		}
		return Code{}, fmt.Errorf("%w: stock code %q: want 6 characters like 005930 (digits or A-Z)", ErrInvalid, shown)
	}
	return Code{s}, nil
}

// String returns the code as written, "" for the zero Code.
func (c Code) String() string { return c.s }

// IsZero reports whether c is the zero Code (no code).
func (c Code) IsZero() bool { return c.s == "" }

// validCode is the rule: a digit, then five digits or upper-case letters.
// A loop rather than a regular expression: the cache's hit path checks
// every code and should not pay for a regexp match.
func validCode(s string) bool {
	if len(s) != 6 || s[0] < '0' || s[0] > '9' {
		return false
	}
	for i := 1; i < 6; i++ {
		if ch := s[i]; (ch < '0' || ch > '9') && (ch < 'A' || ch > 'Z') {
			return false
		}
	}
	return true
}

// ValidateCode is [ParseCode] for callers that keep the string (the
// library surfaces, such as kis, and decorators under the string-keyed
// [Source] methods).
func ValidateCode(code string) error {
	_, err := ParseCode(code)
	return err
}
