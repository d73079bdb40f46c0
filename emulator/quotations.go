package emulator

import (
	"hash/fnv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/krx"
)

const quotationsPrefix = "/uapi/domestic-stock/v1/quotations/"

// endpoint is one quotation API.
type endpoint struct {
	trID     string
	realOnly bool // refused by the mock server with EGW00213
	h        func(*Server, *dataReq) *reply
}

// endpoints maps the path after quotationsPrefix to its API (REFERENCE §d
// and the mock-support table of §a).
var endpoints = map[string]endpoint{
	"inquire-price":                {trID: "FHKST01010100", h: (*Server).inquirePrice},
	"inquire-asking-price-exp-ccn": {trID: "FHKST01010200", h: (*Server).inquireAskingPrice},
	"inquire-daily-itemchartprice": {trID: "FHKST03010100", h: (*Server).inquireDailyItemChart},
	"inquire-time-itemchartprice":  {trID: "FHKST03010200", h: (*Server).inquireTimeItemChart},
	"inquire-time-dailychartprice": {trID: "FHKST03010230", realOnly: true, h: (*Server).inquireTimeDailyChart},
	"inquire-daily-price":          {trID: "FHKST01010400", h: (*Server).inquireDailyPrice},
	"search-stock-info":            {trID: "CTPF1002R", realOnly: true, h: (*Server).searchStockInfo},
	"search-info":                  {trID: "CTPF1604R", realOnly: true, h: (*Server).searchInfo},
	"intstock-multprice":           {trID: "FHKST11300006", realOnly: true, h: (*Server).intstockMultprice},
	"chk-holiday":                  {trID: "CTCA0903R", realOnly: true, h: (*Server).chkHoliday},
}

// dataReq is a parsed quotation request.
//
// Its parameter readers (marketCode, code, stock, date, hour, enum,
// require, cursor, product) check one parameter each and record the first
// error; once one is recorded they check nothing more. A handler reads its
// parameters in KIS's order and then asks [dataReq.failed] once: the error
// answered is the first bad parameter's, as if each had been checked and
// returned in turn.
type dataReq struct {
	q      url.Values
	now    time.Time // the market clock, KST
	trCont string    // request header tr_cont
	err    *reply    // the first parameter error; nil while all are fine
}

// failed returns the first parameter error, or nil.
func (d *dataReq) failed() *reply { return d.err }

// fail records rep unless an earlier error is recorded.
func (d *dataReq) fail(rep *reply) {
	if d.err == nil {
		d.err = rep
	}
}

// param looks a query parameter up. KIS's query keys look
// case-insensitive (the Postman collection sends some lowercase, REFERENCE
// §c.1), so an exact match is tried first, then any case. Of several
// spellings (fid_input_iscd and Fid_Input_Iscd) the least in byte order
// wins, so the answer does not depend on map iteration order.
func (d *dataReq) param(k string) (string, bool) {
	if v, ok := d.q[k]; ok && len(v) > 0 {
		return v[0], true
	}
	var best, val string
	found := false
	for key, v := range d.q {
		if len(v) > 0 && strings.EqualFold(key, k) && (!found || key < best) {
			best, val, found = key, v[0], true
		}
	}
	return val, found
}

// require returns the value of key k, which must be sent (blank
// included). ok is false when k is missing (recorded as the error) or an
// earlier error is recorded.
func (d *dataReq) require(k string) (v string, ok bool) {
	if d.err != nil {
		return "", false
	}
	v, ok = d.param(k)
	if !ok {
		d.fail(errMissing(k))
	}
	return v, ok
}

// OPSQ errors come from the query backend with HTTP 200 and rt_cd "2"
// (python-kis issue #81 shows "RT_CD: 2, MSG_CD: OPSQ2001" raised as an API
// error, i.e. after a 2xx; texts from KIS's error table, X-help).
func opsqErr(code, msg string) *reply {
	return &reply{status: http.StatusOK, rtCd: "2", msgCd: code, msg1: msg}
}

// errMissing: a required query key is absent. Observed text: "ERROR INPUT
// FIELD NOT FOUND [CURR_GB]"; clients report KIS rejecting a request
// missing even a must-be-blank key this way.
func errMissing(k string) *reply { return opsqErr("OPSQ2001", "ERROR INPUT FIELD NOT FOUND ["+k+"]") }

func errMarket() *reply { return opsqErr("OPSQ2001", "ERROR : INPUT INVALID_CHECK_MRKT_DIV_CODE") }

func errField() *reply { return opsqErr("OPSQ2002", "ERROR : INPUT INVALID_CHECK_FIELD_LENGTH") }

// marketCode checks an FID_COND_MRKT_DIV_CODE: J (KRX), NX (NXT) or UN
// (통합). NX and UN serve the same synthetic data as J.
func (d *dataReq) marketCode(k string) {
	v, ok := d.require(k)
	if !ok {
		return
	}
	switch v {
	case "J", "NX", "UN":
		return
	}
	d.fail(errMarket())
}

// validCode accepts a 6-character short code or an ETN code (Q + 6
// digits).
func validCode(c string) bool {
	if len(c) == 7 && c[0] == 'Q' {
		c = c[1:]
		for i := range len(c) {
			if c[i] < '0' || c[i] > '9' {
				return false
			}
		}
		return true
	}
	return kisfeed.ValidateCode(c) == nil
}

// code reads a stock code (see validCode).
func (d *dataReq) code(k string) string {
	v, ok := d.require(k)
	if ok && !validCode(v) {
		d.fail(errField())
	}
	return v
}

// stock reads the pair every single-stock quotation takes,
// FID_COND_MRKT_DIV_CODE then FID_INPUT_ISCD, and returns the code.
func (d *dataReq) stock() string {
	d.marketCode("FID_COND_MRKT_DIV_CODE")
	return d.code("FID_INPUT_ISCD")
}

// parseYMD parses YYYYMMDD strictly (year 0000 allowed: python-kis sends
// 00000101 for "from the beginning").
func parseYMD(s string) (time.Time, bool) {
	if len(s) != 8 {
		return time.Time{}, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return time.Time{}, false
	}
	y, m, dd := n/10000, time.Month(n/100%100), n%100
	t := time.Date(y, m, dd, 0, 0, 0, 0, kisfeed.KST)
	if t.Year() != y || t.Month() != m || t.Day() != dd {
		return time.Time{}, false
	}
	return t, true
}

// parseHMS parses HHMMSS — exactly six ASCII digits, from 000000 to
// 235959 — into an offset from midnight. The kis client's parseClock reads
// the same way (the emulator never imports kis, so each side has its own
// parser); both run the table in internal/wiretest/hhmmss.json.
//
// Hour 24 is rejected: REFERENCE.md says only "times HHMMSS", nothing
// shows KIS accepting 24xxxx, and an emulator that answers a value the
// real server may refuse would hide a client bug; rejecting it is the
// safer reading while it is unconfirmed.
func parseHMS(s string) (time.Duration, bool) {
	if len(s) != 6 {
		return 0, false
	}
	var hms [3]int
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		hms[i/2] = hms[i/2]*10 + int(s[i]-'0')
	}
	if hms[0] > 23 || hms[1] > 59 || hms[2] > 59 {
		return 0, false
	}
	return time.Duration(hms[0])*time.Hour + time.Duration(hms[1])*time.Minute + time.Duration(hms[2])*time.Second, true
}

