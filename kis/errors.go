package kis

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kisfeed/kisfeed"
)

// Sentinel errors. An [*APIError] matches the sentinel its msg_cd stands
// for, so callers branch with errors.Is and never compare strings.
var (
	// ErrRateLimited is KIS's per-second limit (EGW00201). The client
	// retries it and slows down; it surfaces only when retries run out.
	ErrRateLimited = errors.New("kis: rate limit exceeded")
	// ErrTokenExpired is an expired or invalid access token (EGW00123,
	// EGW00121, EGW00122). The client refreshes once and replays; it
	// surfaces only when the fresh token is refused too.
	ErrTokenExpired = errors.New("kis: access token expired or invalid")
	// ErrInvalidCredentials is a rejected app key or secret (EGW00103,
	// EGW00105, EGW00102, EGW00104). Never retried: fix the configuration.
	ErrInvalidCredentials = errors.New("kis: invalid app key or secret")
	// ErrUnknownStock is a well-formed code KIS does not know. It also
	// matches [kisfeed.ErrNotFound].
	ErrUnknownStock = errors.New("kis: unknown stock code")
	// ErrTokenIssueTooSoon is KIS refusing a token issuance within a
	// minute of the previous one (EGW00133).
	ErrTokenIssueTooSoon = errors.New("kis: token issued too recently (at most one per minute)")
	// ErrQueueFull is returned without a request when more callers wait
	// for the rate limiter than [WithMaxQueue] allows.
	ErrQueueFull = errors.New("kis: request queue full")
	// ErrLimiterDeadline is a request that never left: waiting for a rate
	// slot (this client's pacer or the shared limiter) would end past the
	// caller's deadline, so the wait was refused at once. The upstream was
	// not asked; callers may serve a cached copy instead.
	ErrLimiterDeadline = errors.New("kis: rate-limit wait would exceed the deadline")
	// ErrUnsupported is an endpoint the server does not offer (the mock
	// server answers EGW00213 "모의투자 TR 이 아닙니다" for several TRs).
	ErrUnsupported = errors.New("kis: endpoint not supported by this server")
	// ErrMalformed is a response KIS accepted (rt_cd "0") holding a value
	// the client cannot read: a non-numeric number, a bad date, a JSON
	// type it does not expect. It is [kisfeed.ErrMalformed] itself, so
	// callers outside kis branch on the root sentinel. Every
	// [*MalformedError] matches it. It is never retried by the client (the
	// same answer would come back from a cache); callers decide, and on
	// batch calls it fails only its code.
	ErrMalformed = kisfeed.ErrMalformed
)

// MalformedError is one unreadable value in an otherwise successful
// response. The client keeps decoding strict (no silent zeros), so the
// value fails its row: the code's entry in a *[kisfeed.BatchError] for a
// batch call (intstock-multprice), the call itself for single-object
// endpoints. It is a [kisfeed.MalformedError] (Op holds the request's
// tr_id, e.g. FHKST11300006) with kis's own message; errors.As reaches
// the root type through Unwrap, so callers outside kis need not import
// it. It holds only response data, never a secret.
type MalformedError struct {
	kisfeed.MalformedError
}

// malformedAt builds a *MalformedError of request trID (empty when the
// caller fills it in later).
func malformedAt(trID, field, value, want string) *MalformedError {
	return &MalformedError{kisfeed.MalformedError{Op: trID, Field: field, Value: value, Want: want}}
}

// errPrefix starts an error message: "kis", then the tr_id when known.
func errPrefix(trID string) *strings.Builder {
	b := new(strings.Builder)
	b.WriteString("kis")
	if trID != "" {
		b.WriteString(" ")
		b.WriteString(trID)
	}
	return b
}

// maxMalformedValue bounds MalformedError.Value; Raw keeps the rest.
const maxMalformedValue = 64

// Error reads "kis <tr_id> stock <code>: <field>: "<value>" is not <want>",
// the value cut to 32 bytes.
func (e *MalformedError) Error() string {
	b := errPrefix(e.Op)
	if e.Code != "" {
		b.WriteString(" stock ")
		b.WriteString(e.Code)
	}
	want := e.Want
	if want == "" {
		want = "readable"
	}
	fmt.Fprintf(b, ": %s: %q is not %s", e.Field, shorten(e.Value, 32), want)
	return b.String()
}

