package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

func (j *job) fetch(ctx context.Context, u unit) result {
	if ctx.Err() != nil {
		return result{codes: u.codes, pending: true}
	}
	j.calls.Add(1)
	if u.candles {
		return j.fetchCandles(ctx, u.codes[0])
	}
	return j.fetchQuotes(ctx, u.codes)
}

// fetchErr sorts a failed call: cancelled (pending) or a failure of codes.
func fetchErr(ctx context.Context, r *result, codes []string, err error) result {
	if ctx.Err() != nil {
		r.pending = true
		return *r
	}
	for _, c := range codes {
		r.fail(c, err)
	}
	return *r
}

func sourceLabel(m kisfeed.Meta, path Path) string {
	src := m.Source
	if src == "" {
		src = "unknown"
	}
	return src + "/" + string(path)
}

func (j *job) fetchQuotes(ctx context.Context, codes []string) result {
	r := result{codes: codes}
	parsed := make([]kisfeed.Code, len(codes))
	for i, c := range codes {
		parsed[i] = j.codes[c]
	}
	qs, err := j.in.Source.Quotes(ctx, parsed)
	var be *kisfeed.BatchError
	now := j.in.now()
	if err != nil && !errors.As(err, &be) {
		// An unreadable answer that names its code is that code's
		// rejected bar; the others of the call failed with it.
		if me := malformed(err); me != nil && slices.Contains(codes, me.Code) && ctx.Err() == nil {
			r.fetched++
			r.malformed++
			r.rejects = append(r.rejects, j.rejectMalformed(me.Code, j.from, me, now))
			codes = slices.DeleteFunc(slices.Clone(codes), func(c string) bool { return c == me.Code })
		}
		return fetchErr(ctx, &r, codes, fmt.Errorf("quotes: %w", err))
	}
	for i, code := range codes {
		if be != nil {
			if e, ok := be.Errs[code]; ok {
				// A row KIS sent but the client could not read is a bar
				// that failed validation upstream of ours: rejected, with
				// the raw row, not a failed fetch.
				if me := malformed(e); me != nil {
					r.fetched++
					r.malformed++
					r.rejects = append(r.rejects, j.rejectMalformed(code, j.from, me, now))
					continue
				}
				r.fail(code, e)
				continue
			}
		}
		var q *kisfeed.Quote
		if i < len(qs) {
			q = qs[i]
		}
		if q == nil {
			r.fail(code, fmt.Errorf("quotes: no quote returned for %s", code))
			continue
		}
		r.fetched++
		payload, _ := json.Marshal(q)
		bar := kisfeed.DailyBar{
			Code: code, Date: j.from, Open: q.Open, High: q.High, Low: q.Low, Close: q.Price,
			Volume: q.Volume, Value: q.TradingValue, Source: sourceLabel(q.Meta, PathQuotes), FetchedAt: now,
		}
		reason := ""
		switch {
		case q.Code != "" && q.Code != code:
			reason = fmt.Sprintf("quote for %s answered the request for %s", q.Code, code)
		case !q.Meta.AsOf.IsZero() && q.Meta.AsOf.Before(krx.CloseTime(j.from)):
			// A snapshot from before the close (a cache that outlived
			// it, a clock gone wrong) is not the day's bar.
			reason = fmt.Sprintf("quote as of %s precedes the close of %s", q.Meta.AsOf.In(kisfeed.KST).Format(time.DateTime),
				j.from.Format(time.DateOnly))
		default:
			// Limit reference: the stored, validated close of the day
			// before; without one, the quote's own previous close.
			ref := j.prevClose[code]
			if ref == 0 && q.PrevClose > 0 {
				ref = q.PrevClose
			}
			reason = j.v.check(bar, ref)
		}
		if reason != "" {
			r.rejects = append(r.rejects, j.reject(code, j.from, reason, payload, now))
			continue
		}
		r.bars = append(r.bars, bar)
	}
	return r
}

func (j *job) reject(code string, day time.Time, reason string, payload []byte, now time.Time) kisfeed.RejectedBar {
	return kisfeed.RejectedBar{RunID: j.runID, Code: code, Date: day, Reason: reason, Payload: payload, CreatedAt: now}
}

// malformed returns the *kisfeed.MalformedError in err: a value the
// upstream sent that the client could not read (nil when err is anything
// else). Adapters wrap the root type (kis's own error unwraps to it), so
// ingest need not know which one answered.
func malformed(err error) *kisfeed.MalformedError {
	var me *kisfeed.MalformedError
	if errors.As(err, &me) {
		return me
	}
	return nil
}

