package fanout

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/access"
)

// StreamParams are a GET /v1/stream request's parameters, validated.
type StreamParams struct {
	Codes       []kisfeed.Code
	Kinds       Kinds
	LastEventID *ID
}

// ParseStreamRequest validates a GET /v1/stream request: the query holds
// codes (1 to MaxCodes, comma-separated, repeatable) and optionally kinds
// (trade, book); the Last-Event-ID header, when sent, is an event id. The
// error is a *ParamError naming the parameter (status 400).
func ParseStreamRequest(r *http.Request) (StreamParams, error) {
	var p StreamParams
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return p, &ParamError{Param: "query", Detail: "the query string does not parse"}
	}
	for k := range q {
		if k != "codes" && k != "kinds" {
			return p, &ParamError{Param: clip(k), Detail: "unknown parameter: want codes and kinds"}
		}
	}
	if p.Codes, err = ParseCodes(q["codes"]); err != nil {
		return p, err
	}
	if len(p.Codes) == 0 {
		return p, &ParamError{Param: "codes", Detail: fmt.Sprintf("want 1 to %d comma-separated codes, like codes=005930,000660", MaxCodes)}
	}
	if p.Kinds, err = ParseKinds(strings.Join(q["kinds"], ",")); err != nil {
		return p, err
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		id, err := ParseID(v)
		if err != nil {
			return p, &ParamError{Param: "Last-Event-ID", Detail: trimInvalid(err)}
		}
		p.LastEventID = &id
	}
	return p, nil
}

// ParseCodes reads codes from comma-separated lists: each a
// kisfeed.ParseCode code, at most MaxCodes distinct ones (duplicates are
// dropped). The error is a *ParamError for param "codes".
func ParseCodes(lists []string) ([]kisfeed.Code, error) {
	var out []kisfeed.Code
	seen := map[string]bool{}
	for _, list := range lists {
		for s := range strings.SplitSeq(list, ",") {
			s = strings.TrimSpace(s)
			if seen[s] {
				continue
			}
			if len(seen) == MaxCodes {
				return nil, &ParamError{Param: "codes", Detail: fmt.Sprintf("more than %d codes: a stream carries at most %d", MaxCodes, MaxCodes)}
			}
			code, err := kisfeed.ParseCode(s)
			if err != nil {
				return nil, &ParamError{Param: "codes", Detail: trimInvalid(err)}
			}
			seen[s] = true
			out = append(out, code)
		}
	}
	return out, nil
}

// trimInvalid drops the "invalid argument: " prefix of ErrInvalid's
// wrapping, as internal/httpapi's problems do.
func trimInvalid(err error) string {
	return strings.TrimPrefix(err.Error(), kisfeed.ErrInvalid.Error()+": ")
}

// problem is the RFC 9457 problem object of internal/httpapi (problem.go):
// the same fields and type URIs ("/problems/invalid-parameter"), written
// here because fanout must not import httpapi, which mounts these
// handlers; the stream routes' 400s look like every other route's.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Param    string `json:"param,omitempty"`
}

// writeProblem answers with err as a problem: a *ParamError is a 400
// naming the parameter, anything else a 503 (the hub is closed).
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	p := problem{Type: "/problems/upstream-unavailable", Title: "Upstream unavailable",
		Status: http.StatusServiceUnavailable, Detail: "the stream is not available; retry later", Instance: r.URL.Path}
	var pe *ParamError
	if errors.As(err, &pe) {
		p = problem{Type: "/problems/invalid-parameter", Title: "Invalid parameter", Status: http.StatusBadRequest,
			Detail: pe.Error(), Param: pe.Param, Instance: r.URL.Path}
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// quotaOf is the request's API key as a StreamQuota, nil without one.
// internal/httpapi authenticates (Authorization: Bearer, or the
// kisfeed_key cookie on the stream routes) and puts the key in the
// context; see access.NewContext.
func quotaOf(r *http.Request) StreamQuota {
	if p := access.FromContext(r.Context()); p != nil {
		return p
	}
	return nil
}