// date reads a YYYYMMDD date.
func (d *dataReq) date(k string) time.Time {
	v, ok := d.require(k)
	if !ok {
		return time.Time{}
	}
	t, ok := parseYMD(v)
	if !ok {
		d.fail(errField())
	}
	return t
}

// hour reads an HHMMSS time as an offset from midnight.
func (d *dataReq) hour(k string) time.Duration {
	v, ok := d.require(k)
	if !ok {
		return 0
	}
	h, ok := parseHMS(v)
	if !ok {
		d.fail(errField())
	}
	return h
}

// enum reads k, which must be one of the allowed values.
func (d *dataReq) enum(k string, allowed ...string) string {
	v, ok := d.require(k)
	if ok && !slices.Contains(allowed, v) {
		d.fail(errField())
	}
	return v
}

// cursor reads an optional continuation key holding a YYYYMMDD date,
// space-padded as ctx_area_* are sent back; def when absent or blank.
func (d *dataReq) cursor(k string, def time.Time) time.Time {
	v, _ := d.param(k)
	v = strings.TrimSpace(v)
	if d.err != nil || v == "" {
		return def
	}
	t, ok := parseYMD(v)
	if !ok {
		d.fail(errField())
		return def
	}
	return t
}

// serveData runs a quotation call through the gateway (auth, injected
// faults, limiter, tr_id, mock refusal) and then its handler.
func (s *Server) serveData(w http.ResponseWriter, r *http.Request, path, trID string, hasTrID bool, f Faults) {
	ep, ok := endpoints[strings.TrimPrefix(path, quotationsPrefix)]
	if !ok {
		s.writeReply(w, trID, &reply{status: http.StatusNotFound, rtCd: "1", msgCd: "OPSQ0002", msg1: "없는 서비스 코드 입니다."})
		return
	}
	if r.Method != http.MethodGet {
		rep := gatewayErr("EGW00101")
		rep.status = http.StatusMethodNotAllowed
		s.writeReply(w, trID, rep)
		return
	}
	if rep := s.authorize(r); rep != nil {
		s.writeReply(w, trID, rep)
		return
	}
	key := r.Header.Get("appkey")
	// Injected errors come before the limiter so they never count as
	// accepted requests in the rate oracle.
	if s.draw(f.Error) {
		s.stats.fault(FaultError)
		s.writeReply(w, trID, gatewayErr("EGW00001"))
		return
	}
	if s.draw(f.RateLimit) {
		s.stats.fault(FaultRateLimit)
		s.writeReply(w, trID, gatewayErr("EGW00201"))
		return
	}
	ok, inSecond := s.limiter.allow(key, s.now())
	if !ok {
		s.stats.rejected(key)
		s.writeReply(w, trID, gatewayErr("EGW00201"))
		return
	}
	s.stats.accepted(key, inSecond)
	if !hasTrID || trID == "" {
		s.writeReply(w, trID, opsqErr("OPSQ9999", "JSON PARSING ERROR : tr_id not found"))
		return
	}
	if trID != ep.trID {
		// A tr_id that is not this path's service. KIS's exact answer is
		// unconfirmed (OPSQ0002 and MCA00124 are both reported, T); the
		// gateway's "no such service code" is the closest documented one.
		s.writeReply(w, trID, opsqErr("OPSQ0002", "없는 서비스 코드 입니다."))
		return
	}
	if s.kind == KindMock && ep.realOnly {
		s.writeReply(w, trID, gatewayErr("EGW00213"))
		return
	}
	q, _ := url.ParseQuery(r.URL.RawQuery) // a malformed pair is dropped, then reported missing
	d := &dataReq{q: q, now: s.marketNow().In(kisfeed.KST)}
	if v := r.Header.Values("tr_cont"); len(v) > 0 {
		d.trCont = v[0]
	}
	rep := ep.h(s, d)
	if rep.rtCd == "0" && s.draw(f.Corrupt) {
		code, _ := d.param("FID_INPUT_ISCD")
		if c, ok := s.corrupt(rep); ok {
			// The record names the gt_uid the response carries, so a
			// client can tell which of its responses was corrupted.
			rep.gtUID = s.gtUID()
			c.Time, c.Path, c.TrID, c.Code, c.GtUID = s.now(), path, trID, code, rep.gtUID
			s.stats.corrupted(c)
			setWireHeader(w.Header(), "x-emulator-fault", "corrupt "+c.Block+"."+c.Field+" "+c.Kind)
		}
	}
	s.writeReply(w, trID, rep)
}

// ---- market helpers ----

// sessionDay is the trading day whose session the instant t shows: t's day
// when KRX trades on it, else the previous trading day (as sim.QuoteAt).
func sessionDay(t time.Time) time.Time {
	d := kisfeed.Day(t)
	if krx.IsTradingDay(d) {
		return d
	}
	return krx.PrevTradingDay(d)
}

// snap gathers what most quotation outputs need about one stock now.
type snap struct {
	known   bool
	st      kisfeed.Stock
	info    kisfeed.StockInfo
	q       kisfeed.Quote
	day     time.Time      // session day
	prev    kisfeed.Candle // previous trading day's bar
	hasPrev bool
}

func (s *Server) snapshot(code string, now time.Time) *snap {
	sn := &snap{st: kisfeed.Stock{Code: code}, info: kisfeed.StockInfo{Code: code}, day: sessionDay(now)}
	st, ok := s.m.Stock(code)
	if !ok {
		return sn
	}
	q, ok := s.m.QuoteAt(code, now)
	if !ok {
		return sn
	}
	sn.known, sn.st, sn.q = true, st, q
	if info, ok := s.m.Info(code); ok {
		sn.info = info
	}
	sn.prev, sn.hasPrev = s.m.DailyBar(code, krx.PrevTradingDay(sn.day))
	return sn
}

// todayStarted reports whether the quote includes bars of the session day
// (false before 09:00 when it still shows the previous close).
func (sn *snap) todayStarted() bool {
	return sn.known && kisfeed.Day(sn.q.Meta.AsOf).Equal(sn.day) && !sn.q.Meta.AsOf.Before(krx.OpenTime(sn.day))
}

// fundamentals are deterministic made-up figures KIS reports that the
// synthetic market does not model (valuation, foreign ownership).
type fundamentals struct {
	per, pbr, ehrt, loan float64
	marg                 string
}

// valuation returns PER, PBR, EPS and BPS at the quoted price from f, the
// stock's fundamentals: "0.00" each for an unknown stock or a zero price.
func valuation(sn *snap, f fundamentals) (per, pbr, eps, bps string) {
	if !sn.known || sn.q.Price <= 0 {
		return "0.00", "0.00", "0.00", "0.00"
	}
	p := float64(sn.q.Price)
	return fixed(f.per, 2), fixed(f.pbr, 2), fixed(float64(int64(p/f.per)), 2), fixed(float64(int64(p/f.pbr)), 2)
}

