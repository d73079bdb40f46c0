package stream

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
)

// ErrFrame is matched (errors.Is) by every [*FrameError]: a data frame the
// parser could not read. The session that received it is kept.
var ErrFrame = errors.New("kis stream: unreadable frame")

// ErrEncrypted is matched by the [*FrameError] of an encrypted frame
// ("1|..."). KIS encrypts only account TRs (execution notices), which this
// client never registers, so it holds no key and rejects them.
var ErrEncrypted = errors.New("kis stream: encrypted frame and no key")

// The reasons a [FrameError] carries; they are the values of the
// parse-error metric's reason label, so the set is small and fixed.
const (
	ReasonHeader    = "header"     // not "0|TR|NNN|payload"
	ReasonCount     = "count"      // record count not a number, 0, or not dividing the fields
	ReasonWidth     = "width"      // records narrower than the TR's known layout
	ReasonNumber    = "number"     // a known numeric, date or time field is not one
	ReasonUnknownTR = "unknown_tr" // a TR this client has no layout for
	ReasonEncrypted = "encrypted"  // "1|..." and no key
)

// FrameError is a data frame the parser could not read. It carries only
// market data (never a key), cut short.
type FrameError struct {
	Reason string // one of the Reason constants
	TrID   string // the frame's TR, when it got that far
	Field  string // the field that failed (ReasonNumber)
	Value  string // the offending text, at most 40 bytes
	Detail string // what was expected
}

