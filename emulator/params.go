package emulator

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
)

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