// Unwrap returns the root [kisfeed.MalformedError] it is (the same
// value, not a copy), which matches [ErrMalformed].
func (e *MalformedError) Unwrap() error { return &e.MalformedError }

// shorten cuts s to n bytes (on a rune boundary) and marks the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// APIError is a failure KIS reported: an rt_cd other than "0" in any HTTP
// status, a tokenP error_code, or a non-JSON error page. It never holds the
// app secret or a token.
type APIError struct {
	HTTPStatus int
	RtCd       string // "1" error, "7" no data; "" for tokenP errors
	MsgCd      string // e.g. EGW00201; error_code for tokenP
	Msg1       string // message, trailing spaces trimmed
	TrID       string // the tr_id of the request, or the oauth path
}

func (e *APIError) Error() string {
	b := errPrefix(e.TrID)
	fmt.Fprintf(b, ": http %d", e.HTTPStatus)
	if e.RtCd != "" {
		fmt.Fprintf(b, " rt_cd %s", e.RtCd)
	}
	if e.MsgCd != "" {
		fmt.Fprintf(b, " %s", e.MsgCd)
	}
	if e.Msg1 != "" {
		fmt.Fprintf(b, " %q", e.Msg1)
	}
	return b.String()
}

// Is maps KIS message codes to the package sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRateLimited:
		return e.MsgCd == "EGW00201"
	case ErrTokenExpired:
		return e.MsgCd == "EGW00123" || e.MsgCd == "EGW00121" || e.MsgCd == "EGW00122"
	case ErrInvalidCredentials:
		switch e.MsgCd {
		case "EGW00103", "EGW00105", "EGW00102", "EGW00104":
			return true
		}
	case ErrTokenIssueTooSoon:
		return e.MsgCd == "EGW00133"
	case ErrUnknownStock, kisfeed.ErrNotFound:
		// rt_cd "7" is KIS's "no data found" (python-kis info.py).
		return e.RtCd == "7"
	case ErrUnsupported:
		return e.MsgCd == "EGW00213" || strings.Contains(e.Msg1, "모의투자 TR")
	}
	return false
}

// retryable reports whether KIS says "try again": gateway/transient
// codes, the rate limit, and 5xx answers that are not a known permanent
// refusal.
func (e *APIError) retryable() bool {
	switch e.MsgCd {
	case "EGW00201", "EGW00001", "EGW00002", "EGW00202", "EGW00203", "EGW00300",
		"OPSQ0001", "OPSQ0010", "OPSQ0011", "OPSQ1002", "OPSQ2003",
		"OPSQ3001", "OPSQ3002", "OPSQ3003", "OPSQ3004":
		return true
	}
	if e.HTTPStatus < 500 || e.permanent() {
		return false
	}
	return true
}

// permanent reports codes that no retry will fix even when they arrive
// with HTTP 500 (KIS sends most gateway errors that way).
func (e *APIError) permanent() bool {
	if e.Is(ErrUnsupported) || e.Is(ErrInvalidCredentials) || e.Is(ErrTokenExpired) ||
		e.Is(ErrTokenIssueTooSoon) || e.RtCd == "7" {
		return true
	}
	switch e.MsgCd {
	case "EGW00101", "EGW00205", "EGW00206", "EGW00207", "EGW00208",
		"OPSQ2000", "OPSQ2001", "OPSQ2002",
		"OPSQ9995", "OPSQ9996", "OPSQ9997", "OPSQ9998", "OPSQ9999":
		return true
	}
	return false
}

// notFound wraps ErrUnknownStock (and so kisfeed.ErrNotFound) for code.
func notFound(code string) error {
	return fmt.Errorf("stock %s: %w", code, unknownStockError{})
}

// unknownStockError matches both ErrUnknownStock and kisfeed.ErrNotFound.
type unknownStockError struct{}

func (unknownStockError) Error() string { return ErrUnknownStock.Error() }
func (unknownStockError) Is(target error) bool {
	return target == ErrUnknownStock || target == kisfeed.ErrNotFound
}
