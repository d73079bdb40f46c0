package kis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
)

// maxBody bounds how much of a response the client reads.
const maxBody = 16 << 20

// Request is one KIS call, rebuilt into an *http.Request for each attempt.
type Request struct {
	Method string     // GET for quotations, POST for oauth
	Path   string     // e.g. /uapi/domestic-stock/v1/quotations/inquire-price
	TrID   string     // tr_id header; oauth calls use a label ("tokenP")
	TrCont string     // tr_cont request header: "" first page, "N" next
	Query  url.Values // query parameters (UPPERCASE keys)

	body   []byte // JSON body for POST
	noAuth bool   // oauth calls carry no token
}

// NewRequest builds a GET request for a quotation path relative to the
// base URL.
func (c *Client) NewRequest(path, trID string, query url.Values) *Request {
	return &Request{Method: http.MethodGet, Path: path, TrID: trID, Query: query}
}

// Response is a KIS response: the *http.Response (body already read and
// closed) plus the continuation header and the message fields.
type Response struct {
	*http.Response
	// TrCont is the tr_cont response header: "F" or "M" when another
	// page follows, "D" or "E" (or empty) on the last page.
	TrCont string
	MsgCd  string
	Msg1   string
}

// More reports whether the server said another page follows.
func (r *Response) More() bool {
	return r != nil && (r.TrCont == "F" || r.TrCont == "M")
}

// envelope is the part every KIS body shares (data calls and tokenP).
type envelope struct {
	RtCd             string `json:"rt_cd"`
	MsgCd            string `json:"msg_cd"`
	Msg1             string `json:"msg1"`
	ErrorCode        string `json:"error_code"`
	ErrorDescription string `json:"error_description"`
}

func (e *envelope) env() *envelope { return e }

type enveloper interface{ env() *envelope }

type trIDKey struct{}

// Do sends req with the rate limiter, token, retries and error checks, and
// decodes the JSON body into v (which may be nil). The error is an
// [*APIError] for anything KIS refused, wrapped with the attempt count
// when retries ran out or the [RetryGate] stopped them.
func (c *Client) Do(ctx context.Context, req *Request, v any) (*Response, error) {
	ctx = context.WithValue(ctx, trIDKey{}, req.TrID)
	attempts := 0
	var last *Response
	var lastErr error
	resp, err := failsafe.With[*Response](c.retry).WithContext(ctx).GetWithExecution(
		func(e failsafe.Execution[*Response]) (*Response, error) {
			actx := e.Context()
			if attempts > 0 && c.gate != nil && !c.gate.RetryAllowed(actx) {
				// The gate closed during the backoff.
				return last, retryStopped{lastErr}
			}
			attempts++
			resp, err := c.attempt(actx, req, v)
			last, lastErr = resp, err
			if err != nil && c.gate != nil && attempts < c.attempts && retryable(err) && actx.Err() == nil {
				// Reported before the backoff, so a breaker this failure
				// opens stops this very call's retries too.
				c.gate.AttemptFailed(actx, req.TrID, err)
				if !c.gate.RetryAllowed(actx) {
					return resp, retryStopped{err}
				}
			}
			return resp, err
		})
	var stopped retryStopped
	if errors.As(err, &stopped) {
		err = stopped.err
		if attempts == 1 {
			return resp, fmt.Errorf("%s: retries stopped: %w", req.TrID, err)
		}
		return resp, fmt.Errorf("%s: after %d attempts (retries stopped): %w", req.TrID, attempts, err)
	}
	if err != nil && attempts > 1 {
		err = fmt.Errorf("%s: after %d attempts: %w", req.TrID, attempts, err)
	}
	return resp, err
}

// retryStopped carries the last attempt's error when the [RetryGate]
// refused a retry; the retry policy never retries it.
type retryStopped struct{ err error }

func (e retryStopped) Error() string { return e.err.Error() }
func (e retryStopped) Unwrap() error { return e.err }

