package httpapi

import (
	"net/url"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Limits on request input.
const (
	// MaxBatch is the most codes one /v1/quotes call may ask for.
	MaxBatch = 100
	// MaxQueryBytes caps the raw query string; longer ones get 414.
	MaxQueryBytes = 4096
)

// Dates outside [minDate, maxDate] are refused as absurd: KRX opened in
// 1956 and nothing here plans beyond this century.
var (
	minDate = kisfeed.Date(1956, time.January, 1)
	maxDate = kisfeed.Date(2100, time.December, 31)
)

// parseCode parses the {code} path value: the one check of the code on
// an HTTP request's way in.
func parseCode(raw string) (kisfeed.Code, error) {
	c, err := kisfeed.ParseCode(raw)
	if err != nil {
		return kisfeed.Code{}, codeParam("code", err)
	}
	return c, nil
}

// parseDate parses a YYYY-MM-DD calendar day in KST.
func parseDate(param, raw string) (time.Time, error) {
	t, err := time.ParseInLocation(time.DateOnly, raw, kisfeed.KST)
	if err != nil {
		return time.Time{}, badParam(param, "%s %q: want a calendar date like 2024-01-31 (YYYY-MM-DD)", param, truncate(raw))
	}
	if t.Before(minDate) || t.After(maxDate) {
		return time.Time{}, badParam(param, "%s %s: want a date between %s and %s", param, raw,
			minDate.Format(time.DateOnly), maxDate.Format(time.DateOnly))
	}
	return t, nil
}

// checkParams refuses query parameters the route does not know, so a typo
// ("intervall") fails loudly instead of silently falling back to a default.
func checkParams(q url.Values, allowed ...string) error {
	for k, v := range q {
		known := false
		for _, a := range allowed {
			if k == a {
				known = true
				break
			}
		}
		if !known {
			shown := truncate(k)
			if len(allowed) == 0 {
				return badParam(shown, "unknown query parameter %q: this route takes none", shown)
			}
			return badParam(shown, "unknown query parameter %q: want %s", shown, strings.Join(allowed, ", "))
		}
		if len(v) > 1 && k != "codes" {
			return badParam(k, "query parameter %q given %d times: want it once", k, len(v))
		}
	}
	return nil
}

// candleParams parses the candles query for the day now (KST).
func candleParams(code kisfeed.Code, q url.Values, now time.Time) (kisfeed.CandleQuery, error) {
	if err := checkParams(q, "interval", "from", "to", "adjusted"); err != nil {
		return kisfeed.CandleQuery{}, err
	}
	cq := kisfeed.CandleQuery{Code: code, Interval: kisfeed.IntervalDay}
	if raw := q.Get("interval"); raw != "" {
		switch kisfeed.Interval(raw) {
		case kisfeed.IntervalDay, kisfeed.IntervalWeek, kisfeed.IntervalMonth, kisfeed.IntervalMinute:
			cq.Interval = kisfeed.Interval(raw)
		default:
			return cq, badParam("interval", "interval %q: want day, week, month or minute", truncate(raw))
		}
	}
	var err error
	if raw := q.Get("from"); raw != "" {
		if cq.From, err = parseDate("from", raw); err != nil {
			return cq, err
		}
	}
	if raw := q.Get("to"); raw != "" {
		if cq.To, err = parseDate("to", raw); err != nil {
			return cq, err
		}
	}
	switch raw := q.Get("adjusted"); raw {
	case "", "true", "1":
	case "false", "0":
		cq.Unadjusted = true
	default:
		return cq, badParam("adjusted", "adjusted %q: want true or false", truncate(raw))
	}
	today := kisfeed.Day(now)
	if cq.Interval == kisfeed.IntervalMinute {
		// Minute candles cover one trading day, named by from; to may
		// repeat it but cannot widen the range.
		if cq.From.IsZero() {
			cq.From = today
		}
		if !cq.To.IsZero() && !cq.To.Equal(cq.From) {
			return cq, badParam("to", "to %s: minute candles cover one day; omit to or set it equal to from (%s)",
				cq.To.Format(time.DateOnly), cq.From.Format(time.DateOnly))
		}
		cq.To = cq.From
		return cq, nil
	}
	if cq.To.IsZero() {
		cq.To = today
	}
	if cq.From.IsZero() {
		switch cq.Interval {
		case kisfeed.IntervalWeek:
			cq.From = cq.To.AddDate(-1, 0, 0)
		case kisfeed.IntervalMonth:
			cq.From = cq.To.AddDate(-5, 0, 0)
		default:
			cq.From = cq.To.AddDate(0, -3, 0)
		}
		if cq.From.Before(minDate) {
			cq.From = minDate
		}
	}
	if cq.From.After(cq.To) {
		return cq, badParam("from", "from %s is after to %s: want from <= to",
			cq.From.Format(time.DateOnly), cq.To.Format(time.DateOnly))
	}
	return cq, nil
}

// batchCodes parses the codes of /v1/quotes: comma separated, possibly
// repeated (codes=a,b&codes=c), blanks skipped, duplicates dropped, order
// kept. Each is parsed once: the good ones are in valid, in order, and
// the malformed ones in invalid (all still lists every code, in order),
// so the batch still serves the good ones.
func batchCodes(q url.Values) (all []string, valid []kisfeed.Code, invalid map[string]error, err error) {
	if err := checkParams(q, "codes"); err != nil {
		return nil, nil, nil, err
	}
	raw := q["codes"]
	if len(raw) == 0 {
		return nil, nil, nil, badParam("codes", "codes is required: want up to %d comma-separated codes like 005930,000660", MaxBatch)
	}
	seen := map[string]bool{}
	for _, v := range raw {
		for c := range strings.SplitSeq(v, ",") {
			c = strings.TrimSpace(c)
			if c == "" || seen[c] {
				continue
			}
			seen[c] = true
			all = append(all, c)
			if len(all) > MaxBatch {
				return nil, nil, nil, badParam("codes", "more than %d codes: want at most %d per request", MaxBatch, MaxBatch)
			}
		}
	}
	if len(all) == 0 {
		return nil, nil, nil, badParam("codes", "codes is empty: want up to %d comma-separated codes like 005930,000660", MaxBatch)
	}
	for _, c := range all {
		code, err := kisfeed.ParseCode(c)
		if err != nil {
			if invalid == nil {
				invalid = map[string]error{}
			}
			invalid[c] = err
			continue
		}
		valid = append(valid, code)
	}
	return all, valid, invalid, nil
}

// truncate shortens user input echoed in messages.
func truncate(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
