package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/jsonview"
	"github.com/kisfeed/kisfeed/krx"
)

func itoa(n int) string { return strconv.Itoa(n) }

// query parses the query string, refusing malformed escapes that
// URL.Query would silently drop.
func query(r *http.Request) (url.Values, error) {
	if r.URL.RawQuery == "" {
		return url.Values{}, nil
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badParam("query", "query string: malformed (%s): want key=value pairs joined by &, percent-encoded", err)
	}
	return v, nil
}

// noQuery refuses any query parameter, for routes that take none; the
// common case, no query at all, costs nothing.
func noQuery(r *http.Request) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	v, err := query(r)
	if err != nil {
		return err
	}
	return checkParams(v)
}

// serve writes a market-data value with its cache headers.
func (s *Server) serve(w http.ResponseWriter, m kisfeed.Meta, v any) {
	setCacheHeaders(w.Header(), m, s.now())
	writeJSON(w, http.StatusOK, v)
}

// serveCode serves a route that takes a {code} and no query: it refuses
// any query parameter, validates the code, asks the source and writes the
// value's view with its cache headers. view returns the value's Meta with
// the body, so every route answers and caches alike.
func serveCode[T any](s *Server, w http.ResponseWriter, r *http.Request,
	fetch func(ctx context.Context, code kisfeed.Code) (T, error), view func(T) (kisfeed.Meta, any)) {
	if err := noQuery(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	code, err := parseCode(r.PathValue("code"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	serveValue(s, w, r, func(ctx context.Context) (T, error) { return fetch(ctx, code) }, view)
}

// serveValue asks the source through fetch and writes the value's view
// with its cache headers, or the problem for fetch's error.
func serveValue[T any](s *Server, w http.ResponseWriter, r *http.Request,
	fetch func(ctx context.Context) (T, error), view func(T) (kisfeed.Meta, any)) {
	v, err := fetch(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, body := view(v)
	s.serve(w, m, body)
}

func (s *Server) handleQuote(w http.ResponseWriter, r *http.Request) {
	serveCode(s, w, r, s.src.Quote, func(q *kisfeed.Quote) (kisfeed.Meta, any) {
		return q.Meta, jsonview.NewQuote(q)
	})
}

func (s *Server) handleOrderBook(w http.ResponseWriter, r *http.Request) {
	serveCode(s, w, r, s.src.OrderBook, func(b *kisfeed.OrderBook) (kisfeed.Meta, any) {
		return b.Meta, jsonview.NewOrderBook(b)
	})
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	serveCode(s, w, r, s.src.StockInfo, func(i *kisfeed.StockInfo) (kisfeed.Meta, any) {
		return i.Meta, jsonview.NewStockInfo(i)
	})
}

// handleCandles checks its code before its query (a bad code is the
// answer when both are bad), where serveCode's routes refuse any query
// first; it shares serveValue's answer.
func (s *Server) handleCandles(w http.ResponseWriter, r *http.Request) {
	code, err := parseCode(r.PathValue("code"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	vals, err := query(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q, err := candleParams(code, vals, s.marketNow())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	serveValue(s, w, r, func(ctx context.Context) (*kisfeed.Candles, error) { return s.src.Candles(ctx, q) },
		func(c *kisfeed.Candles) (kisfeed.Meta, any) { return c.Meta, jsonview.NewCandles(c, q) })
}

// handleQuotes serves a batch. Codes that fail on their own (malformed,
// unknown) are listed under "errors" with their would-be status while the
// others are served; only a failure of the whole call (upstream down,
// timeout) fails the request.
func (s *Server) handleQuotes(w http.ResponseWriter, r *http.Request) {
	vals, err := query(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	all, valid, invalid, err := batchCodes(vals)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	byCode := map[string]*kisfeed.Quote{}
	failed := invalid
	if len(valid) > 0 {
		qs, err := s.src.Quotes(r.Context(), valid)
		var be *kisfeed.BatchError
		switch {
		case errors.As(err, &be):
			if failed == nil {
				failed = map[string]error{}
			}
			for c, e := range be.Errs {
				failed[c] = e
			}
		case err != nil:
			s.writeError(w, r, err)
			return
		}
		for i, q := range qs {
			if q != nil && i < len(valid) {
				byCode[valid[i].String()] = q
			}
		}
	}
	out := batchJSON{Requested: len(all), Quotes: []jsonview.Quote{}, Errors: []batchItemError{}}
	metas := make([]kisfeed.Meta, 0, len(byCode))
	for _, c := range all {
		if q, ok := byCode[c]; ok {
			out.Quotes = append(out.Quotes, jsonview.NewQuote(q))
			metas = append(metas, q.Meta)
			continue
		}
		e := failed[c]
		if e == nil {
			// The source returned neither a quote nor an error for it.
			e = errors.New("no quote returned")
		}
		k := classify(e)
		item := batchItemError{Code: c, Status: k.status, Type: problemBase + k.slug, Title: k.title, Detail: k.detail}
		if k.showDetail {
			item.Detail = trimInvalid(e)
		}
		out.Errors = append(out.Errors, item)
	}
	m := mergeMeta(metas, s.now())
	if m.Source == "" && len(metas) == 0 {
		m.Source = "none"
	}
	out.Meta = jsonview.NewMeta(m)
	s.serve(w, m, out)
}

// handleStocks lists the universe (common shares, ETFs and the rest), so
// clients such as the load generator can pick codes.
func (s *Server) handleStocks(w http.ResponseWriter, r *http.Request) {
	q, err := query(r)
	if err == nil {
		err = checkParams(q, "market", "group")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var market kisfeed.Market
	if raw := q.Get("market"); raw != "" {
		m, err := kisfeed.ParseMarket(raw)
		if err != nil {
			s.writeError(w, r, &paramError{param: "market", msg: trimInvalid(err)})
			return
		}
		market = m
	}
	group := q.Get("group")
	if len(group) > 4 {
		s.writeError(w, r, badParam("group", "group %q: want a security group code like ST or EF", truncate(group)))
		return
	}
	u, err := s.src.Universe(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := stocksJSON{Stocks: make([]jsonview.Stock, 0, len(u))}
	for _, st := range u {
		if (market != "" && st.Market != market) || (group != "" && st.Group != group) {
			continue
		}
		out.Stocks = append(out.Stocks, jsonview.NewStock(st))
	}
	out.Count = len(out.Stocks)
	now := s.now()
	m := kisfeed.Meta{AsOf: now, Source: "universe", Origin: kisfeed.OriginSource, Expires: now.Add(time.Hour)}
	out.Meta = jsonview.NewMeta(m)
	s.serve(w, m, out)
}

// handleCalendar answers whether KRX trades on a day. The verdict comes
// from the Source (KIS's own calendar where it has one); a source whose
// calendar is the built-in KRX table answers kisfeed.ErrNoCalendar for
// days outside it, which is a 422. Holiday names and session times come
// from the built-in krx table; the neighbouring trading days from it too
// where it covers them, else from the Source, and they are left out when
// neither knows.
func (s *Server) handleCalendar(w http.ResponseWriter, r *http.Request) {
	if err := noQuery(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	day, err := parseDate("date", r.PathValue("date"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	open, err := s.src.IsTradingDay(r.Context(), day)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := calendarJSON{
		Date: day.Format(time.DateOnly), Weekday: day.Weekday().String(), TradingDay: open,
		Holiday: krx.HolidayName(day),
	}
	for _, n := range []struct {
		step int
		dst  *string
	}{{-1, &out.PrevTradingDay}, {1, &out.NextTradingDay}} {
		d, err := s.neighbourTradingDay(r.Context(), day, n.step)
		switch {
		case errors.Is(err, kisfeed.ErrNoCalendar):
			// Unknown: the calendar ends before a trading day is found.
		case err != nil:
			s.writeError(w, r, err)
			return
		default:
			*n.dst = d.Format(time.DateOnly)
		}
	}
	if open {
		out.Open, out.Close = krx.OpenTime(day), krx.CloseTime(day)
	}
	now := s.now()
	m := kisfeed.Meta{AsOf: now, Source: "calendar", Origin: kisfeed.OriginSource, Expires: now.Add(time.Hour)}
	out.Meta = jsonview.NewMeta(m)
	s.serve(w, m, out)
}

// maxClosedRun bounds the walk to a neighbouring trading day: KRX has
// never closed for more than about ten days in a row (a long Chuseok
// holiday with weekends), so a walk longer than this means the calendar
// is broken, not that the market is shut.
const maxClosedRun = 31

// neighbourTradingDay returns the first trading day after day (step 1) or
// before it (step -1): from the built-in krx table for the days it covers,
// else from the Source. The error wraps kisfeed.ErrNoCalendar when neither
// knows a day on the way.
func (s *Server) neighbourTradingDay(ctx context.Context, day time.Time, step int) (time.Time, error) {
	d := day
	for range maxClosedRun {
		d = d.AddDate(0, 0, step)
		open := krx.IsTradingDay(d)
		if y := d.Year(); y < krx.FirstYear || y > krx.LastYear {
			var err error
			if open, err = s.src.IsTradingDay(ctx, d); err != nil {
				return time.Time{}, err
			}
		}
		if open {
			return d, nil
		}
	}
	return time.Time{}, fmt.Errorf("no trading day within %d days of %s", maxClosedRun, day.Format(time.DateOnly))
}
