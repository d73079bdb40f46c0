package kis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

type stockInfoOutput struct {
	Pdno          string `json:"pdno"`
	Name          string `json:"prdt_abrv_name"`
	FullName      string `json:"prdt_name"`
	EngName       string `json:"prdt_eng_name"`
	ISIN          string `json:"std_pdno"`
	MarketID      string `json:"mket_id_cd"`
	Group         string `json:"scty_grp_id_cd"`
	Sector        string `json:"idx_bztp_mcls_cd_name"`
	Industry      string `json:"std_idst_clsf_cd_name"`
	ListedShares  string `json:"lstg_stqt"`
	Par           string `json:"papr"`
	Capital       string `json:"cpta"`
	KospiListed   string `json:"scts_mket_lstg_dt"`
	KosdaqListed  string `json:"kosdaq_mket_lstg_dt"`
	KonexListed   string `json:"frbd_mket_lstg_dt"`
	Halted        string `json:"tr_stop_yn"`
	Admin         string `json:"admn_item_yn"`
	NXTTradable   string `json:"cptt_trad_tr_psbl_yn"`
	ListingAbolDt string `json:"lstg_abol_dt"`
}

type stockInfoResponse struct {
	envelope
	Output *stockInfoOutput `json:"output"`
}

// StockInfo returns descriptive data about one stock (search-stock-info).
// On the mock server, which lacks the TR, it answers from the master
// files instead (fewer fields). A malformed code fails before any request
// (wrapping [kisfeed.ErrInvalid]).
func (c *Client) StockInfo(ctx context.Context, code string) (*kisfeed.StockInfo, error) {
	kc, err := kisfeed.ParseCode(code)
	if err != nil {
		return nil, err
	}
	return c.stockInfo(ctx, kc)
}

// stockInfo is [Client.StockInfo] for a parsed code.
func (c *Client) stockInfo(ctx context.Context, kc kisfeed.Code) (*kisfeed.StockInfo, error) {
	code := kc.String()
	if c.lacks(TrStockInfo) {
		return c.stockInfoFromMaster(ctx, code)
	}
	q := url.Values{"PRDT_TYPE_CD": {"300"}, "PDNO": {code}}
	var res stockInfoResponse
	_, err := c.Do(ctx, c.NewRequest(pathStockInfo, TrStockInfo, q), &res)
	if errors.Is(err, ErrUnsupported) {
		c.markUnsupported(TrStockInfo)
		return c.stockInfoFromMaster(ctx, code)
	}
	if err != nil {
		return nil, notFoundOr(code, err)
	}
	o := res.Output
	if o == nil || (o.Name == "" && o.FullName == "" && o.ISIN == "") {
		return nil, notFound(code)
	}
	f := fields{prefix: "output"}
	info := &kisfeed.StockInfo{
		Code:           code,
		ISIN:           strings.TrimSpace(o.ISIN),
		Name:           strings.TrimSpace(o.Name),
		FullName:       strings.TrimSpace(o.FullName),
		EnglishName:    strings.TrimSpace(o.EngName),
		Group:          strings.TrimSpace(o.Group),
		Sector:         strings.TrimSpace(o.Sector),
		ListedShares:   f.int("lstg_stqt", o.ListedShares),
		ParValue:       f.int("papr", o.Par),
		Capital:        f.int("cpta", o.Capital),
		Halted:         f.yn("tr_stop_yn", o.Halted),
		Administrative: f.yn("admn_item_yn", o.Admin),
		NXTTradable:    f.yn("cptt_trad_tr_psbl_yn", o.NXTTradable),
	}
	if info.Sector == "" {
		info.Sector = strings.TrimSpace(o.Industry)
	}
	switch strings.TrimSpace(o.MarketID) {
	case "STK":
		info.Market = kisfeed.MarketKOSPI
		info.ListingDate = f.date("scts_mket_lstg_dt", o.KospiListed)
	case "KSQ":
		info.Market = kisfeed.MarketKOSDAQ
		info.ListingDate = f.date("kosdaq_mket_lstg_dt", o.KosdaqListed)
	case "KNX":
		info.Market = kisfeed.MarketKONEX
		info.ListingDate = f.date("frbd_mket_lstg_dt", o.KonexListed)
	}
	if err := f.malformed(TrStockInfo, code, rawOf(o)); err != nil {
		return nil, err
	}
	info.Meta = kisfeed.Meta{Source: "kis", Origin: kisfeed.OriginSource, AsOf: c.market().In(kisfeed.KST)}
	return info, nil
}