// Error describes the failure.
func (e *FrameError) Error() string {
	var b bytes.Buffer
	b.WriteString("kis stream: frame")
	if e.TrID != "" {
		b.WriteString(" " + e.TrID)
	}
	b.WriteString(": " + e.Reason)
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	if e.Value != "" || e.Field != "" {
		fmt.Fprintf(&b, " %q", e.Value)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// Is makes every FrameError match [ErrFrame], and an encrypted one
// [ErrEncrypted] too.
func (e *FrameError) Is(target error) bool {
	return target == ErrFrame || (target == ErrEncrypted && e.Reason == ReasonEncrypted)
}

func frameErr(reason, tr, field string, value []byte, detail string) *FrameError {
	if len(value) > 40 {
		value = value[:40]
	}
	return &FrameError{Reason: reason, TrID: tr, Field: field, Value: string(value), Detail: detail}
}

// The TRs this client knows (REFERENCE §h.6, §h.7, §h.5).
const (
	TrTradeKRX        = "H0STCNT0" // KRX executions, 46 fields
	TrBookKRX         = "H0STASP0" // KRX 10-level book, 59 fields
	TrTradeIntegrated = "H0UNCNT0" // KRX+NXT executions (real server)
	TrBookIntegrated  = "H0UNASP0" // KRX+NXT book (real server)
)

// layout is what the parser knows of one TR: its kind and the number of
// fields of one record. A record may be wider (KIS appends fields without
// notice); never narrower.
type layout struct {
	tr    string
	kind  Kind
	width int
}

var (
	layoutTradeKRX = layout{TrTradeKRX, KindTrade, tradeWidth}
	layoutBookKRX  = layout{TrBookKRX, KindBook, bookWidth}
	layoutTradeUN  = layout{TrTradeIntegrated, KindTrade, tradeWidth}
	// The integrated book appends 6 mid-price fields (REFERENCE §h.5, from
	// R-csv). Where they sit is unconfirmed; known width 59 is the safe
	// reading: appended at the end they are ignored as unknown trailing
	// fields, and the 59 KRX fields are read as they are.
	layoutBookUN = layout{TrBookIntegrated, KindBook, bookWidth}
)

// layoutOf returns the layout of tr, nil for an unknown TR. The switch on
// string(tr) does not allocate.
func layoutOf(tr []byte) *layout {
	switch string(tr) {
	case TrTradeKRX:
		return &layoutTradeKRX
	case TrBookKRX:
		return &layoutBookKRX
	case TrTradeIntegrated:
		return &layoutTradeUN
	case TrBookIntegrated:
		return &layoutBookUN
	}
	return nil
}

// frame is one data frame cut into records: fields holds count records of
// width fields each, back to back.
type frame struct {
	lay    *layout
	count  int
	width  int
	fields [][]byte
}

// record returns the fields of record i.
func (f *frame) record(i int) [][]byte { return f.fields[i*f.width : (i+1)*f.width] }

// wideLog logs once per TR and width that records are wider than the known
// layout; shared by every session of a client.
type wideLog struct {
	log  *slog.Logger
	seen sync.Map // wideKey → struct{}
}

type wideKey struct {
	tr    string
	width int
}

func (w *wideLog) note(lay *layout, width int) {
	if w == nil {
		return
	}
	if _, dup := w.seen.LoadOrStore(wideKey{lay.tr, width}, struct{}{}); dup {
		return
	}
	if w.log != nil {
		w.log.Warn("kis stream: records wider than the known layout; the extra trailing fields are ignored",
			"tr_id", lay.tr, "known_fields", lay.width, "fields", width, "extra", width-lay.width)
	}
}

// parser cuts frames and decodes records. One per session (the reader
// goroutine): it reuses its field slice and code table and is not safe for
// concurrent use.
type parser struct {
	fields [][]byte
	codes  map[string]string // interned codes: no allocation per record
	wide   *wideLog
}

func newParser(wide *wideLog) *parser {
	return &parser{fields: make([][]byte, 0, 256), codes: map[string]string{}, wide: wide}
}

// maxInterned bounds the code table; beyond it codes are allocated per
// record (a stream registers at most a few hundred codes).
const maxInterned = 4096

func (p *parser) code(b []byte) string {
	if s, ok := p.codes[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(p.codes) < maxInterned {
		p.codes[s] = s
	}
	return s
}

// split cuts a data frame "0|TR|NNN|f^f^…" into records. It splits on '|'
// at most 3 times (the payload is never split on '|'), checks the record
// count against the number of fields, and accepts records wider than the
// known layout when the count divides the fields evenly.
func (p *parser) split(msg []byte) (frame, error) {
	if len(msg) < 2 || msg[1] != '|' {
		return frame{}, frameErr(ReasonHeader, "", "", msg, `want "0|TR|NNN|payload"`)
	}
	encrypted := false
	switch msg[0] {
	case '0':
	case '1':
		encrypted = true
	default:
		return frame{}, frameErr(ReasonHeader, "", "", msg, `want "0|" or "1|" first`)
	}
	rest := msg[2:]
	i := bytes.IndexByte(rest, '|')
	if i < 0 {
		return frame{}, frameErr(ReasonHeader, "", "", msg, "want a tr_id")
	}
	tr := rest[:i]
	rest = rest[i+1:]
	if encrypted {
		return frame{}, frameErr(ReasonEncrypted, string(tr), "", nil, "this client registers no encrypted TR")
	}
	j := bytes.IndexByte(rest, '|')
	if j < 0 {
		return frame{}, frameErr(ReasonHeader, string(tr), "", msg, "want a record count")
	}
	count, ok := atoiDigits(rest[:j])
	if !ok || count <= 0 {
		return frame{}, frameErr(ReasonCount, string(tr), "count", rest[:j], "want a record count ≥ 1")
	}
	lay := layoutOf(tr)
	if lay == nil {
		return frame{}, frameErr(ReasonUnknownTR, string(tr), "", nil, "")
	}
	fields := splitFields(rest[j+1:], p.fields[:0])
	p.fields = fields
	n := len(fields)
	if n%count != 0 {
		return frame{}, frameErr(ReasonCount, lay.tr, "count", rest[:j],
			fmt.Sprintf("%d fields do not split into %d records", n, count))
	}
	width := n / count
	if width < lay.width {
		return frame{}, frameErr(ReasonWidth, lay.tr, "", nil,
			fmt.Sprintf("%d fields per record, want at least %d", width, lay.width))
	}
	if width > lay.width {
		p.wide.note(lay, width)
	}
	return frame{lay: lay, count: count, width: width, fields: fields}, nil
}

// splitFields appends the '^'-separated fields of b to dst. A plain loop:
// fields are a few bytes long, where bytes.IndexByte's per-call setup
// costs more than it saves (it was half the parse time).
func splitFields(b []byte, dst [][]byte) [][]byte {
	start := 0
	for i, c := range b {
		if c == '^' {
			dst = append(dst, b[start:i:i])
			start = i + 1
		}
	}
	return append(dst, b[start:])
}

// atoiDigits reads an unsigned decimal of at most 9 digits.
func atoiDigits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// parseInt reads a signed integer ("-800", "+5", "9365880"); empty means
// no value and reads as 0 (REFERENCE 0.1 #5). A fraction of zeros
// ("57050.00") is accepted, any other fraction is not.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	neg := false
	switch b[0] {
	case '-':
		neg, b = true, b[1:]
	case '+':
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for i, c := range b {
		if c == '.' {
			if i == 0 {
				return 0, false
			}
			for _, z := range b[i+1:] {
				if z != '0' {
					return 0, false
				}
			}
			break
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// pow10 holds the exact powers of ten a float64 can divide by.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseFloat reads a signed decimal ("-1.39", "57050.00"); empty reads as
// 0. Up to 15 digits it divides two exact values, which IEEE rounds
// correctly, so the result equals strconv.ParseFloat's without its
// allocation; longer inputs fall back to strconv.
func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	s := b
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	var mant int64
	digits, frac, dot := 0, 0, false
	for _, c := range s {
		switch {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9':
			mant = mant*10 + int64(c-'0')
			digits++
			if dot {
				frac++
			}
		default:
			return 0, false
		}
		if digits > 15 {
			f, err := strconv.ParseFloat(string(b), 64)
			return f, err == nil
		}
	}
	if digits == 0 {
		return 0, false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

// parseClock reads HHMMSS into seconds of the day.
func parseClock(b []byte) (h, m, s int, ok bool) {
	if len(b) != 6 {
		return 0, 0, 0, false
	}
	v, ok := atoiDigits(b)
	if !ok {
		return 0, 0, 0, false
	}
	h, m, s = v/10000, v/100%100, v%100
	return h, m, s, h < 24 && m < 60 && s < 60
}

// parseDateTime reads YYYYMMDD and HHMMSS into a KST time.
func parseDateTime(date, clock []byte) (time.Time, bool) {
	if len(date) != 8 {
		return time.Time{}, false
	}
	v, ok := atoiDigits(date)
	if !ok {
		return time.Time{}, false
	}
	y, mo, d := v/10000, v/100%100, v%100
	if mo < 1 || mo > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	h, mi, s, ok := parseClock(clock)
	if !ok {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, kisfeed.KST), true
}
