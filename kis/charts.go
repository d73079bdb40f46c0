package kis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Period is the bar period of [Client.DailyCandles].
type Period string

// The periods inquire-daily-itemchartprice serves.
const (
	PeriodDay   Period = "D"
	PeriodWeek  Period = "W"
	PeriodMonth Period = "M"
)

// Paging limits (REFERENCE §d.3–d.5).
const (
	dailyPageRows = 100
	maxPages      = 1000 // a guard against a server that never stops paging
)

type chartOutput1 struct {
	StckPrpr string `json:"stck_prpr"`
	Name     string `json:"hts_kor_isnm"`
}

type chartRow struct {
	Date  string `json:"stck_bsop_date"`
	Hour  string `json:"stck_cntg_hour"`
	Close string `json:"stck_clpr"`
	Price string `json:"stck_prpr"` // minute rows carry the close here
	Open  string `json:"stck_oprc"`
	High  string `json:"stck_hgpr"`
	Low   string `json:"stck_lwpr"`
	Vol   string `json:"acml_vol"`
	CVol  string `json:"cntg_vol"`
	Value string `json:"acml_tr_pbmn"`
}

type chartResponse struct {
	envelope
	Output1 *chartOutput1 `json:"output1"`
	// Output2 rows are decoded one by one (decodeObject) so an unexpected
	// JSON type names its row and keeps it as Raw.
	Output2 []json.RawMessage `json:"output2"`
}

// row decodes output2[n]; a nil row is KIS's padding.
func (r *chartResponse) row(trID string, n int) (*chartRow, error) {
	var row *chartRow
	if err := decodeObject(trID, "output2["+strconv.Itoa(n)+"]", r.Output2[n], &row); err != nil {
		return nil, err
	}
	return row, nil
}

// DailyCandles returns day, week or month bars of code for the KST days
// [from, to], oldest first, paging transparently past the 100-row cap of
// inquire-daily-itemchartprice. adjusted selects split-adjusted prices.
// A malformed code fails before any request (wrapping [kisfeed.ErrInvalid]).
func (c *Client) DailyCandles(ctx context.Context, code string, period Period, from, to time.Time, adjusted bool) ([]kisfeed.Candle, error) {
	kc, err := kisfeed.ParseCode(code)
	if err != nil {
		return nil, err
	}
	return c.dailyCandles(ctx, kc, period, from, to, adjusted)
}

// dailyCandles is [Client.DailyCandles] for a parsed code.
func (c *Client) dailyCandles(ctx context.Context, kc kisfeed.Code, period Period, from, to time.Time, adjusted bool) ([]kisfeed.Candle, error) {
	code := kc.String()
	switch period {
	case PeriodDay, PeriodWeek, PeriodMonth:
	default:
		return nil, fmt.Errorf("%w: period %q: want D, W or M", kisfeed.ErrInvalid, period)
	}
	from, to = kisfeed.Day(from), kisfeed.Day(to)
	if to.Before(from) {
		return nil, fmt.Errorf("%w: date range %s..%s: want from <= to", kisfeed.ErrInvalid, ymd(from), ymd(to))
	}
	adj := "1"
	if adjusted {
		adj = "0" // 0 = 수정주가 on this TR (R-llm, R-pm, S-spec agree)
	}
	seen := map[int64]bool{}
	var bars []kisfeed.Candle
	end := to
	for page := 0; page < maxPages && !end.Before(from); page++ {
		q := url.Values{
			"FID_COND_MRKT_DIV_CODE": {"J"},
			"FID_INPUT_ISCD":         {code},
			"FID_INPUT_DATE_1":       {ymd(from)},
			"FID_INPUT_DATE_2":       {ymd(end)},
			"FID_PERIOD_DIV_CODE":    {string(period)},
			"FID_ORG_ADJ_PRC":        {adj},
		}
		var res chartResponse
		if _, err := c.Do(ctx, c.NewRequest(pathDailyChart, TrDailyChart, q), &res); err != nil {
			return nil, notFoundOr(code, err)
		}
		rows := 0
		var oldest time.Time
		for n := range res.Output2 {
			r, err := res.row(TrDailyChart, n)
			if err != nil {
				return nil, withCode(err, code)
			}
			if r == nil || r.Date == "" {
				continue // python-kis drops the empty objects KIS pads with
			}
			rows++
			f := fields{prefix: "output2[" + strconv.Itoa(n) + "]"}
			b := kisfeed.Candle{
				Time: f.reqDate("stck_bsop_date", r.Date),
				Open: f.int("stck_oprc", r.Open), High: f.int("stck_hgpr", r.High),
				Low: f.int("stck_lwpr", r.Low), Close: f.req("stck_clpr", r.Close),
				Volume: f.int("acml_vol", r.Vol), Value: f.int("acml_tr_pbmn", r.Value),
			}
			if err := f.malformed(TrDailyChart, code, res.Output2[n]); err != nil {
				return nil, err
			}
			if oldest.IsZero() || b.Time.Before(oldest) {
				oldest = b.Time
			}
			if k := b.Time.Unix(); !seen[k] && !b.Time.Before(from) && !b.Time.After(to) {
				seen[k] = true
				bars = append(bars, b)
			}
		}
		if page == 0 && rows == 0 && unknownOutput1(res.Output1) {
			return nil, notFound(code)
		}
		// Next page: the day before the oldest row (R-pm; R-bt does the
		// same). Stop on a short page or when no progress was made.
		if rows < dailyPageRows || oldest.IsZero() || !oldest.After(from) {
			break
		}
		end = oldest.AddDate(0, 0, -1)
	}
	slices.SortFunc(bars, func(a, b kisfeed.Candle) int { return a.Time.Compare(b.Time) })
	return bars, nil
}