func hash64(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

func fundOf(code string) fundamentals {
	h := hash64("fund", code)
	margs := [...]string{"20.00", "30.00", "40.00", "50.00", "100.00"}
	return fundamentals{
		per:  4 + float64(h%3600)/100,      // 4.00 … 39.99
		pbr:  0.3 + float64(h>>12%370)/100, // 0.30 … 3.99
		ehrt: float64(h>>24%6000) / 100,
		loan: float64(h>>40%300) / 100,
		marg: margs[h>>50%uint64(len(margs))],
	}
}

// dailyNoise is a deterministic signed fraction in [-1, 1) for a stock and
// day (foreign/program net buying).
func dailyNoise(kind, code string, day time.Time) float64 {
	h := hash64(kind, code, day.Format("20060102"))
	return float64(h%20001)/10000 - 1
}

// hilo holds 250-day, 52-week and year-to-date extremes of complete bars
// before a session day.
type hilo struct {
	d250H, d250L, w52H, w52L, ytdH, ytdL       int64
	d250HD, d250LD, w52HD, w52LD, ytdHD, ytdLD time.Time
}

// derivedCache memoises hilo per (code, session day). It is cleared when it
// grows past a bound, so a long-running emulator does not grow forever.
type derivedCache struct {
	m sync.Map // string → *hilo
	n atomic.Int64
}

func (s *Server) hilo(sn *snap) hilo {
	key := sn.st.Code + sn.day.Format("20060102")
	if v, ok := s.derived.m.Load(key); ok {
		h := *v.(*hilo)
		mergeToday(&h, sn)
		return h
	}
	bars := s.m.DailyBars(sn.st.Code, sn.day.AddDate(-1, 0, -30), sn.day.AddDate(0, 0, -1))
	var h hilo
	upd := func(hi, lo *int64, hd, ld *time.Time, b kisfeed.Candle) {
		if *hi == 0 || b.High > *hi {
			*hi, *hd = b.High, b.Time
		}
		if *lo == 0 || b.Low < *lo {
			*lo, *ld = b.Low, b.Time
		}
	}
	yearStart := time.Date(sn.day.Year(), 1, 1, 0, 0, 0, 0, kisfeed.KST)
	weekAgo := sn.day.AddDate(0, 0, -364)
	for i, b := range bars {
		if len(bars)-i <= 250 {
			upd(&h.d250H, &h.d250L, &h.d250HD, &h.d250LD, b)
		}
		if !b.Time.Before(weekAgo) {
			upd(&h.w52H, &h.w52L, &h.w52HD, &h.w52LD, b)
		}
		if !b.Time.Before(yearStart) {
			upd(&h.ytdH, &h.ytdL, &h.ytdHD, &h.ytdLD, b)
		}
	}
	if s.derived.n.Add(1) > 50_000 {
		s.derived.m.Clear()
		s.derived.n.Store(0)
	}
	s.derived.m.Store(key, &h)
	mergeToday(&h, sn)
	return h
}

func mergeToday(h *hilo, sn *snap) {
	if !sn.todayStarted() || sn.q.High == 0 {
		return
	}
	for _, p := range []struct {
		hi, lo *int64
		hd, ld *time.Time
	}{{&h.d250H, &h.d250L, &h.d250HD, &h.d250LD}, {&h.w52H, &h.w52L, &h.w52HD, &h.w52LD}, {&h.ytdH, &h.ytdL, &h.ytdHD, &h.ytdLD}} {
		if *p.hi == 0 || sn.q.High > *p.hi {
			*p.hi, *p.hd = sn.q.High, sn.day
		}
		if *p.lo == 0 || sn.q.Low < *p.lo {
			*p.lo, *p.ld = sn.q.Low, sn.day
		}
	}
}

func ymd(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kisfeed.KST).Format("20060102")
}

func hms(t time.Time) string { return t.In(kisfeed.KST).Format("150405") }

func marketKorName(m kisfeed.Market) string {
	switch m {
	case kisfeed.MarketKOSPI:
		return "코스피"
	case kisfeed.MarketKOSDAQ:
		return "코스닥"
	case kisfeed.MarketKONEX:
		return "코넥스"
	}
	return ""
}

// ---- inquire-price (d.1) ----

func (s *Server) inquirePrice(d *dataReq) *reply {
	code := d.stock()
	if rep := d.failed(); rep != nil {
		return rep
	}
	// An unknown code is not an error at KIS: python-kis detects it by an
	// all-zero output (stck_prpr "0"), so the emulator answers that way.
	return okReply(msg1OKBang, one("output", s.priceOutput(s.snapshot(code, d.now))))
}