func (c *Client) stockInfoFromMaster(ctx context.Context, code string) (*kisfeed.StockInfo, error) {
	c.logOnce("stockinfo", "kis: this server has no search-stock-info; answering stock info from the master files")
	s, ok, err := c.lookupStock(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("stock info %s from master files: %w", code, err)
	}
	if !ok {
		return nil, notFound(code)
	}
	return &kisfeed.StockInfo{
		Code: s.Code, ISIN: s.ISIN, Name: s.Name, FullName: s.Name, Market: s.Market,
		Group: s.Group, ListedShares: s.ListedShares, ListingDate: s.ListingDate, Halted: s.Halted,
		ParValue: s.parValue, Capital: s.capital, Administrative: s.administrative,
		Meta: kisfeed.Meta{Source: "kis", Origin: kisfeed.OriginSource, AsOf: c.market().In(kisfeed.KST)},
	}, nil
}

// CalendarDay is one day of KIS's market calendar (chk-holiday).
type CalendarDay struct {
	Date          time.Time // midnight KST
	Open          bool      // opnd_yn: the exchange trades
	BusinessDay   bool      // bzdy_yn: banks open
	TradeDay      bool      // tr_day_yn: securities business day
	SettlementDay bool      // sttl_day_yn
}

type holidayRow struct {
	Date       string `json:"bass_dt"`
	Business   string `json:"bzdy_yn"`
	Trade      string `json:"tr_day_yn"`
	Open       string `json:"opnd_yn"`
	Settlement string `json:"sttl_day_yn"`
}

type holidayResponse struct {
	envelope
	CtxFK  string        `json:"ctx_area_fk"`
	CtxNK  string        `json:"ctx_area_nk"`
	Output []*holidayRow `json:"output"`
}

// Calendar returns KIS's calendar for the KST days [from, to]
// (chk-holiday, following tr_cont pages). KIS asks for about one call a
// day, so results are cached in the client. On the mock server, which
// lacks the TR, it answers from the built-in KRX calendar (package krx).
func (c *Client) Calendar(ctx context.Context, from, to time.Time) ([]CalendarDay, error) {
	from, to = kisfeed.Day(from), kisfeed.Day(to)
	if to.Before(from) {
		return nil, fmt.Errorf("%w: date range %s..%s: want from <= to", kisfeed.ErrInvalid, ymd(from), ymd(to))
	}
	if to.Sub(from) > 5*366*24*time.Hour {
		return nil, fmt.Errorf("%w: date range %s..%s: want at most 5 years", kisfeed.ErrInvalid, ymd(from), ymd(to))
	}
	if !c.cached(from, to) {
		if err := c.fetchCalendar(ctx, from, to); err != nil {
			return nil, err
		}
	}
	c.calMu.Lock()
	defer c.calMu.Unlock()
	var days []CalendarDay
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		day, ok := c.cal[ymd(d)]
		if !ok {
			day = krxDay(d) // the server stopped short: krx fills in
		}
		days = append(days, day)
	}
	return days, nil
}

func (c *Client) cached(from, to time.Time) bool {
	c.calMu.Lock()
	defer c.calMu.Unlock()
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		if _, ok := c.cal[ymd(d)]; !ok {
			return false
		}
	}
	return true
}

