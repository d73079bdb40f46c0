package kis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// Quotation paths and tr_ids (REFERENCE §d).
const (
	quotations = "/uapi/domestic-stock/v1/quotations/"

	pathPrice      = quotations + "inquire-price"
	pathOrderBook  = quotations + "inquire-asking-price-exp-ccn"
	pathDailyChart = quotations + "inquire-daily-itemchartprice"
	pathTodayMin   = quotations + "inquire-time-itemchartprice"
	pathPastMin    = quotations + "inquire-time-dailychartprice"
	pathStockInfo  = quotations + "search-stock-info"
	pathMultPrice  = quotations + "intstock-multprice"
	pathHoliday    = quotations + "chk-holiday"

	TrPrice      = "FHKST01010100"
	TrOrderBook  = "FHKST01010200"
	TrDailyChart = "FHKST03010100"
	TrTodayMin   = "FHKST03010200"
	TrPastMin    = "FHKST03010230"
	TrStockInfo  = "CTPF1002R"
	TrMultPrice  = "FHKST11300006"
	TrHoliday    = "CTCA0903R"
)

// MaxBatch is the most codes intstock-multprice takes in one call.
const MaxBatch = 30

func codeQuery(code string) url.Values {
	return url.Values{"FID_COND_MRKT_DIV_CODE": {"J"}, "FID_INPUT_ISCD": {code}}
}

type priceOutput struct {
	StckShrnIscd string `json:"stck_shrn_iscd"`
	StckPrpr     string `json:"stck_prpr"`
	PrdyVrss     string `json:"prdy_vrss"`
	PrdyCtrt     string `json:"prdy_ctrt"`
	AcmlTrPbmn   string `json:"acml_tr_pbmn"`
	AcmlVol      string `json:"acml_vol"`
	StckOprc     string `json:"stck_oprc"`
	StckHgpr     string `json:"stck_hgpr"`
	StckLwpr     string `json:"stck_lwpr"`
	StckMxpr     string `json:"stck_mxpr"`
	StckLlam     string `json:"stck_llam"`
	StckSdpr     string `json:"stck_sdpr"`
	AsprUnit     string `json:"aspr_unit"`
}

type priceResponse struct {
	envelope
	// Output is decoded on its own (decodeObject) so an unexpected JSON
	// type is a *MalformedError with the object as Raw.
	Output json.RawMessage `json:"output"`
}

// getStock runs a single-stock quotation (FID_COND_MRKT_DIV_CODE J,
// FID_INPUT_ISCD code) into out. A code KIS does not know fails with
// [ErrUnknownStock].
func (c *Client) getStock(ctx context.Context, path, trID string, code kisfeed.Code, out any) (*Response, error) {
	resp, err := c.Do(ctx, c.NewRequest(path, trID, codeQuery(code.String())), out)
	if err != nil {
		return resp, notFoundOr(code.String(), err)
	}
	return resp, nil
}

// Price returns the current price of one stock (inquire-price). A
// malformed code fails before any request (wrapping
// [kisfeed.ErrInvalid]); a code KIS does not know fails with
// [ErrUnknownStock].
//
// The exported methods take strings and check them, because the client is
// a library and its callers' codes come from anywhere; the unexported
// ones they call (price, orderBook, ...) take a parsed [kisfeed.Code],
// which is what [Source] hands them, so a code the gateway already parsed
// is not checked again.
func (c *Client) Price(ctx context.Context, code string) (*kisfeed.Quote, *Response, error) {
	return withParsed(ctx, code, c.price)
}

// withParsed parses code, the exported methods' one check, and runs get
// with it; a malformed code fails before any request.
func withParsed[T any](ctx context.Context, code string, get func(context.Context, kisfeed.Code) (*T, *Response, error)) (*T, *Response, error) {
	kc, err := kisfeed.ParseCode(code)
	if err != nil {
		return nil, nil, err
	}
	return get(ctx, kc)
}

