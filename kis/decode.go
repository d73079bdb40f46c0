package kis

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
)

// fields converts KIS's string-encoded values, remembering the first
// failure with the field's full name (output.stck_prpr) so that one bad
// value fails its row or response loudly instead of becoming a silent zero.
type fields struct {
	prefix string
	err    *MalformedError
}

func (f *fields) fail(name, raw, what string) {
	if f.err == nil {
		f.err = malformedAt("", f.prefix+"."+name, shorten(raw, maxMalformedValue), what)
	}
}

// malformed returns nil when every value read, else the first failure
// completed with the request's tr_id, the stock code and the raw row.
func (f *fields) malformed(trID, code string, raw json.RawMessage) error {
	if f.err == nil {
		return nil
	}
	e := *f.err
	e.Op, e.Code, e.Raw = trID, code, raw
	return &e
}

// rawOf re-encodes a decoded object for MalformedError.Raw where the
// original bytes are not kept (map-decoded endpoints).
func rawOf(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// decodeObject decodes one response object or array row (raw) into v. A
// JSON type KIS never sends there (a number where a string is expected,
// an array for an object) is a *MalformedError naming field, the value
// and raw, not a failure of the whole response.
func decodeObject(trID, field string, raw json.RawMessage, v any) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	e := malformedAt(trID, field, shorten(string(raw), maxMalformedValue), "a JSON object")
	e.Raw = raw
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		if ute.Field != "" {
			e.Field += "." + ute.Field
			if val, _, keys := lookupPath(raw, ute.Field); val != nil {
				e.Field = field + "." + keys
				e.Value = shorten(string(val), maxMalformedValue)
			}
		}
		e.Want = "a JSON " + jsonKind(ute)
	}
	return e
}

// typeMismatch turns a JSON type error of a whole body into a
// *MalformedError (nil when err is something else). Raw is the object
// holding the value, or the body when the path cannot be followed.
func typeMismatch(trID string, body []byte, err error) *MalformedError {
	var ute *json.UnmarshalTypeError
	if !errors.As(err, &ute) {
		return nil
	}
	e := malformedAt(trID, ute.Field, ute.Value, "a JSON "+jsonKind(ute))
	if e.Field == "" {
		e.Field = "(body)"
	}
	val, parent, keys := lookupPath(body, ute.Field)
	if val != nil {
		e.Field = keys
		e.Value = shorten(string(val), maxMalformedValue)
	}
	e.Raw = parent
	if e.Raw == nil {
		e.Raw = shortRaw(body)
	}
	return e
}

// shortRaw keeps a body as Raw only when it is a reasonable size.
func shortRaw(b []byte) json.RawMessage {
	if len(b) > 4096 {
		return nil
	}
	return json.RawMessage(b)
}

func jsonKind(ute *json.UnmarshalTypeError) string {
	if ute.Type == nil {
		return "value"
	}
	switch k := ute.Type.Kind().String(); k {
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "ptr":
		return "object"
	default:
		return k
	}
}

// lookupPath follows a dotted path of object keys (as json reports a
// type error's field) through b and returns the value there, the object
// holding it and the path of keys actually followed: a segment that is
// not a key is an embedded Go struct (envelope.rt_cd) and is skipped.
// val is nil when the path cannot be followed.
func lookupPath(b []byte, path string) (val, parent json.RawMessage, keys string) {
	cur := json.RawMessage(b)
	var found []string
	for key := range strings.SplitSeq(path, ".") {
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) != nil {
			return nil, nil, ""
		}
		next, ok := obj[key]
		if !ok {
			// json matches keys case-insensitively and names untagged
			// fields the Go way (B for "b").
			for k, v := range obj {
				if strings.EqualFold(k, key) {
					key, next, ok = k, v, true
					break
				}
			}
		}
		if !ok {
			continue
		}
		found = append(found, key)
		parent, cur = cur, next
	}
	if len(found) == 0 {
		return nil, nil, ""
	}
	return cur, parent, strings.Join(found, ".")
}

// int parses a signed integer; "" (KIS's "no value") is 0.
func (f *fields) int(name, raw string) int64 {
	s := strings.TrimSpace(raw)
	if s == "" {
		return 0
	}
	n, err := parseInt(s)
	if err != nil {
		f.fail(name, raw, "an integer")
	}
	return n
}

