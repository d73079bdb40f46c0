package emulator

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/kisfeed/kisfeed"
)

const quotationsPrefix = "/uapi/domestic-stock/v1/quotations/"

// The most rows one answer carries, per endpoint (REFERENCE §d.3–§d.6).
const (
	dailyChartRows  = 100
	minuteChartRows = 30
	pastMinuteRows  = 120
	dailyPriceRows  = 30
)

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