// attempt is one try: token, send, and on an expired-token answer one
// refresh and replay (not counted as a retry).
func (c *Client) attempt(ctx context.Context, req *Request, v any) (*Response, error) {
	var tok *Token
	if !req.noAuth {
		var err error
		if tok, err = c.Token(ctx); err != nil {
			return nil, tokenFailure{err}
		}
	}
	resp, err := c.send(ctx, req, tok, v)
	if tok != nil && errors.Is(err, ErrTokenExpired) {
		c.log.Debug("kis: token refused; refreshing and replaying", "tr_id", req.TrID, "msg_cd", msgCode(err))
		if tok, err = c.refresh(ctx, tok); err != nil {
			return nil, tokenFailure{err}
		}
		resp, err = c.send(ctx, req, tok, v)
	}
	return resp, err
}

// tokenFailure marks a failure to obtain a token; the token path has its
// own retries, so the data call does not retry it again.
type tokenFailure struct{ err error }

func (e tokenFailure) Error() string { return "get access token: " + e.err.Error() }
func (e tokenFailure) Unwrap() error { return e.err }

// limiterError marks a limiter refusal with [ErrLimiterDeadline] when the
// caller's context is still live: x/time/rate (and the shared limiter)
// refuse at once a wait that would end past the deadline, with an error
// that has no sentinel of its own. A cancelled or expired context and a
// full queue keep their own errors.
func limiterError(ctx context.Context, err error) error {
	if errors.Is(err, ErrLimiterDeadline) {
		return err
	}
	if ctx.Err() != nil || errors.Is(err, ErrQueueFull) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		return err
	}
	return fmt.Errorf("%w: %w", ErrLimiterDeadline, err)
}

// sharedWait waits on the shared limiter with a deadline moved earlier by
// the pacer's service-time estimate, so that the shared limiter too grants
// a slot only to a request that can still be answered in time; its refusal
// then means "no time", not "the caller gave up", and is reported as
// [ErrLimiterDeadline]. Only this client's estimate knows how long an
// answer takes, hence the shortened context rather than a new method on
// [Limiter].
func (c *Client) sharedWait(ctx context.Context) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return c.shared.Wait(ctx)
	}
	sctx, cancel := context.WithDeadline(ctx, dl.Add(-c.pacer.service()))
	defer cancel()
	err := c.shared.Wait(sctx)
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrLimiterDeadline, err)
	}
	return err
}

