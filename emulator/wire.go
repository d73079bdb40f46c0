package emulator

import (
	"strconv"
	"unicode/utf8"
)

// The emulator's wire types. KIS answers with JSON objects whose values are
// all strings, in a fixed field order; the order matters to the golden
// tests (and to humans diffing against the portal), so objects are ordered
// key/value lists instead of structs or maps. They are deliberately not
// shared with package kis: one misreading of the spec must not hide on both
// sides.

// field is one key/value pair of a wire object.
type field struct{ k, v string }

// obj is a wire object: string values in wire order.
type obj []field

// index returns the position of key k, or -1.
func (o obj) index(k string) int {
	for i := range o {
		if o[i].k == k {
			return i
		}
	}
	return -1
}

// block is one output block of an envelope: "output", "output1", ...
type block struct {
	name string
	one  obj   // single object (when list is false)
	rows []obj // array of objects (when list is true)
	list bool
}

// reply is a KIS data-API response: HTTP status, continuation header and
// the envelope {head..., blocks..., rt_cd, msg_cd, msg1}.
type reply struct {
	status int
	trCont string
	gtUID  string  // gt_uid header; "" = a fresh one
	head   []field // top-level string fields before the blocks (chk-holiday cursor)
	blocks []block
	rtCd   string
	msgCd  string
	msg1   string
}

// Success codes and texts, per endpoint family (REFERENCE §c.3, fixtures).
const (
	msgCdOK = "MCA00000"
	// msg1OKBang is the portal example's text for inquire-price and
	// inquire-asking-price-exp-ccn (fixtures, S-ex); the other quotation
	// fixtures end with a period.
	msg1OKBang = "정상처리 되었습니다!"
	msg1OK     = "정상처리 되었습니다."
	// KIOK0530 is the product-info backend's success (CTPF…, CTCA…); its
	// msg1 arrives right-padded with spaces (a captured real reply, T).
	msgCdKIOK   = "KIOK0530"
	msg1KIOK    = "조회되었습니다                                                                  "
	msgCdNoData = "KIOK0560"
	msg1NoData  = "조회할 자료가 없습니다"
)

func okReply(msg1 string, blocks ...block) *reply {
	return &reply{status: 200, rtCd: "0", msgCd: msgCdOK, msg1: msg1, blocks: blocks}
}

func one(name string, o obj) block          { return block{name: name, one: o} }
func rows(name string, r []obj) block       { return block{name: name, rows: r, list: true} }
func (r *reply) withTrCont(c string) *reply { r.trCont = c; return r }

// appendJSON appends the envelope's JSON encoding to b.
func (r *reply) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	comma := func() {
		if !first {
			b = append(b, ',')
		}
		first = false
	}
	for _, f := range r.head {
		comma()
		b = appendJSONString(b, f.k)
		b = append(b, ':')
		b = appendJSONString(b, f.v)
	}
	for _, bl := range r.blocks {
		comma()
		b = appendJSONString(b, bl.name)
		b = append(b, ':')
		if bl.list {
			b = append(b, '[')
			for i, o := range bl.rows {
				if i > 0 {
					b = append(b, ',')
				}
				b = o.appendJSON(b)
			}
			b = append(b, ']')
		} else {
			b = bl.one.appendJSON(b)
		}
	}
	for _, f := range [...]field{{"rt_cd", r.rtCd}, {"msg_cd", r.msgCd}, {"msg1", r.msg1}} {
		comma()
		b = appendJSONString(b, f.k)
		b = append(b, ':')
		b = appendJSONString(b, f.v)
	}
	return append(b, '}')
}

func (o obj) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.k)
		b = append(b, ':')
		b = appendJSONString(b, f.v)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD so the output is always valid JSON, whatever a client sent.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Number formatting: every value is a string (REFERENCE §c.3).

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fixed formats v with d decimals ("2.81", "-0.12", "0.00").
func fixed(v float64, d int) string {
	s := strconv.FormatFloat(v, 'f', d, 64)
	if s[0] == '-' {
		// Avoid "-0.00": KIS shows an unsigned zero.
		zero := true
		for _, c := range s[1:] {
			if c != '0' && c != '.' {
				zero = false
				break
			}
		}
		if zero {
			s = s[1:]
		}
	}
	return s
}

// pct returns (a/b - 1) * 100 with 2 decimals, "0.00" when b is 0.
func pctChange(a, b int64) string {
	if b == 0 {
		return "0.00"
	}
	return fixed((float64(a)/float64(b)-1)*100, 2)
}

// ratio returns a/b*100 with d decimals, "0.00" when b is 0.
func ratio(a, b int64, d int) string {
	if b == 0 {
		return fixed(0, d)
	}
	return fixed(float64(a)/float64(b)*100, d)
}

// sign returns the KIS sign code of price against the previous close:
// 1 upper limit, 2 up, 3 unchanged, 4 lower limit, 5 down (REFERENCE §c).
func sign(price, prev, upper, lower int64) string {
	switch {
	case price > prev && upper > 0 && price >= upper:
		return "1"
	case price > prev:
		return "2"
	case price < prev && lower > 0 && price <= lower:
		return "4"
	case price < prev:
		return "5"
	}
	return "3"
}

// choose returns a when c holds, else b.
func choose(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// yn renders a bool as KIS's Y/N.
func yn(b bool) string {
	if b {
		return "Y"
	}
	return "N"
}

// commas formats n with thousands separators ("36,576").
func commas(n int64) string {
	s := itoa(n)
	neg := false
	if n < 0 {
		neg, s = true, s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