// rejectMalformed records an unreadable upstream value as a rejected bar
// of code on day: the reason names the field and the value, the payload
// is the raw row (or, when that is not JSON, what the error knows).
func (j *job) rejectMalformed(code string, day time.Time, me *kisfeed.MalformedError, now time.Time) kisfeed.RejectedBar {
	payload := []byte(me.Raw)
	if len(payload) == 0 || !json.Valid(payload) {
		payload, _ = json.Marshal(struct {
			TrID  string `json:"tr_id"`
			Field string `json:"field"`
			Value string `json:"value"`
		}{me.Op, me.Field, me.Value})
	}
	return j.reject(code, day, fmt.Sprintf("malformed upstream field %s: %q", me.Field, me.Value), payload, now)
}

// malformedDay is the trading day of an unreadable daily-chart row: its
// stck_bsop_date when that reads, else fallback.
func malformedDay(me *kisfeed.MalformedError, fallback time.Time) time.Time {
	var row struct {
		Date string `json:"stck_bsop_date"`
	}
	if json.Unmarshal(me.Raw, &row) != nil {
		return fallback
	}
	d, err := time.ParseInLocation("20060102", strings.TrimSpace(row.Date), kisfeed.KST)
	if err != nil {
		return fallback
	}
	return d
}

// candlePayload is the raw JSON kept for a rejected daily-chart bar.
type candlePayload struct {
	Code     string         `json:"code"`
	Interval string         `json:"interval"`
	Bar      kisfeed.Candle `json:"bar"`
	Meta     kisfeed.Meta   `json:"meta"`
}

func (j *job) fetchCandles(ctx context.Context, code string) result {
	r := result{codes: []string{code}}
	// Ask from the trading day before the window: that bar is the limit
	// reference of the first one and costs no extra call (≤100 rows a
	// page). Unadjusted prices are what traded, as a quote shows them, so
	// both paths store the same numbers and the tick rule holds.
	from := j.lookback
	if j.widen {
		from = krx.PrevTradingDay(from) // a retry: not the cached question
	}
	cs, err := j.in.Source.Candles(ctx, kisfeed.CandleQuery{
		Code: j.codes[code], Interval: kisfeed.IntervalDay, From: from, To: j.to, Unadjusted: true,
	})
	now := j.in.now()
	if me := malformed(err); me != nil && ctx.Err() == nil {
		// The chart held an unreadable row: that bar is rejected (on its
		// own date when it reads, else the window's last day); the rest
		// of the series comes with the retry.
		r.fetched++
		r.malformed++
		r.rejects = append(r.rejects, j.rejectMalformed(code, malformedDay(me, j.to), me, now))
		return r
	}
	if err != nil {
		return fetchErr(ctx, &r, r.codes, fmt.Errorf("candles: %w", err))
	}
	bars := slices.Clone(cs.Bars)
	sort.SliceStable(bars, func(a, b int) bool { return bars[a].Time.Before(bars[b].Time) })
	label := sourceLabel(cs.Meta, PathCandles)
	var ref int64
	for _, c := range bars {
		day := kisfeed.Day(c.Time)
		bar := kisfeed.DailyBar{
			Code: code, Date: day, Open: c.Open, High: c.High, Low: c.Low, Close: c.Close,
			Volume: c.Volume, Value: c.Value, Source: label, FetchedAt: now,
		}
		if cs.Code != "" && cs.Code != code {
			bar.Code = cs.Code
		}
		if day.Before(j.from) || day.After(j.to) {
			// Outside the window: the lookback bar is only a reference,
			// and only when it is sound itself.
			if day.Before(j.from) {
				ref = 0
				if j.v.check(bar, 0) == "" {
					ref = bar.Close
				}
			}
			continue
		}
		r.fetched++
		if reason := j.v.check(bar, ref); reason != "" {
			payload, _ := json.Marshal(candlePayload{Code: cs.Code, Interval: string(cs.Interval), Bar: c, Meta: cs.Meta})
			r.rejects = append(r.rejects, j.reject(code, day, reason, payload, now))
			ref = 0 // a rejected close is no reference for the next day
			continue
		}
		ref = bar.Close
		r.bars = append(r.bars, bar)
	}
	return r
}