func (c *Client) fetchCalendar(ctx context.Context, from, to time.Time) error {
	if c.lacks(TrHoliday) {
		c.calendarFromKRX(from, to)
		return nil
	}
	// One query covers as many days as KIS returns for a BASS_DT (over
	// one or more tr_cont pages); a longer range takes further queries
	// starting after the last day seen.
	base := from
	for query := 0; query < maxPages && !base.After(to); query++ {
		last, err := c.calendarQuery(ctx, base, to)
		if err != nil {
			return err
		}
		if last.IsZero() || last.Before(base) {
			return nil // the server had nothing more; krx fills the gap
		}
		base = last.AddDate(0, 0, 1)
	}
	return nil
}

// calendarQuery reads the pages of one chk-holiday query from base and
// returns the last day seen (zero when none, or when the server does not
// offer the TR and the KRX calendar was used).
func (c *Client) calendarQuery(ctx context.Context, base, to time.Time) (time.Time, error) {
	q := url.Values{"BASS_DT": {ymd(base)}, "CTX_AREA_FK": {""}, "CTX_AREA_NK": {""}}
	req := c.NewRequest(pathHoliday, TrHoliday, q)
	var last time.Time
	for page := 0; page < maxPages; page++ {
		var res holidayResponse
		resp, err := c.Do(ctx, req, &res)
		if errors.Is(err, ErrUnsupported) {
			c.markUnsupported(TrHoliday)
			c.calendarFromKRX(base, to)
			return time.Time{}, nil
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("market calendar: %w", err)
		}
		var f fields
		var bad *holidayRow
		rows := 0
		c.calMu.Lock()
		for n, r := range res.Output {
			if r == nil || r.Date == "" {
				continue
			}
			f.prefix, bad = "output["+strconv.Itoa(n)+"]", r
			rows++
			d := f.reqDate("bass_dt", r.Date)
			day := CalendarDay{
				Date:          d,
				Open:          f.yn("opnd_yn", r.Open),
				BusinessDay:   f.yn("bzdy_yn", r.Business),
				TradeDay:      f.yn("tr_day_yn", r.Trade),
				SettlementDay: f.yn("sttl_day_yn", r.Settlement),
			}
			if f.err != nil {
				break
			}
			c.cal[ymd(d)] = day
			if d.After(last) {
				last = d
			}
		}
		c.calMu.Unlock()
		if err := f.malformed(TrHoliday, "", rawOf(bad)); err != nil {
			return time.Time{}, err
		}
		if rows == 0 || !resp.More() || !last.Before(to) {
			return last, nil
		}
		req = c.NewRequest(pathHoliday, TrHoliday, url.Values{
			"BASS_DT":     {ymd(base)},
			"CTX_AREA_FK": {res.CtxFK},
			"CTX_AREA_NK": {res.CtxNK},
		})
		req.TrCont = "N"
	}
	return last, nil
}

func (c *Client) calendarFromKRX(from, to time.Time) {
	c.logOnce("holiday", "kis: this server has no chk-holiday; using the built-in KRX calendar")
	c.calMu.Lock()
	defer c.calMu.Unlock()
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		c.cal[ymd(d)] = krxDay(d)
	}
}

func krxDay(d time.Time) CalendarDay {
	open := krx.IsTradingDay(d)
	return CalendarDay{Date: d, Open: open, BusinessDay: open, TradeDay: open, SettlementDay: open}
}

// IsTradingDay reports whether KRX trades on date's KST calendar day.
func (c *Client) IsTradingDay(ctx context.Context, date time.Time) (bool, error) {
	d := kisfeed.Day(date)
	days, err := c.Calendar(ctx, d, d)
	if err != nil {
		return false, err
	}
	return days[0].Open, nil
}

// Holidays returns the weekdays in [from, to] on which KRX does not trade.
func (c *Client) Holidays(ctx context.Context, from, to time.Time) ([]time.Time, error) {
	days, err := c.Calendar(ctx, from, to)
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for _, d := range days {
		if wd := d.Date.Weekday(); !d.Open && wd != time.Saturday && wd != time.Sunday {
			out = append(out, d.Date)
		}
	}
	return out, nil
}
