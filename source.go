package kisfeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Source is where market data comes from. Implementations stack: the KIS
// source talks to the API, the synthetic source computes from the synthetic
// market, and decorators (cache, circuit breaker) wrap another Source
// without knowing what is underneath.
//
// Stock codes arrive as [Code], so they were parsed at the edge (HTTP
// parameters, CLI arguments, ingest's universe) and implementations do not
// check them again; callers must not pass the zero Code. Other input
// (intervals, date ranges) is validated by the implementation. Methods
// return an error wrapping [ErrInvalid] for a bad parameter, [ErrNotFound]
// for a code that is not listed, and [ErrUnavailable] when the
// upstream cannot be reached and nothing cached can stand in. Any other
// error is an upstream failure (timeout, 5xx, exhausted retries).
type Source interface {
	// Quote returns the current price snapshot of one stock.
	Quote(ctx context.Context, code Code) (*Quote, error)
	// Quotes returns snapshots for many codes, in the order asked. A code
	// that fails on its own (unknown, or an unreadable row) is reported in the
	// returned *[BatchError] while the others are still returned; the
	// slice then holds nil at that position. Any other error fails the
	// whole call.
	Quotes(ctx context.Context, codes []Code) ([]*Quote, error)
	// OrderBook returns the 10-level book of one stock.
	OrderBook(ctx context.Context, code Code) (*OrderBook, error)
	// Candles returns a candle series, oldest first.
	Candles(ctx context.Context, q CandleQuery) (*Candles, error)
	// StockInfo returns descriptive data about one stock.
	StockInfo(ctx context.Context, code Code) (*StockInfo, error)
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

// QuoteEach answers a [Source.Quotes] call with one quote call per code,
// for sources without a batch request: a business error
// ([IsBusinessError]: an unknown code) fails only its code (nil at its
// position, its entry in the returned *[BatchError]); any other error
// fails the call.
func QuoteEach(codes []Code, quote func(code Code) (*Quote, error)) ([]*Quote, error) {
	out := make([]*Quote, len(codes))
	var be *BatchError
	for i, c := range codes {
		q, err := quote(c)
		switch {
		case err == nil:
			out[i] = q
		case IsBusinessError(err):
			if be == nil {
				be = &BatchError{Errs: map[string]error{}}
			}
			be.Errs[c.String()] = err
		default:
			return nil, err
		}
	}
	if be != nil {
		return out, be
	}
	return out, nil
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

// Clone returns c sharing no memory with the string it was parsed from
// (a request's buffer, say), for keeping as a map key.
func (c Code) Clone() Code { return Code{strings.Clone(c.s)} }

// MustParseCode is [ParseCode] for codes known to be valid (constants,
// tests); it panics on a malformed code.
func MustParseCode(s string) Code {
	c, err := ParseCode(s)
	if err != nil {
		panic(err)
	}
	return c
}

// MustParseCodes is [MustParseCode] for each of ss.
func MustParseCodes(ss ...string) []Code {
	out := make([]Code, len(ss))
	for i, s := range ss {
		out[i] = MustParseCode(s)
	}
	return out
}

// CodeStrings returns the codes as written, in order: the keys of a
// [BatchError] and of string-keyed maps.
func CodeStrings(codes []Code) []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = c.s
	}
	return out
}

// UniqueCodes returns codes without repeats, keeping the first of each
// in order: a code is one registration and one row however often a
// caller names it. It never modifies codes.
func UniqueCodes(codes []Code) []Code {
	seen := make(map[Code]bool, len(codes))
	out := codes[:0:0]
	for _, c := range codes {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// validCode is the rule: a digit, then five digits or upper-case letters.
// A loop rather than a regular expression: every HTTP request parses its
// code and should not pay for a regexp match.
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

// ValidateCode is [ParseCode] for callers that keep the string: kis's
// public Client methods, which take codes from outside users, and
// validators of stored or upstream rows (ingest, the master files).
func ValidateCode(code string) error {
	_, err := ParseCode(code)
	return err
}