// price is [Client.Price] for a parsed code.
func (c *Client) price(ctx context.Context, kc kisfeed.Code) (*kisfeed.Quote, *Response, error) {
	code := kc.String()
	var out priceResponse
	resp, err := c.getStock(ctx, pathPrice, TrPrice, kc, &out)
	if err != nil {
		return nil, resp, err
	}
	var o *priceOutput
	if err := decodeObject(TrPrice, "output", out.Output, &o); err != nil && !isNull(out.Output) {
		return nil, resp, withCode(err, code)
	}
	// python-kis treats stck_prpr "0" as "not found": KIS answers unknown
	// codes with an all-zero object, not an error code.
	if o == nil || o.StckPrpr == "" || o.StckPrpr == "0" {
		return nil, resp, notFound(code)
	}
	f := fields{prefix: "output"}
	q := &kisfeed.Quote{
		Code:         code,
		Price:        f.req("stck_prpr", o.StckPrpr),
		Change:       f.int("prdy_vrss", o.PrdyVrss),
		ChangeRate:   f.float("prdy_ctrt", o.PrdyCtrt),
		TradingValue: f.int("acml_tr_pbmn", o.AcmlTrPbmn),
		Volume:       f.int("acml_vol", o.AcmlVol),
		Open:         f.int("stck_oprc", o.StckOprc),
		High:         f.int("stck_hgpr", o.StckHgpr),
		Low:          f.int("stck_lwpr", o.StckLwpr),
		UpperLimit:   f.int("stck_mxpr", o.StckMxpr),
		LowerLimit:   f.int("stck_llam", o.StckLlam),
		BasePrice:    f.int("stck_sdpr", o.StckSdpr),
		TickSize:     f.int("aspr_unit", o.AsprUnit),
	}
	if err := f.malformed(TrPrice, code, out.Output); err != nil {
		return nil, resp, err
	}
	// KIS gives no previous close here; python-kis derives it the same way.
	q.PrevClose = q.Price - q.Change
	// inquire-price carries no quote time: the fetch time stands in.
	q.Meta = kisfeed.Meta{Source: "kis", Origin: kisfeed.OriginSource, AsOf: c.market().In(kisfeed.KST)}
	return q, resp, nil
}

// notFoundOr turns KIS's "no data" answers into ErrUnknownStock for code,
// and names code in a *MalformedError that does not name one yet.
func notFoundOr(code string, err error) error {
	if errors.Is(err, ErrUnknownStock) {
		return fmt.Errorf("stock %s: %w", code, err)
	}
	return withCode(err, code)
}

// withCode sets the stock code of a *MalformedError in err when it has
// none (the check of the body does not know the code).
func withCode(err error, code string) error {
	var me *MalformedError
	if errors.As(err, &me) && me.Code == "" {
		me.Code = code
	}
	return err
}

// isNull reports an absent or JSON null object.
func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

type orderBookResponse struct {
	envelope
	Output1 map[string]string `json:"output1"`
	Output2 map[string]string `json:"output2"`
}

// OrderBook returns the 10-level book of one stock
// (inquire-asking-price-exp-ccn). A malformed code fails before any
// request (wrapping [kisfeed.ErrInvalid]).
func (c *Client) OrderBook(ctx context.Context, code string) (*kisfeed.OrderBook, *Response, error) {
	return withParsed(ctx, code, c.orderBook)
}

// orderBook is [Client.OrderBook] for a parsed code.
func (c *Client) orderBook(ctx context.Context, kc kisfeed.Code) (*kisfeed.OrderBook, *Response, error) {
	code := kc.String()
	var out orderBookResponse
	resp, err := c.getStock(ctx, pathOrderBook, TrOrderBook, kc, &out)
	if err != nil {
		return nil, resp, err
	}
	o1 := out.Output1
	// python-kis: no askp1 means the code is unknown; KIS (and the
	// emulator) may also send an all-zero book. One empty side alone is a
	// stock at its daily limit, not an unknown code.
	if o1 == nil || (zeroOrEmpty(o1["askp1"]) && zeroOrEmpty(o1["bidp1"])) {
		return nil, resp, notFound(code)
	}
	f := fields{prefix: "output1"}
	b := &kisfeed.OrderBook{Code: code}
	for i := range kisfeed.BookDepth {
		n := strconv.Itoa(i + 1)
		b.Asks[i] = kisfeed.Level{Price: f.int("askp"+n, o1["askp"+n]), Quantity: f.int("askp_rsqn"+n, o1["askp_rsqn"+n])}
		b.Bids[i] = kisfeed.Level{Price: f.int("bidp"+n, o1["bidp"+n]), Quantity: f.int("bidp_rsqn"+n, o1["bidp_rsqn"+n])}
	}
	b.TotalAskQty = f.int("total_askp_rsqn", o1["total_askp_rsqn"])
	b.TotalBidQty = f.int("total_bidp_rsqn", o1["total_bidp_rsqn"])
	var hour time.Duration
	if h := o1["aspr_acpt_hour"]; h != "" {
		hour = f.clock("aspr_acpt_hour", h)
	}
	f2 := fields{prefix: "output2"}
	if out.Output2 != nil {
		b.ExpectedPrice = f2.int("antc_cnpr", out.Output2["antc_cnpr"])
	}
	if err := f.malformed(TrOrderBook, code, rawOf(o1)); err != nil {
		return nil, resp, err
	}
	if err := f2.malformed(TrOrderBook, code, rawOf(out.Output2)); err != nil {
		return nil, resp, err
	}
	b.Meta = kisfeed.Meta{Source: "kis", Origin: kisfeed.OriginSource, AsOf: c.serverTime(hour)}
	return b, resp, nil
}