// req parses an integer that must be present.
func (f *fields) req(name, raw string) int64 {
	if strings.TrimSpace(raw) == "" {
		f.fail(name, raw, "an integer (empty)")
		return 0
	}
	return f.int(name, raw)
}

// float parses a decimal such as a percent rate; "" is 0.
func (f *fields) float(name, raw string) float64 {
	s := strings.TrimSpace(raw)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !isDecimal(s) {
		f.fail(name, raw, "a decimal number")
		return 0
	}
	return v
}

// date parses YYYYMMDD in KST; "" is the zero time.
func (f *fields) date(name, raw string) time.Time {
	s := strings.TrimSpace(raw)
	if s == "" {
		return time.Time{}
	}
	t, err := parseDate(s)
	if err != nil {
		f.fail(name, raw, "a date YYYYMMDD")
	}
	return t
}

// reqDate parses a date that must be present.
func (f *fields) reqDate(name, raw string) time.Time {
	if strings.TrimSpace(raw) == "" {
		f.fail(name, raw, "a date YYYYMMDD (empty)")
		return time.Time{}
	}
	return f.date(name, raw)
}

// clock parses HHMMSS into an offset from midnight.
func (f *fields) clock(name, raw string) time.Duration {
	s := strings.TrimSpace(raw)
	d, err := parseClock(s)
	if err != nil {
		f.fail(name, raw, "a time HHMMSS")
	}
	return d
}

// yn parses a Y/N flag; "" is false.
func (f *fields) yn(name, raw string) bool {
	switch strings.TrimSpace(raw) {
	case "Y", "y":
		return true
	case "N", "n", "":
		return false
	}
	f.fail(name, raw, "Y or N")
	return false
}

var errSyntax = errors.New("syntax")

// parseInt accepts an optional sign and ASCII digits only: KIS sends no
// separators, and strconv alone would accept "0x1f" or "1_000".
func parseInt(s string) (int64, error) {
	digits := s
	if digits != "" && (digits[0] == '-' || digits[0] == '+') {
		digits = digits[1:]
	}
	if digits == "" {
		return 0, errSyntax
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, errSyntax
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// isDecimal rejects the forms ParseFloat accepts that KIS never sends
// (inf, nan, hex, exponents, underscores).
func isDecimal(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	if s == "" || s == "." {
		return false
	}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

func parseDate(s string) (time.Time, error) {
	if len(s) != 8 {
		return time.Time{}, errSyntax
	}
	n, err := parseInt(s)
	if err != nil || n < 0 {
		return time.Time{}, errSyntax
	}
	y, m, d := int(n/10000), time.Month(n/100%100), int(n%100)
	if y < 1900 || m < 1 || m > 12 || d < 1 || d > 31 {
		return time.Time{}, errSyntax
	}
	t := kisfeed.Date(y, m, d)
	if t.Day() != d {
		return time.Time{}, errSyntax // 20240231
	}
	return t, nil
}

// parseClock parses a KIS time HHMMSS — exactly six ASCII digits, from
// 000000 to 235959 — into an offset from midnight. The emulator's parseHMS
// reads the same way; both run the table in internal/wiretest/hhmmss.json.
//
// Hour 24 is rejected. REFERENCE.md says only "times HHMMSS, all KST", and
// no source shows KIS sending 24xxxx (the KRX day, after-hours included,
// ends by 18:00). So "240000" is unconfirmed, and rejecting it is the safer
// reading: a misread value then fails loudly as a *MalformedError naming
// the field, which the layers above already handle (stale copy, rejected
// bar), instead of stamping a quote on the wrong day; and one instant
// keeps one spelling (000000, not also 240000 the day before). Signs and
// spaces inside the six characters are rejected for the same reason.
func parseClock(s string) (time.Duration, error) {
	if len(s) != 6 {
		return 0, errSyntax
	}
	var hms [3]int
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, errSyntax
		}
		hms[i/2] = hms[i/2]*10 + int(s[i]-'0')
	}
	if hms[0] > 23 || hms[1] > 59 || hms[2] > 59 {
		return 0, errSyntax
	}
	return time.Duration(hms[0])*time.Hour + time.Duration(hms[1])*time.Minute + time.Duration(hms[2])*time.Second, nil
}

func ymd(t time.Time) string { return t.In(kisfeed.KST).Format("20060102") }