func (s *Server) priceOutput(sn *snap) obj {
	q, info, st := sn.q, sn.info, sn.st
	f := fundamentals{marg: "0.00"}
	var h hilo
	if sn.known {
		f = fundOf(st.Code)
		h = s.hilo(sn)
	}
	statCode, mktName, crdt := "00", "", "N"
	if sn.known {
		statCode, mktName, crdt = "55", string(st.Market), "Y"
		switch {
		case st.Halted:
			statCode, crdt = "58", "N"
		case info.Administrative:
			statCode, crdt = "51", "N"
		}
	}
	shares := st.ListedShares
	if shares == 0 {
		shares = info.ListedShares
	}
	vwap := "0.00"
	if q.Volume > 0 {
		vwap = fixed(float64(q.TradingValue)/float64(q.Volume), 2)
	} else if q.Price > 0 {
		vwap = fixed(float64(q.Price), 2)
	}
	// Pivot and DeMark points from the previous day's bar.
	var pp, r1, r2, s1, s2, dmr, dms int64
	if sn.hasPrev {
		H, L, C := sn.prev.High, sn.prev.Low, sn.prev.Close
		pp = (H + L + C) / 3
		r1, s1 = 2*pp-L, 2*pp-H
		r2, s2 = pp+(H-L), pp-(H-L)
		x := H + L + 2*C
		dmr, dms = x/2-L, x/2-H
	}
	per, pbr, eps, bps := valuation(sn, f)
	frgnNet, pgtrNet := int64(0), int64(0)
	if sn.known {
		frgnNet = int64(dailyNoise("frgn", st.Code, sn.day) * float64(q.Volume) / 10)
		pgtrNet = int64(dailyNoise("pgtr", st.Code, sn.day) * float64(q.Volume) / 10)
	}
	rate := func(hi int64) string {
		if hi == 0 {
			return "0.00"
		}
		return pctChange(q.Price, hi)
	}
	capEok := info.Capital / 100_000_000
	sspr := int64(0)
	if q.PrevClose > 0 {
		sspr = krx.RoundDown(q.PrevClose * 75 / 100)
	}
	prevVol := int64(0)
	if sn.hasPrev {
		prevVol = sn.prev.Volume
	}
	return obj{
		{"iscd_stat_cls_code", statCode},
		{"marg_rate", f.marg},
		{"rprs_mrkt_kor_name", mktName},
		{"new_hgpr_lwpr_cls_code", ""},
		{"bstp_kor_isnm", info.Sector},
		{"temp_stop_yn", yn(st.Halted)},
		{"oprc_rang_cont_yn", "N"},
		{"clpr_rang_cont_yn", "N"},
		{"crdt_able_yn", crdt},
		{"grmn_rate_cls_code", choose(sn.known, "40", "")},
		{"elw_pblc_yn", "N"},
		{"stck_prpr", itoa(q.Price)},
		{"prdy_vrss", itoa(q.Change)},
		{"prdy_vrss_sign", sign(q.Price, q.PrevClose, q.UpperLimit, q.LowerLimit)},
		{"prdy_ctrt", fixed(q.ChangeRate, 2)},
		{"acml_tr_pbmn", itoa(q.TradingValue)},
		{"acml_vol", itoa(q.Volume)},
		{"prdy_vrss_vol_rate", pctChange(q.Volume, prevVol)},
		{"stck_oprc", itoa(q.Open)},
		{"stck_hgpr", itoa(q.High)},
		{"stck_lwpr", itoa(q.Low)},
		{"stck_mxpr", itoa(q.UpperLimit)},
		{"stck_llam", itoa(q.LowerLimit)},
		{"stck_sdpr", itoa(q.BasePrice)},
		{"wghn_avrg_stck_prc", vwap},
		{"hts_frgn_ehrt", fixed(f.ehrt, 2)},
		{"frgn_ntby_qty", itoa(frgnNet)},
		{"pgtr_ntby_qty", itoa(pgtrNet)},
		{"pvt_scnd_dmrs_prc", itoa(r2)},
		{"pvt_frst_dmrs_prc", itoa(r1)},
		{"pvt_pont_val", itoa(pp)},
		{"pvt_frst_dmsp_prc", itoa(s1)},
		{"pvt_scnd_dmsp_prc", itoa(s2)},
		{"dmrs_val", itoa(dmr)},
		{"dmsp_val", itoa(dms)},
		{"cpfn", itoa(capEok)},
		{"rstc_wdth_prc", itoa(q.UpperLimit - q.BasePrice)},
		{"stck_fcam", itoa(info.ParValue)},
		{"stck_sspr", itoa(sspr)},
		{"aspr_unit", itoa(q.TickSize)},
		{"hts_deal_qty_unit_val", choose(sn.known, "1", "0")},
		{"lstn_stcn", itoa(shares)},
		{"hts_avls", itoa(q.Price * shares / 100_000_000)},
		{"per", per},
		{"pbr", pbr},
		{"stac_month", choose(sn.known, "12", "")},
		{"vol_tnrt", ratio(q.Volume, shares, 2)},
		{"eps", eps},
		{"bps", bps},
		{"d250_hgpr", itoa(h.d250H)},
		{"d250_hgpr_date", ymd(h.d250HD)},
		{"d250_hgpr_vrss_prpr_rate", rate(h.d250H)},
		{"d250_lwpr", itoa(h.d250L)},
		{"d250_lwpr_date", ymd(h.d250LD)},
		{"d250_lwpr_vrss_prpr_rate", rate(h.d250L)},
		{"stck_dryy_hgpr", itoa(h.ytdH)},
		{"dryy_hgpr_vrss_prpr_rate", rate(h.ytdH)},
		{"dryy_hgpr_date", ymd(h.ytdHD)},
		{"stck_dryy_lwpr", itoa(h.ytdL)},
		{"dryy_lwpr_vrss_prpr_rate", rate(h.ytdL)},
		{"dryy_lwpr_date", ymd(h.ytdLD)},
		{"w52_hgpr", itoa(h.w52H)},
		{"w52_hgpr_vrss_prpr_ctrt", rate(h.w52H)},
		{"w52_hgpr_date", ymd(h.w52HD)},
		{"w52_lwpr", itoa(h.w52L)},
		{"w52_lwpr_vrss_prpr_ctrt", rate(h.w52L)},
		{"w52_lwpr_date", ymd(h.w52LD)},
		{"whol_loan_rmnd_rate", fixed(f.loan, 2)},
		{"ssts_yn", yn(sn.known)},
		{"stck_shrn_iscd", st.Code},
		{"fcam_cnnm", commas(info.ParValue)},
		{"cpfn_cnnm", commas(capEok) + " 억"},
		{"apprch_rate", "0.00"},
		{"frgn_hldn_qty", itoa(int64(float64(shares) * f.ehrt / 100))},
		{"vi_cls_code", "N"},
		{"ovtm_vi_cls_code", "N"},
		{"last_ssts_cntg_qty", itoa(int64(hash64("ssts", st.Code, ymd(sn.day))%50_000) * b2i(sn.known))},
		{"invt_caful_yn", "N"},
		{"mrkt_warn_cls_code", "00"},
		{"short_over_yn", "N"},
		{"sltr_yn", "N"},
		{"mang_issu_cls_code", yn(info.Administrative)},
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// ---- inquire-asking-price-exp-ccn (d.2) ----

// sessionCode is new_mkop_cls_code at t: 1st char 1 pre-open, 2
// continuous, 3 after close ("00" pre-open expected price and the closing
// auction, REFERENCE §d.2).
func sessionCode(t time.Time) (mkop, antc string) {
	if !krx.IsTradingDay(t) {
		return "31", "129"
	}
	open, close := krx.OpenTime(t), krx.CloseTime(t)
	auction := kisfeed.Day(t).Add(krx.AuctionHour*time.Hour + krx.AuctionMinute*time.Minute)
	switch {
	case t.Before(open):
		return "00", "311"
	case t.Before(auction):
		return "20", "112"
	case t.Before(close):
		return "00", "121"
	}
	return "31", "129"
}

func (s *Server) inquireAskingPrice(d *dataReq) *reply {
	code := d.stock()
	if rep := d.failed(); rep != nil {
		return rep
	}
	sn := s.snapshot(code, d.now)
	var book kisfeed.OrderBook
	if sn.known {
		book, _ = s.m.OrderBookAt(code, d.now)
	}
	mkop, antcCls := sessionCode(d.now)
	acpt := hms(d.now)
	if !sn.known {
		mkop, antcCls, acpt = "", "", ""
	}
	o1 := make(obj, 0, 72)
	o1 = append(o1, field{"aspr_acpt_hour", acpt})
	for i := range kisfeed.BookDepth {
		o1 = append(o1, field{"askp" + strconv.Itoa(i+1), itoa(book.Asks[i].Price)})
	}
	for i := range kisfeed.BookDepth {
		o1 = append(o1, field{"bidp" + strconv.Itoa(i+1), itoa(book.Bids[i].Price)})
	}
	for i := range kisfeed.BookDepth {
		o1 = append(o1, field{"askp_rsqn" + strconv.Itoa(i+1), itoa(book.Asks[i].Quantity)})
	}
	for i := range kisfeed.BookDepth {
		o1 = append(o1, field{"bidp_rsqn" + strconv.Itoa(i+1), itoa(book.Bids[i].Quantity)})
	}
	for i := range kisfeed.BookDepth {
		o1 = append(o1, field{"askp_rsqn_icdc" + strconv.Itoa(i+1), "0"})
	}
	for i := range kisfeed.BookDepth {
		o1 = append(o1, field{"bidp_rsqn_icdc" + strconv.Itoa(i+1), "0"})
	}
	o1 = append(o1,
		field{"total_askp_rsqn", itoa(book.TotalAskQty)},
		field{"total_bidp_rsqn", itoa(book.TotalBidQty)},
		field{"total_askp_rsqn_icdc", "0"},
		field{"total_bidp_rsqn_icdc", "0"},
		field{"ovtm_total_askp_icdc", "0"},
		field{"ovtm_total_bidp_icdc", "0"},
		field{"ovtm_total_askp_rsqn", "0"},
		field{"ovtm_total_bidp_rsqn", "0"},
		field{"ntby_aspr_rsqn", itoa(book.TotalBidQty - book.TotalAskQty)},
		field{"new_mkop_cls_code", mkop},
	)
	q := sn.q
	antc := book.ExpectedPrice
	antcVrss, antcSign, antcRate, antcVol := int64(0), "3", "0.00", int64(0)
	if antc > 0 {
		antcVrss = antc - q.PrevClose
		antcSign = sign(antc, q.PrevClose, q.UpperLimit, q.LowerLimit)
		antcRate = pctChange(antc, q.PrevClose)
		antcVol = int64(hash64("antc", code, ymd(sn.day))%200_000) + 1
	}
	o2 := obj{
		{"antc_mkop_cls_code", antcCls},
		{"stck_prpr", itoa(q.Price)},
		{"stck_oprc", itoa(q.Open)},
		{"stck_hgpr", itoa(q.High)},
		{"stck_lwpr", itoa(q.Low)},
		{"stck_sdpr", itoa(q.BasePrice)},
		{"antc_cnpr", itoa(antc)},
		{"antc_cntg_vrss_sign", antcSign},
		{"antc_cntg_vrss", itoa(antcVrss)},
		{"antc_cntg_prdy_ctrt", antcRate},
		{"antc_vol", itoa(antcVol)},
		{"stck_shrn_iscd", sn.st.Code},
		{"vi_cls_code", choose(sn.known, "N", "")},
	}
	return okReply(msg1OKBang, one("output1", o1), one("output2", o2))
}

// ---- inquire-daily-itemchartprice (d.3) ----

const (
	dailyChartRows  = 100
	minuteChartRows = 30
	pastMinuteRows  = 120
	dailyPriceRows  = 30
)

// periodBar is one D/W/M/Y bar with the close before its first day.
type periodBar struct {
	kisfeed.Candle
	prevClose int64
	upper     int64 // daily limits (D only; 0 otherwise)
	lower     int64
}

// sign is the bar's prdy_vrss_sign. Only day bars carry limits, so only
// they can be 1 (upper limit) or 4 (lower limit); longer bars are up,
// down or unchanged.
func (b periodBar) sign() string { return sign(b.Close, b.prevClose, b.upper, b.lower) }

// periodBars returns the bars of code for trading days in [from, to],
// grouped by period ("D", "W", "M", "Y"), oldest first. Complete daily bars
// come from the market; the session day, when it has started and lies in
// the window, contributes its partial bar from the quote. Days after the
// session never appear. Each period is labelled with its first trading day
// inside the window (the kisfeed.Candle convention), so paging backwards by
// "oldest date − 1 day" never splits or repeats a bar.
func (s *Server) periodBars(sn *snap, from, to time.Time, period string) []periodBar {
	code := sn.st.Code
	lastComplete := sn.day.AddDate(0, 0, -1)
	if sn.todayStarted() && !sn.q.Meta.AsOf.Before(krx.CloseTime(sn.day)) {
		lastComplete = sn.day // after the close the day's bar is final
	}
	end := to
	if end.After(lastComplete) {
		end = lastComplete
	}
	var daily []kisfeed.Candle
	if !end.Before(from) {
		daily = s.m.DailyBars(code, from, end)
	}
	if sn.todayStarted() && lastComplete.Before(sn.day) && !sn.day.Before(from) && !sn.day.After(to) {
		q := sn.q
		daily = append(daily, kisfeed.Candle{Time: sn.day, Open: q.Open, High: q.High, Low: q.Low,
			Close: q.Price, Volume: q.Volume, Value: q.TradingValue})
	}
	bars := sim.Aggregate(daily, chartPeriods[period])
	out := make([]periodBar, len(bars))
	for i, b := range bars {
		out[i].Candle = b
		if pc, ok := s.m.PrevClose(code, b.Time); ok {
			out[i].prevClose = pc
			if period == "D" {
				out[i].upper, out[i].lower = krx.Limits(pc)
			}
		}
	}
	return out
}

// chartPeriods maps FID_PERIOD_DIV_CODE to the period its bars cover.
var chartPeriods = map[string]sim.Period{
	"D": sim.PeriodDay, "W": sim.PeriodWeek, "M": sim.PeriodMonth, "Y": sim.PeriodYear,
}

func (s *Server) chartOutput1(sn *snap, now time.Time) obj {
	q, st, info := sn.q, sn.st, sn.info
	var book kisfeed.OrderBook
	if sn.known {
		book, _ = s.m.OrderBookAt(st.Code, now)
	}
	f := fundamentals{}
	if sn.known {
		f = fundOf(st.Code)
	}
	shares := st.ListedShares
	per, pbr, eps, _ := valuation(sn, f)
	p := sn.prev
	if !sn.hasPrev {
		p = kisfeed.Candle{}
	}
	return obj{
		{"prdy_vrss", itoa(q.Change)},
		{"prdy_vrss_sign", sign(q.Price, q.PrevClose, q.UpperLimit, q.LowerLimit)},
		{"prdy_ctrt", fixed(q.ChangeRate, 2)},
		{"stck_prdy_clpr", itoa(q.PrevClose)},
		{"acml_vol", itoa(q.Volume)},
		{"acml_tr_pbmn", itoa(q.TradingValue)},
		{"hts_kor_isnm", st.Name},
		{"stck_prpr", itoa(q.Price)},
		{"stck_shrn_iscd", st.Code},
		{"prdy_vol", itoa(p.Volume)},
		{"stck_mxpr", itoa(q.UpperLimit)},
		{"stck_llam", itoa(q.LowerLimit)},
		{"stck_oprc", itoa(q.Open)},
		{"stck_hgpr", itoa(q.High)},
		{"stck_lwpr", itoa(q.Low)},
		{"stck_prdy_oprc", itoa(p.Open)},
		{"stck_prdy_hgpr", itoa(p.High)},
		{"stck_prdy_lwpr", itoa(p.Low)},
		{"askp", itoa(book.Asks[0].Price)},
		{"bidp", itoa(book.Bids[0].Price)},
		{"prdy_vrss_vol", itoa(q.Volume - p.Volume)},
		{"vol_tnrt", ratio(q.Volume, shares, 2)},
		{"stck_fcam", itoa(info.ParValue)},
		{"lstn_stcn", itoa(shares)},
		{"cpfn", itoa(info.Capital / 100_000_000)},
		{"hts_avls", itoa(q.Price * shares / 100_000_000)},
		{"per", per},
		{"eps", eps},
		{"pbr", pbr},
		{"itewhol_loan_rmnd_ratem", fixed(f.loan, 4)},
	}
}

func (s *Server) inquireDailyItemChart(d *dataReq) *reply {
	code := d.stock()
	from := d.date("FID_INPUT_DATE_1")
	to := d.date("FID_INPUT_DATE_2")
	period := d.enum("FID_PERIOD_DIV_CODE", "D", "W", "M", "Y")
	// 0 adjusted, 1 original: the synthetic market has no corporate
	// actions, so both series are the same; the value is still checked.
	d.enum("FID_ORG_ADJ_PRC", "0", "1")
	if rep := d.failed(); rep != nil {
		return rep
	}
	sn := s.snapshot(code, d.now)
	var out []obj
	if sn.known && !to.Before(from) {
		bars := s.periodBars(sn, from, to, period)
		for i := len(bars) - 1; i >= 0 && len(out) < dailyChartRows; i-- {
			b := bars[i]
			change := b.Close - b.prevClose
			out = append(out, obj{
				{"stck_bsop_date", ymd(b.Time)},
				{"stck_clpr", itoa(b.Close)},
				{"stck_oprc", itoa(b.Open)},
				{"stck_hgpr", itoa(b.High)},
				{"stck_lwpr", itoa(b.Low)},
				{"acml_vol", itoa(b.Volume)},
				{"acml_tr_pbmn", itoa(b.Value)},
				{"flng_cls_code", "00"},
				{"prtt_rate", "0.00"},
				{"mod_yn", yn(b.Volume == 0)},
				{"prdy_vrss_sign", b.sign()},
				{"prdy_vrss", itoa(change)},
				{"revl_issu_reas", ""},
			})
		}
	}
	// Unknown code: output1 all zero (python-kis checks stck_prpr "0") and
	// no rows.
	return okReply(msg1OK, one("output1", s.chartOutput1(sn, d.now)), rows("output2", out))
}

// ---- minute bars (d.4, d.5) ----

func minuteOutput1(sn *snap) obj {
	q := sn.q
	return obj{
		{"prdy_vrss", itoa(q.Change)},
		{"prdy_vrss_sign", sign(q.Price, q.PrevClose, q.UpperLimit, q.LowerLimit)},
		{"prdy_ctrt", fixed(q.ChangeRate, 2)},
		{"stck_prdy_clpr", itoa(q.PrevClose)},
		{"acml_vol", itoa(q.Volume)},
		{"acml_tr_pbmn", itoa(q.TradingValue)},
		{"hts_kor_isnm", sn.st.Name},
		{"stck_prpr", itoa(q.Price)},
	}
}

// minuteRows returns up to n rows, newest first, of the minute bars of day
// whose start is at or before cutoff (an instant) and, for the session
// day, already included in the quote (bar time <= Quote.Meta.AsOf, the
// time of the last included bar — so the rows always add up to output1).
// acml_tr_pbmn is the cumulative traded value up to each bar.
func (s *Server) minuteRows(code string, day, cutoff time.Time, asOf time.Time, n int) []obj {
	bars := s.m.MinuteBars(code, day)
	cum := make([]int64, len(bars))
	var acc int64
	last := -1
	for i, b := range bars {
		acc += b.Value
		cum[i] = acc
		if b.Time.After(cutoff) || (!asOf.IsZero() && b.Time.After(asOf)) {
			break
		}
		last = i
	}
	out := make([]obj, 0, min(n, last+1))
	for i := last; i >= 0 && len(out) < n; i-- {
		b := bars[i]
		out = append(out, obj{
			{"stck_bsop_date", ymd(day)},
			{"stck_cntg_hour", hms(b.Time)},
			{"stck_prpr", itoa(b.Close)},
			{"stck_oprc", itoa(b.Open)},
			{"stck_hgpr", itoa(b.High)},
			{"stck_lwpr", itoa(b.Low)},
			{"cntg_vol", itoa(b.Volume)},
			{"acml_tr_pbmn", itoa(cum[i])},
		})
	}
	return out
}

func (s *Server) inquireTimeItemChart(d *dataReq) *reply {
	code := d.stock()
	hour := d.hour("FID_INPUT_HOUR_1")
	d.enum("FID_PW_DATA_INCU_YN", "Y", "N")
	// FID_ETC_CLS_CODE must be sent, blank (REFERENCE §d.4).
	d.require("FID_ETC_CLS_CODE")
	if rep := d.failed(); rep != nil {
		return rep
	}
	sn := s.snapshot(code, d.now)
	var out []obj
	if sn.known {
		// "Today" is the session the quote shows: today's completed bars
		// on a trading day (none before 09:00), the last trading day's on
		// a holiday. A future FID_INPUT_HOUR_1 means "now" because bars
		// beyond the quote's AsOf are never included.
		cutoff := sn.day.Add(hour)
		asOf := sn.q.Meta.AsOf
		if !sn.todayStarted() {
			asOf = sn.day.Add(-time.Nanosecond) // nothing of the session day yet
		}
		out = s.minuteRows(code, sn.day, cutoff, asOf, minuteChartRows)
	}
	return okReply(msg1OK, one("output1", minuteOutput1(sn)), rows("output2", out))
}

// minuteHistory is how far back inquire-time-dailychartprice serves
// (REFERENCE §d.5: KIS keeps about one year).
const minuteHistory = 365 * 24 * time.Hour

func (s *Server) inquireTimeDailyChart(d *dataReq) *reply {
	code := d.stock()
	hour := d.hour("FID_INPUT_HOUR_1")
	day := d.date("FID_INPUT_DATE_1")
	d.enum("FID_PW_DATA_INCU_YN", "Y", "N")
	// FID_FAKE_TICK_INCU_YN is optional per REFERENCE §d.5 (must be blank
	// when sent); one client reports KIS rejecting its absence, but the
	// documented reading is kept.
	if v, ok := d.param("FID_FAKE_TICK_INCU_YN"); ok && strings.TrimSpace(v) != "" && v != "N" {
		d.fail(errField())
	}
	if rep := d.failed(); rep != nil {
		return rep
	}
	sn := s.snapshot(code, d.now)
	var out []obj
	if sn.known && krx.IsTradingDay(day) && !day.After(sn.day) && d.now.Sub(day) <= minuteHistory {
		var asOf time.Time
		if day.Equal(sn.day) {
			asOf = sn.q.Meta.AsOf
			if !sn.todayStarted() {
				asOf = day.Add(-time.Nanosecond)
			}
		}
		out = s.minuteRows(code, day, day.Add(hour), asOf, pastMinuteRows)
	}
	// output1 describes the current quote (which day it shows is
	// unconfirmed at KIS; the current one is what d.4 does).
	return okReply(msg1OK, one("output1", minuteOutput1(sn)), rows("output2", out))
}

// ---- inquire-daily-price (d.6) ----

func (s *Server) inquireDailyPrice(d *dataReq) *reply {
	code := d.stock()
	period := d.enum("FID_PERIOD_DIV_CODE", "D", "W", "M")
	d.enum("FID_ORG_ADJ_PRC", "0", "1")
	if rep := d.failed(); rep != nil {
		return rep
	}
	sn := s.snapshot(code, d.now)
	out := []obj{}
	if sn.known {
		// More than dailyPriceRows periods back, so every row served has
		// its previous period's volume.
		from := sn.day.AddDate(0, 0, -80) // ≥ 31 trading days
		switch period {
		case "W":
			from = sn.day.AddDate(0, 0, -7*33)
		case "M":
			from = sn.day.AddDate(-3, 0, -80)
		}
		bars := s.periodBars(sn, from, sn.day, period)
		f := fundOf(code)
		for i := len(bars) - 1; i >= 0 && len(out) < dailyPriceRows; i-- {
			b := bars[i]
			change := b.Close - b.prevClose
			prevVol := int64(0)
			if i > 0 {
				prevVol = bars[i-1].Volume
			}
			ehrt := f.ehrt + dailyNoise("ehrt", code, b.Time)*0.5
			out = append(out, obj{
				{"stck_bsop_date", ymd(b.Time)},
				{"stck_oprc", itoa(b.Open)},
				{"stck_hgpr", itoa(b.High)},
				{"stck_lwpr", itoa(b.Low)},
				{"stck_clpr", itoa(b.Close)},
				{"acml_vol", itoa(b.Volume)},
				{"prdy_vrss_vol_rate", pctChange(b.Volume, prevVol)},
				{"prdy_vrss", itoa(change)},
				{"prdy_vrss_sign", b.sign()},
				{"prdy_ctrt", pctChange(b.Close, b.prevClose)},
				{"hts_frgn_ehrt", fixed(max(ehrt, 0), 2)},
				{"frgn_ntby_qty", itoa(int64(dailyNoise("frgn", code, b.Time) * float64(b.Volume) / 10))},
				{"flng_cls_code", "00"},
				{"acml_prtt_rate", "1.00"},
			})
		}
	}
	return okReply(msg1OK, rows("output", out))
}

// ---- search-stock-info (d.7), search-info (d.8) ----

// noData is the product-info backend's "nothing found" (rt_cd "7",
// python-kis info.py). The msg_cd/msg1 pair is not documented; KIOK0560
// follows the backend's KIOK numbering.
func noData() *reply {
	return &reply{status: http.StatusOK, rtCd: "7", msgCd: msgCdNoData, msg1: msg1NoData}
}

func kiokReply(o obj) *reply {
	return &reply{status: http.StatusOK, rtCd: "0", msgCd: msgCdKIOK, msg1: msg1KIOK, blocks: []block{one("output", o)}}
}

// product reads PRDT_TYPE_CD and PDNO and returns the code asked for and
// whether it can be a stock. Only stocks (300) exist in the synthetic
// market; other product types find nothing.
func (d *dataReq) product() (code string, stock bool) {
	pt, ok1 := d.require("PRDT_TYPE_CD")
	pd, ok2 := d.require("PDNO")
	if !ok1 || !ok2 {
		return "", false
	}
	if len(pt) != 3 || len(pd) == 0 || len(pd) > 12 {
		d.fail(errField())
		return "", false
	}
	// The 12-character product number form "00000A005930" is accepted too.
	if len(pd) == 12 && strings.HasPrefix(pd, "00000A") {
		pd = pd[6:]
	}
	return pd, pt == "300" && validCode(pd)
}

// productStock finds the stock a product-info call (search-stock-info,
// search-info) asks for. rep is the parameter error, or the no-data answer
// when the market has no such stock.
func (s *Server) productStock(d *dataReq) (code string, st kisfeed.Stock, info kisfeed.StockInfo, rep *reply) {
	code, stock := d.product()
	if rep := d.failed(); rep != nil {
		return "", st, info, rep
	}
	if !stock {
		return "", st, info, noData()
	}
	st, ok := s.m.Stock(code)
	info, ok2 := s.m.Info(code)
	if !ok || !ok2 {
		return "", st, info, noData()
	}
	return code, st, info, nil
}

func pdno(code string) string {
	if len(code) == 6 {
		return "00000A" + code
	}
	return code
}

func mketID(m kisfeed.Market) (id, excg string) {
	switch m {
	case kisfeed.MarketKOSDAQ:
		return "KSQ", "03"
	case kisfeed.MarketKONEX:
		return "KNX", "05"
	}
	return "STK", "02"
}

func (s *Server) searchStockInfo(d *dataReq) *reply {
	code, st, info, rep := s.productStock(d)
	if rep != nil {
		return rep
	}
	id, excg := mketID(st.Market)
	listed := ymd(info.ListingDate)
	if listed == "" {
		listed = ymd(st.ListingDate)
	}
	var kospiLst, kosdaqLst string
	if st.Market == kisfeed.MarketKOSDAQ {
		kosdaqLst = listed
	} else {
		kospiLst = listed
	}
	kind := "101"
	if st.Preferred {
		kind = "201"
	}
	etf := "0"
	if st.Group == "EF" {
		etf, kind = "1", ""
	}
	qt, _ := s.m.QuoteAt(code, d.now)
	sbst := krx.RoundDown(max(qt.PrevClose*75/100, 1))
	return kiokReply(obj{
		{"pdno", pdno(code)},
		{"prdt_type_cd", "300"},
		{"mket_id_cd", id},
		{"scty_grp_id_cd", st.Group},
		{"excg_dvsn_cd", excg},
		{"setl_mmdd", "12"},
		{"lstg_stqt", itoa(info.ListedShares)},
		{"lstg_cptl_amt", "0"},
		{"cpta", itoa(info.Capital)},
		{"papr", itoa(info.ParValue)},
		{"issu_pric", "0"},
		{"kospi200_item_yn", yn(st.Market == kisfeed.MarketKOSPI && st.Group == "ST" && hash64("k200", code)%4 == 0)},
		{"scts_mket_lstg_dt", kospiLst},
		{"scts_mket_lstg_abol_dt", ""},
		{"kosdaq_mket_lstg_dt", kosdaqLst},
		{"kosdaq_mket_lstg_abol_dt", ""},
		{"frbd_mket_lstg_dt", listed},
		{"frbd_mket_lstg_abol_dt", ""},
		{"reits_kind_cd", ""},
		{"etf_dvsn_cd", etf},
		{"oilf_fund_yn", "N"},
		{"idx_bztp_lcls_cd", "002"},
		{"idx_bztp_mcls_cd", sectorCode(info.Sector)},
		{"idx_bztp_scls_cd", sectorCode(info.Sector)},
		{"stck_kind_cd", kind},
		{"mfnd_opng_dt", ""},
		{"mfnd_end_dt", ""},
		{"dpsi_erlm_cncl_dt", ""},
		{"etf_cu_qty", "0"},
		{"prdt_name", info.FullName},
		{"prdt_name120", info.FullName},
		{"prdt_abrv_name", info.Name},
		{"std_pdno", info.ISIN},
		{"prdt_eng_name", info.EnglishName},
		{"prdt_eng_name120", info.EnglishName},
		{"prdt_eng_abrv_name", info.EnglishName},
		{"dpsi_aptm_erlm_yn", "Y"},
		{"etf_txtn_type_cd", "00"},
		{"etf_type_cd", ""},
		{"lstg_abol_dt", ""},
		{"nwst_odst_dvsn_cd", "1"},
		{"sbst_pric", itoa(sbst)},
		{"thco_sbst_pric", itoa(sbst)},
		{"thco_sbst_pric_chng_dt", ymd(sessionDay(d.now))},
		{"tr_stop_yn", yn(info.Halted)},
		{"admn_item_yn", yn(info.Administrative)},
		{"thdt_clpr", itoa(qt.Price)},
		{"bfdy_clpr", itoa(qt.PrevClose)},
		{"clpr_chng_dt", ymd(sessionDay(d.now))},
		{"std_idst_clsf_cd", sectorCode(info.Sector) + "604"},
		{"std_idst_clsf_cd_name", info.Sector},
		{"idx_bztp_lcls_cd_name", "시가총액규모대"},
		{"idx_bztp_mcls_cd_name", info.Sector},
		{"idx_bztp_scls_cd_name", info.Sector},
		{"ocr_no", ""},
		{"crfd_item_yn", ""},
		{"elec_scty_yn", "Y"},
		{"issu_istt_cd", code[:min(5, len(code))]},
		{"etf_chas_erng_rt_dbnb", "0"},
		{"etf_etn_ivst_heed_item_yn", "N"},
		{"stln_int_rt_dvsn_cd", "01"},
		{"frnr_psnl_lmt_rt", "0.00000000"},
		{"lstg_rqsr_issu_istt_cd", ""},
		{"lstg_rqsr_item_cd", ""},
		{"trst_istt_issu_istt_cd", ""},
		{"cptt_trad_tr_psbl_yn", yn(info.NXTTradable)},
		{"nxt_tr_stop_yn", yn(info.Halted && info.NXTTradable)},
	})
}

// sectorCode is a stable 3-digit code for a sector name.
func sectorCode(sector string) string {
	if sector == "" {
		return "000"
	}
	return strconv.Itoa(int(hash64("sector", sector)%900) + 100)
}

func (s *Server) searchInfo(d *dataReq) *reply {
	code, st, info, rep := s.productStock(d)
	if rep != nil {
		return rep
	}
	clsCd, clsName, ivst, ivstName := "101010", "주권", "1010", "주식"
	if st.Group == "EF" {
		clsCd, clsName, ivst, ivstName = "101020", "ETF", "1020", "ETF"
	}
	return kiokReply(obj{
		{"pdno", pdno(code)},
		{"prdt_type_cd", "300"},
		{"prdt_name", info.FullName},
		{"prdt_name120", info.FullName},
		{"prdt_abrv_name", info.Name},
		{"prdt_eng_name", info.EnglishName},
		{"prdt_eng_name120", info.EnglishName},
		{"prdt_eng_abrv_name", info.EnglishName},
		{"std_pdno", info.ISIN},
		{"shtn_pdno", code},
		{"prdt_sale_stat_cd", ""},
		{"prdt_risk_grad_cd", ""},
		{"prdt_clsf_cd", clsCd},
		{"prdt_clsf_name", clsName},
		{"sale_strt_dt", ""},
		{"sale_end_dt", ""},
		{"wrap_asst_type_cd", ""},
		{"ivst_prdt_type_cd", ivst},
		{"ivst_prdt_type_cd_name", ivstName},
		{"frst_erlm_dt", ymd(info.ListingDate)},
	})
}

// ---- intstock-multprice (d.9) ----

const maxMultCodes = 30

func (s *Server) intstockMultprice(d *dataReq) *reply {
	// Pairs n = 1…30; pair 1 is required, the others are sent only when
	// used. A pair beyond 30 is an error rather than silently dropped.
	for k := range d.q {
		ku := strings.ToUpper(k)
		if n, ok := strings.CutPrefix(ku, "FID_INPUT_ISCD_"); ok {
			if i, err := strconv.Atoi(n); err != nil || i < 1 || i > maxMultCodes {
				return errField()
			}
		}
	}
	out := []obj{}
	for n := 1; n <= maxMultCodes; n++ {
		ns := strconv.Itoa(n)
		iscdKey, mktKey := "FID_INPUT_ISCD_"+ns, "FID_COND_MRKT_DIV_CODE_"+ns
		if _, ok := d.param(iscdKey); !ok {
			if n == 1 {
				return errMissing(iscdKey)
			}
			continue
		}
		d.marketCode(mktKey)
		code := d.code(iscdKey)
		if rep := d.failed(); rep != nil {
			return rep
		}
		out = append(out, s.multRow(code, d.now))
	}
	return okReply(msg1OK, rows("output", out))
}

// multRow is one multprice row; an unknown code keeps its position with
// zero values so the client can match rows to codes.
func (s *Server) multRow(code string, now time.Time) obj {
	sn := s.snapshot(code, now)
	q := sn.q
	var book kisfeed.OrderBook
	hourCls := ""
	if sn.known {
		book, _ = s.m.OrderBookAt(code, now)
		hourCls = "0"
	}
	hgRate := "0.00"
	if q.Open > 0 {
		hgRate = pctChange(q.High, q.Open)
	}
	return obj{
		{"kospi_kosdaq_cls_name", marketKorName(sn.st.Market)},
		{"mrkt_trtm_cls_name", ""},
		{"hour_cls_code", hourCls},
		{"inter_shrn_iscd", code},
		{"inter_kor_isnm", sn.st.Name},
		{"inter2_prpr", itoa(q.Price)},
		{"inter2_prdy_vrss", itoa(q.Change)},
		{"prdy_vrss_sign", sign(q.Price, q.PrevClose, q.UpperLimit, q.LowerLimit)},
		{"prdy_ctrt", fixed(q.ChangeRate, 2)},
		{"acml_vol", itoa(q.Volume)},
		{"inter2_oprc", itoa(q.Open)},
		{"inter2_hgpr", itoa(q.High)},
		{"inter2_lwpr", itoa(q.Low)},
		{"inter2_llam", itoa(q.LowerLimit)},
		{"inter2_mxpr", itoa(q.UpperLimit)},
		{"inter2_askp", itoa(book.Asks[0].Price)},
		{"inter2_bidp", itoa(book.Bids[0].Price)},
		{"seln_rsqn", itoa(book.Asks[0].Quantity)},
		{"shnu_rsqn", itoa(book.Bids[0].Quantity)},
		{"total_askp_rsqn", itoa(book.TotalAskQty)},
		{"total_bidp_rsqn", itoa(book.TotalBidQty)},
		{"acml_tr_pbmn", itoa(q.TradingValue)},
		{"inter2_prdy_clpr", itoa(q.PrevClose)},
		{"oprc_vrss_hgpr_rate", hgRate},
		{"intr_antc_cntg_vrss", "0"},
		{"intr_antc_cntg_vrss_sign", "3"},
		{"intr_antc_cntg_prdy_ctrt", "0.00"},
		{"intr_antc_vol", "0"},
		{"inter2_sdpr", itoa(q.BasePrice)},
	}
}

// ---- chk-holiday (d.10) ----

// chk-holiday paging. KIS's page size and horizon are unconfirmed; the
// emulator answers a query for BASS_DT with the 30 calendar days from it,
// 12 per page (the fixture's page), so clients exercise the tr_cont
// continuation: tr_cont "M" while more follow, "D" on the last page. The
// cursor is ctx_area_fk = BASS_DT (first key) and ctx_area_nk = the next
// day to send (next key), each space-padded to 20 like the fixture.
const (
	holidayPageDays  = 12
	holidayQueryDays = 30
	ctxWidth         = 20
)

func padCtx(s string) string {
	if len(s) >= ctxWidth {
		return s
	}
	return s + strings.Repeat(" ", ctxWidth-len(s))
}

func (s *Server) chkHoliday(d *dataReq) *reply {
	origin := d.date("BASS_DT")
	start := origin
	// A continuation (tr_cont N) sends the cursor back: FK is the query's
	// first day, NK the next day to serve.
	if d.trCont == "N" {
		origin = d.cursor("CTX_AREA_FK", origin)
		start = d.cursor("CTX_AREA_NK", start)
	}
	if rep := d.failed(); rep != nil {
		return rep
	}
	end := origin.AddDate(0, 0, holidayQueryDays) // exclusive
	if start.Before(origin) || !start.Before(end) {
		return errField()
	}
	out := make([]obj, 0, holidayPageDays)
	day := start
	for ; day.Before(end) && len(out) < holidayPageDays; day = day.AddDate(0, 0, 1) {
		open := krx.IsTradingDay(day)
		// The year-end closing day: banks and securities firms work, the
		// exchange does not trade or settle.
		bank := open || krx.HolidayName(day) == "연말 휴장일"
		out = append(out, obj{
			{"bass_dt", ymd(day)},
			{"wday_dvsn_cd", "0" + strconv.Itoa(int(day.Weekday())+1)},
			{"bzdy_yn", yn(bank)},
			{"tr_day_yn", yn(bank)},
			{"opnd_yn", yn(open)},
			{"sttl_day_yn", yn(open)},
		})
	}
	more := day.Before(end)
	nk, cont := "", "D"
	if more {
		nk, cont = ymd(day), "M"
	}
	return (&reply{
		status: http.StatusOK, rtCd: "0", msgCd: msgCdKIOK, msg1: "조회되었습니다",
		head:   []field{{"ctx_area_nk", padCtx(nk)}, {"ctx_area_fk", padCtx(ymd(origin))}},
		blocks: []block{rows("output", out)},
	}).withTrCont(cont)
}