// serverTime places a KIS HHMMSS time on the right KST day: today, or
// yesterday when that time of day is still ahead of now (a book received
// at 16:00 read the next morning).
func (c *Client) serverTime(hour time.Duration) time.Time {
	now := c.market().In(kisfeed.KST)
	if hour == 0 {
		return now
	}
	t := kisfeed.Day(now).Add(hour)
	if t.After(now.Add(time.Minute)) {
		t = t.AddDate(0, 0, -1)
	}
	return t
}

type multOutput struct {
	Code      string `json:"inter_shrn_iscd"`
	Name      string `json:"inter_kor_isnm"`
	Market    string `json:"kospi_kosdaq_cls_name"`
	Price     string `json:"inter2_prpr"`
	Change    string `json:"inter2_prdy_vrss"`
	Rate      string `json:"prdy_ctrt"`
	Volume    string `json:"acml_vol"`
	Open      string `json:"inter2_oprc"`
	High      string `json:"inter2_hgpr"`
	Low       string `json:"inter2_lwpr"`
	Lower     string `json:"inter2_llam"`
	Upper     string `json:"inter2_mxpr"`
	Value     string `json:"acml_tr_pbmn"`
	PrevClose string `json:"inter2_prdy_clpr"`
	Base      string `json:"inter2_sdpr"`
}

type multResponse struct {
	envelope
	// Output rows are decoded one by one so that one unreadable row
	// fails only its own code.
	Output []json.RawMessage `json:"output"`
}

// Prices returns quotes for many codes in the order asked, using
// intstock-multprice in batches of at most [MaxBatch]. Codes that fail on
// their own are nil in the result and listed in the returned
// *[kisfeed.BatchError]: unknown codes (matching [kisfeed.ErrNotFound])
// and rows with an unreadable value (a *[MalformedError], matching
// [ErrMalformed]); the other codes of the batch are still returned. Any
// other error fails the call. On the mock server, which lacks the TR, it
// falls back to one [Client.Price] call per code.
// A malformed code is reported in the BatchError (wrapping
// [kisfeed.ErrInvalid]) without a request.
func (c *Client) Prices(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
	bad := map[string]error{}
	parsed := make([]kisfeed.Code, len(codes))
	var valid []int
	for i, code := range codes {
		kc, err := kisfeed.ParseCode(code)
		if err != nil {
			bad[code] = err
			continue
		}
		parsed[i] = kc
		valid = append(valid, i)
	}
	return c.prices(ctx, parsed, valid, bad)
}

// prices is [Client.Prices] for parsed codes: it asks for codes[i] for i
// in valid (the others stay nil) and adds each code's own failure to bad.
func (c *Client) prices(ctx context.Context, codes []kisfeed.Code, valid []int, bad map[string]error) ([]*kisfeed.Quote, error) {
	out := make([]*kisfeed.Quote, len(codes))
	var err error
	if c.lacks(TrMultPrice) {
		err = c.pricesOneByOne(ctx, codes, valid, out, bad)
	} else {
		err = c.pricesBatched(ctx, codes, valid, out, bad)
	}
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return out, &kisfeed.BatchError{Errs: bad}
	}
	return out, nil
}

func (c *Client) pricesBatched(ctx context.Context, codes []kisfeed.Code, valid []int, out []*kisfeed.Quote, bad map[string]error) error {
	strs := kisfeed.CodeStrings(codes)
	for start := 0; start < len(valid); start += MaxBatch {
		idx := valid[start:min(start+MaxBatch, len(valid))]
		q := url.Values{}
		for n, i := range idx {
			k := strconv.Itoa(n + 1)
			q.Set("FID_COND_MRKT_DIV_CODE_"+k, "J")
			q.Set("FID_INPUT_ISCD_"+k, strs[i])
		}
		var res multResponse
		_, err := c.Do(ctx, c.NewRequest(pathMultPrice, TrMultPrice, q), &res)
		if errors.Is(err, ErrUnsupported) {
			c.markUnsupported(TrMultPrice)
			return c.pricesOneByOne(ctx, codes, valid[start:], out, bad)
		}
		if err != nil {
			return err
		}
		decodeMult(res.Output, strs, idx, c.market().In(kisfeed.KST), out, bad)
	}
	return nil
}

// multRow is one decoded intstock-multprice row.
type multRow struct {
	n   int // index in the response's output array
	raw json.RawMessage
	o   *multOutput
	err error // the row could not be decoded
}