// unknownOutput1 reports the all-zero snapshot KIS sends for unknown codes.
func unknownOutput1(o *chartOutput1) bool {
	return o != nil && (o.StckPrpr == "0" || o.StckPrpr == "")
}

// MinuteCandles returns the one-minute bars of code on day (its KST
// calendar day), oldest first. Today's bars come from
// inquire-time-itemchartprice, 30 rows per call paging back from the
// close; past days from inquire-time-dailychartprice (real server only;
// KIS keeps about a year).
// A malformed code fails before any request (wrapping [kisfeed.ErrInvalid]).
func (c *Client) MinuteCandles(ctx context.Context, code string, day time.Time) ([]kisfeed.Candle, error) {
	kc, err := kisfeed.ParseCode(code)
	if err != nil {
		return nil, err
	}
	return c.minuteCandles(ctx, kc, day)
}

// minuteCandles is [Client.MinuteCandles] for a parsed code.
func (c *Client) minuteCandles(ctx context.Context, kc kisfeed.Code, day time.Time) ([]kisfeed.Candle, error) {
	code := kc.String()
	day = kisfeed.Day(day)
	today := kisfeed.Day(c.market())
	switch {
	case day.After(today):
		return nil, fmt.Errorf("%w: minute candles for %s: a future day", kisfeed.ErrInvalid, ymd(day))
	case day.Equal(today):
		return c.minutes(ctx, code, day, pathTodayMin, TrTodayMin)
	case c.lacks(TrPastMin):
		return nil, fmt.Errorf("minute candles for %s: past days need the real server (inquire-time-dailychartprice): %w", ymd(day), ErrUnsupported)
	}
	bars, err := c.minutes(ctx, code, day, pathPastMin, TrPastMin)
	if errors.Is(err, ErrUnsupported) {
		c.markUnsupported(TrPastMin)
	}
	return bars, err
}

// minutes pages back from 15:30 until 09:00 or the server runs dry.
//
// The next page starts at the oldest time returned, not a minute before
// it: whether FID_INPUT_HOUR_1 is inclusive is unconfirmed (REFERENCE
// §d.4/d.5; R-bt re-asks from the earliest time and de-duplicates), and
// re-reading one row is cheaper than skipping one.
func (c *Client) minutes(ctx context.Context, code string, day time.Time, path, trID string) ([]kisfeed.Candle, error) {
	type cum struct {
		bar   kisfeed.Candle
		value int64 // cumulative traded value up to the bar
	}
	seen := map[int64]cum{}
	hour := "153000"
	for page := 0; page < maxPages; page++ {
		q := url.Values{
			"FID_COND_MRKT_DIV_CODE": {"J"},
			"FID_INPUT_ISCD":         {code},
			"FID_INPUT_HOUR_1":       {hour},
			"FID_PW_DATA_INCU_YN":    {"N"},
		}
		if trID == TrPastMin {
			q.Set("FID_INPUT_DATE_1", ymd(day))
			q.Set("FID_FAKE_TICK_INCU_YN", "")
		} else {
			q.Set("FID_ETC_CLS_CODE", "")
		}
		var res chartResponse
		if _, err := c.Do(ctx, c.NewRequest(path, trID, q), &res); err != nil {
			return nil, notFoundOr(code, err)
		}
		added := 0
		var oldest time.Duration = -1
		for n := range res.Output2 {
			r, err := res.row(trID, n)
			if err != nil {
				return nil, withCode(err, code)
			}
			if r == nil || r.Date == "" {
				continue
			}
			f := fields{prefix: "output2[" + strconv.Itoa(n) + "]"}
			d := f.reqDate("stck_bsop_date", r.Date)
			h := f.clock("stck_cntg_hour", r.Hour)
			b := kisfeed.Candle{
				Time: d.Add(h),
				Open: f.int("stck_oprc", r.Open), High: f.int("stck_hgpr", r.High),
				Low: f.int("stck_lwpr", r.Low), Close: f.req("stck_prpr", r.Price),
				Volume: f.int("cntg_vol", r.CVol),
			}
			v := f.int("acml_tr_pbmn", r.Value)
			if err := f.malformed(trID, code, res.Output2[n]); err != nil {
				return nil, err
			}
			if !d.Equal(day) {
				continue
			}
			if oldest < 0 || h < oldest {
				oldest = h
			}
			if _, ok := seen[b.Time.Unix()]; !ok {
				seen[b.Time.Unix()] = cum{b, v}
				added++
			}
		}
		if page == 0 && len(seen) == 0 && unknownOutput1(res.Output1) {
			return nil, notFound(code)
		}
		if added == 0 || oldest <= 9*time.Hour {
			break
		}
		hour = clockString(oldest)
	}
	out := make([]cum, 0, len(seen))
	for _, v := range seen {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b cum) int { return a.bar.Time.Compare(b.bar.Time) })
	bars := make([]kisfeed.Candle, len(out))
	var prev int64
	for i, v := range out {
		// acml_tr_pbmn is cumulative: a bar's value is the difference.
		bars[i] = v.bar
		bars[i].Value = max(v.value-prev, 0)
		prev = v.value
	}
	return bars, nil
}

func clockString(d time.Duration) string {
	s := int(d / time.Second)
	return fmt.Sprintf("%02d%02d%02d", s/3600, s/60%60, s%60)
}