// send waits on the limiters and performs one HTTP exchange.
func (c *Client) send(ctx context.Context, req *Request, tok *Token, v any) (*Response, error) {
	waited, err := c.pacer.wait(ctx)
	c.limiterWait.Add(int64(waited))
	c.observer.LimiterWait(waited)
	if err != nil {
		return nil, fmt.Errorf("%s: rate limiter: %w", req.TrID, limiterError(ctx, err))
	}
	if c.shared != nil {
		if err := c.sharedWait(ctx); err != nil {
			return nil, fmt.Errorf("%s: shared rate limiter: %w", req.TrID, limiterError(ctx, err))
		}
	}
	u := c.baseURL.JoinPath(req.Path)
	if len(req.Query) > 0 {
		u.RawQuery = req.Query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", req.TrID, err)
	}
	h := hr.Header
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	if !req.noAuth {
		h["Authorization"] = []string{"Bearer " + tok.Value}
		h["Appkey"] = []string{c.appKey}
		h["Appsecret"] = []string{c.appSecret}
		h["Tr_id"] = []string{req.TrID}
		h["Custtype"] = []string{"P"}
		h["Tr_cont"] = []string{req.TrCont}
	}
	start := time.Now()
	res, err := c.http.Do(hr)
	c.requests.Add(1)
	if err != nil {
		c.observer.Request(req.TrID, 0, "", time.Since(start), err)
		return nil, fmt.Errorf("%s: %w", req.TrID, err)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	res.Body.Close()
	if err == nil {
		// Only complete answers feed the estimate: a timeout or a reset
		// says nothing about how long an answer takes.
		c.pacer.observe(time.Since(start))
	}
	resp := &Response{Response: res, TrCont: strings.TrimSpace(res.Header.Get("tr_cont"))}
	if err != nil {
		c.observer.Request(req.TrID, res.StatusCode, "", time.Since(start), err)
		return resp, fmt.Errorf("%s: read body: %w", req.TrID, err)
	}
	err = c.check(req, res.StatusCode, b, v, resp)
	c.observer.Request(req.TrID, res.StatusCode, resp.MsgCd, time.Since(start), err)
	if errors.Is(err, ErrRateLimited) {
		c.rateLimited.Add(1)
		c.pacer.rateLimited()
	}
	return resp, err
}

// check decodes b into v and turns any failure KIS reports into an
// *APIError. KIS fails inside HTTP 200 too (rt_cd != "0"), and sends most
// gateway errors as HTTP 500 with a normal body, so the body is always
// parsed first.
func (c *Client) check(req *Request, status int, b []byte, v any, resp *Response) error {
	var env *envelope
	var decodeErr error
	if e, ok := v.(enveloper); ok {
		decodeErr = json.Unmarshal(b, v)
		env = e.env()
	} else {
		env = &envelope{}
		if decodeErr = json.Unmarshal(b, env); decodeErr == nil && v != nil {
			decodeErr = json.Unmarshal(b, v)
		}
	}
	resp.MsgCd = strings.TrimSpace(env.MsgCd)
	resp.Msg1 = strings.TrimSpace(env.Msg1)
	if env.ErrorCode != "" {
		resp.MsgCd = strings.TrimSpace(env.ErrorCode)
		resp.Msg1 = strings.TrimSpace(env.ErrorDescription)
	}
	var syntax *json.SyntaxError
	if decodeErr != nil && (errors.As(decodeErr, &syntax) || !json.Valid(b)) {
		// Not JSON at all: a proxy error page, an empty 502.
		if status >= 400 || status < 200 {
			return &APIError{HTTPStatus: status, TrID: req.TrID, Msg1: snippet(c.redact(string(b)))}
		}
		return fmt.Errorf("%s: decode response: body is not JSON (%d bytes)", req.TrID, len(b))
	}
	failed := (env.RtCd != "" && env.RtCd != "0") || env.ErrorCode != "" || status >= 400 || status < 200
	if failed {
		return &APIError{
			HTTPStatus: status,
			RtCd:       strings.TrimSpace(env.RtCd),
			MsgCd:      resp.MsgCd,
			Msg1:       c.redact(resp.Msg1),
			TrID:       req.TrID,
		}
	}
	if decodeErr != nil {
		// A JSON type KIS never sends (a number for a string field): a
		// malformed value, reported like an unreadable number.
		if me := typeMismatch(req.TrID, b, decodeErr); me != nil {
			return me
		}
		return fmt.Errorf("%s: decode response: %w", req.TrID, decodeErr)
	}
	return nil
}

// snippet shortens a non-JSON error body for an error message.
func snippet(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// newRetryPolicy retries the transient failures: EGW00201, HTTP 5xx that
// are not permanent refusals, timeouts and connection resets; never
// business errors.
func (c *Client) newRetryPolicy(base, maxDelay time.Duration) retrypolicy.RetryPolicy[*Response] {
	return retrypolicy.NewBuilder[*Response]().
		HandleIf(func(_ *Response, err error) bool { return err != nil && retryable(err) }).
		WithMaxAttempts(c.attempts).
		WithBackoff(base, maxDelay).
		WithJitterFactor(0.25).
		ReturnLastFailure().
		OnRetryScheduled(func(e failsafe.ExecutionScheduledEvent[*Response]) {
			trID, _ := e.Context().Value(trIDKey{}).(string)
			reason := retryReason(e.LastError())
			c.retries.Add(1)
			c.observer.Retry(trID, reason)
			c.log.Debug("kis: retrying", "tr_id", trID, "msg_cd", msgCode(e.LastError()),
				"reason", reason, "attempt", e.Attempts(), "delay", e.Delay)
		}).
		Build()
}

// retryable classifies an attempt's error.
func retryable(err error) bool {
	var tf tokenFailure
	var rs retryStopped
	if errors.As(err, &rs) || errors.As(err, &tf) || errors.Is(err, ErrQueueFull) || errors.Is(err, context.Canceled) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.retryable()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// retryReason is a short label for logs and metrics.
func retryReason(err error) string {
	var ae *APIError
	switch {
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.As(err, &ae):
		return fmt.Sprintf("http_%d", ae.HTTPStatus)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "connection"
}

// msgCode returns the KIS msg_cd inside err, or "".
func msgCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.MsgCd
	}
	return ""
}