// decodeMult maps the rows of one intstock-multprice answer to the codes
// asked (codes[i] for i in idx): a quote in out[i], or the code's own
// error in bad. Rows are matched by inter_shrn_iscd, not position.
func decodeMult(rows []json.RawMessage, codes []string, idx []int, now time.Time, out []*kisfeed.Quote, bad map[string]error) {
	byCode := make(map[string]multRow, len(rows))
	// An undecodable row whose code cannot be read either: it may be the
	// answer for any code left without a row, which then fails with it
	// rather than passing for unknown.
	var orphan *MalformedError
	for n, raw := range rows {
		field := "output[" + strconv.Itoa(n) + "]"
		var o *multOutput
		if err := decodeObject(TrMultPrice, field, raw, &o); err != nil {
			me := err.(*MalformedError)
			if me.Code = rowCode(raw); me.Code == "" {
				if orphan == nil {
					orphan = me
				}
				continue
			}
			byCode[me.Code] = multRow{n: n, raw: raw, err: me}
			continue
		}
		if o != nil && o.Code != "" {
			byCode[o.Code] = multRow{n: n, raw: raw, o: o}
		}
	}
	for _, i := range idx {
		code := codes[i]
		r, ok := byCode[code]
		switch {
		case ok && r.err != nil:
			bad[code] = r.err
			continue
		case !ok && orphan != nil:
			e := *orphan
			e.Code = code
			bad[code] = &e
			continue
		case !ok || r.o.Price == "" || r.o.Price == "0":
			bad[code] = notFound(code)
			continue
		}
		o := r.o
		f := fields{prefix: "output[" + strconv.Itoa(r.n) + "]"}
		q := &kisfeed.Quote{
			Code: code, Name: o.Name, Market: marketFromName(o.Market),
			Price: f.req("inter2_prpr", o.Price), Change: f.int("inter2_prdy_vrss", o.Change),
			ChangeRate: f.float("prdy_ctrt", o.Rate), Volume: f.int("acml_vol", o.Volume),
			Open: f.int("inter2_oprc", o.Open), High: f.int("inter2_hgpr", o.High),
			Low: f.int("inter2_lwpr", o.Low), LowerLimit: f.int("inter2_llam", o.Lower),
			UpperLimit: f.int("inter2_mxpr", o.Upper), TradingValue: f.int("acml_tr_pbmn", o.Value),
			PrevClose: f.int("inter2_prdy_clpr", o.PrevClose), BasePrice: f.int("inter2_sdpr", o.Base),
			Meta: kisfeed.Meta{Source: "kis", Origin: kisfeed.OriginSource, AsOf: now},
		}
		if err := f.malformed(TrMultPrice, code, r.raw); err != nil {
			bad[code] = err
			continue
		}
		if q.PrevClose == 0 {
			q.PrevClose = q.Price - q.Change
		}
		// intstock-multprice carries no aspr_unit; the unified KRX table
		// gives the same tick for ordinary shares (ETFs differ, REFERENCE
		// §i), so a batch quote matches a single one.
		q.TickSize = krx.TickSize(q.Price)
		out[i] = q
	}
}

// rowCode reads the stock code of a row that did not decode, when it is
// a string; "" otherwise.
func rowCode(raw json.RawMessage) string {
	var row map[string]json.RawMessage
	if json.Unmarshal(raw, &row) != nil {
		return ""
	}
	var code string
	if json.Unmarshal(row["inter_shrn_iscd"], &code) != nil {
		return ""
	}
	return strings.TrimSpace(code)
}

// pricesOneByOne is the fallback for servers without intstock-multprice.
func (c *Client) pricesOneByOne(ctx context.Context, codes []kisfeed.Code, idx []int, out []*kisfeed.Quote, bad map[string]error) error {
	c.logOnce("multprice", "kis: this server has no intstock-multprice; falling back to one inquire-price call per code")
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, i := range idx {
		g.Go(func() error {
			q, _, err := c.price(ctx, codes[i])
			// An unknown code or an unreadable answer fails only its code,
			// as in a batch.
			if errors.Is(err, kisfeed.ErrNotFound) || errors.Is(err, ErrMalformed) {
				mu.Lock()
				bad[codes[i].String()] = err
				mu.Unlock()
				return nil
			}
			out[i] = q
			return err
		})
	}
	return g.Wait()
}

func marketFromName(s string) kisfeed.Market {
	switch s {
	case "코스피", "KOSPI", "유가증권":
		return kisfeed.MarketKOSPI
	case "코스닥", "KOSDAQ":
		return kisfeed.MarketKOSDAQ
	case "코넥스", "KONEX":
		return kisfeed.MarketKONEX
	}
	return ""
}

// lacks reports whether the server is known not to offer trID: the mock
// server per REFERENCE §a, or any server that answered EGW00213 for it.
func (c *Client) lacks(trID string) bool {
	if c.server == Mock {
		switch trID {
		case TrMultPrice, TrHoliday, TrStockInfo, TrPastMin:
			return true
		}
	}
	_, ok := c.unsupported.Load(trID)
	return ok
}

func (c *Client) markUnsupported(trID string) { c.unsupported.Store(trID, true) }

func zeroOrEmpty(s string) bool { return s == "" || s == "0" }
