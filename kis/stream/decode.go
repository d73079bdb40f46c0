package stream

import (
	"time"

	"github.com/kisfeed/kisfeed"
)

// Field positions of H0STCNT0 (REFERENCE §h.6); H0UNCNT0 shares them.
const (
	tCode       = 0  // MKSC_SHRN_ISCD
	tHour       = 1  // STCK_CNTG_HOUR
	tPrice      = 2  // STCK_PRPR
	tChange     = 4  // PRDY_VRSS
	tRate       = 5  // PRDY_CTRT
	tVWAP       = 6  // WGHN_AVRG_STCK_PRC
	tOpen       = 7  // STCK_OPRC
	tHigh       = 8  // STCK_HGPR
	tLow        = 9  // STCK_LWPR
	tAsk        = 10 // ASKP1
	tBid        = 11 // BIDP1
	tVolume     = 12 // CNTG_VOL
	tCumVolume  = 13 // ACML_VOL
	tCumValue   = 14 // ACML_TR_PBMN
	tStrength   = 18 // CTTR
	tSide       = 21 // CCLD_DVSN
	tDate       = 33 // BSOP_DATE
	tHalted     = 35 // TRHT_YN
	tAskQty     = 36 // ASKP_RSQN1
	tBidQty     = 37 // BIDP_RSQN1
	tTotalAsk   = 38 // TOTAL_ASKP_RSQN
	tTotalBid   = 39 // TOTAL_BIDP_RSQN
	tHourClass  = 43 // HOUR_CLS_CODE
	tradeWidth  = 46
	bHour       = 1  // BSOP_HOUR
	bAsk1       = 3  // ASKP1 … ASKP10 at 3–12
	bBid1       = 13 // BIDP1 … BIDP10 at 13–22
	bAskQty1    = 23 // ASKP_RSQN1 … at 23–32
	bBidQty1    = 33 // BIDP_RSQN1 … at 33–42
	bTotalAsk   = 43 // TOTAL_ASKP_RSQN
	bTotalBid   = 44 // TOTAL_BIDP_RSQN
	bExpPrice   = 47 // ANTC_CNPR
	bExpQty     = 48 // ANTC_CNQN
	bExpVolume  = 49 // ANTC_VOL
	bCumVolume  = 53 // ACML_VOL
	bookWidth   = 59
	maxCodeSize = 12 // a tr_key longer than this is not a stock code
)

// intField is an integer field of a record: its position and the KIS
// name errors report.
type intField struct {
	idx  int
	name string
}

// tradeInts are the H0STCNT0 integer fields, in the order decodeTrade
// assigns them. (A table of setter funcs would be shorter, but calling
// through a func value makes the Trade escape: one allocation per record.)
var tradeInts = [...]intField{
	{tPrice, "STCK_PRPR"},
	{tChange, "PRDY_VRSS"},
	{tOpen, "STCK_OPRC"},
	{tHigh, "STCK_HGPR"},
	{tLow, "STCK_LWPR"},
	{tAsk, "ASKP1"},
	{tBid, "BIDP1"},
	{tVolume, "CNTG_VOL"},
	{tCumVolume, "ACML_VOL"},
	{tCumValue, "ACML_TR_PBMN"},
	{tAskQty, "ASKP_RSQN1"},
	{tBidQty, "BIDP_RSQN1"},
	{tTotalAsk, "TOTAL_ASKP_RSQN"},
	{tTotalBid, "TOTAL_BIDP_RSQN"},
}

// decodeTrade fills t from one H0STCNT0 record (at least 46 fields; the
// caller checked the width). Fields past 46 are ignored.
func (p *parser) decodeTrade(tr string, f [][]byte, t *kisfeed.Trade) error {
	if err := checkCode(tr, f[tCode]); err != nil {
		return err
	}
	at, ok := parseDateTime(f[tDate], f[tHour])
	if !ok {
		return frameErr(ReasonNumber, tr, "BSOP_DATE+STCK_CNTG_HOUR", append(append([]byte{}, f[tDate]...), f[tHour]...), "want YYYYMMDD and HHMMSS")
	}
	var v [len(tradeInts)]int64
	if err := parseInts(tr, f, tradeInts[:], v[:]); err != nil {
		return err
	}
	*t = kisfeed.Trade{Code: p.code(f[tCode]), Time: at,
		Price: v[0], Change: v[1], Open: v[2], High: v[3], Low: v[4], Ask: v[5], Bid: v[6],
		Volume: v[7], CumVolume: v[8], CumValue: v[9], AskQty: v[10], BidQty: v[11],
		TotalAskQty: v[12], TotalBidQty: v[13]}
	var err error
	if t.ChangeRate, err = floatField(tr, "PRDY_CTRT", f[tRate]); err != nil {
		return err
	}
	if t.VWAP, err = floatField(tr, "WGHN_AVRG_STCK_PRC", f[tVWAP]); err != nil {
		return err
	}
	if t.Strength, err = floatField(tr, "CTTR", f[tStrength]); err != nil {
		return err
	}
	t.Side = side(f[tSide])
	t.Halted = len(f[tHalted]) == 1 && f[tHalted][0] == 'Y'
	t.Expected = len(f[tHourClass]) > 0 && string(f[tHourClass]) != "0"
	return nil
}

func floatField(tr, name string, b []byte) (float64, error) {
	v, ok := parseFloat(b)
	if !ok {
		return 0, frameErr(ReasonNumber, tr, name, b, "want a decimal")
	}
	return v, nil
}

// side reads CCLD_DVSN (H0UNCNT0: CNTG_CLS_CODE): 1 buy, 5 sell, 3 pre-open.
func side(b []byte) kisfeed.Side {
	if len(b) != 1 {
		return kisfeed.SideUnknown
	}
	switch b[0] {
	case '1':
		return kisfeed.SideBuy
	case '5':
		return kisfeed.SideSell
	case '3':
		return kisfeed.SidePreOpen
	}
	return kisfeed.SideUnknown
}

func checkCode(tr string, b []byte) error {
	if len(b) == 0 || len(b) > maxCodeSize {
		return frameErr(ReasonNumber, tr, "MKSC_SHRN_ISCD", b, "want a stock code")
	}
	return nil
}

// bookInts are the H0STASP0 scalar fields past the levels, in the order
// decodeBook assigns them.
var bookInts = [...]intField{
	{bTotalAsk, "TOTAL_ASKP_RSQN"},
	{bTotalBid, "TOTAL_BIDP_RSQN"},
	{bExpPrice, "ANTC_CNPR"},
	{bExpQty, "ANTC_CNQN"},
	{bExpVolume, "ANTC_VOL"},
	{bCumVolume, "ACML_VOL"},
}

// levelNames are the KIS names of the level fields, for errors.
var levelNames = [4]string{"ASKP", "BIDP", "ASKP_RSQN", "BIDP_RSQN"}

// decodeBook fills b from one H0STASP0 record (at least 59 fields). KIS
// sends only the time of day; day is the KST date the book belongs to.
func (p *parser) decodeBook(tr string, f [][]byte, day time.Time, b *kisfeed.Book) error {
	if err := checkCode(tr, f[tCode]); err != nil {
		return err
	}
	h, m, s, ok := parseClock(f[bHour])
	if !ok {
		return frameErr(ReasonNumber, tr, "BSOP_HOUR", f[bHour], "want HHMMSS")
	}
	y, mo, d := day.Date()
	*b = kisfeed.Book{Code: p.code(f[tCode]), Time: time.Date(y, mo, d, h, m, s, 0, kisfeed.KST)}
	for i := range kisfeed.BookDepth {
		for g, start := range [4]int{bAsk1, bBid1, bAskQty1, bBidQty1} {
			v, ok := parseInt(f[start+i])
			if !ok {
				return frameErr(ReasonNumber, tr, levelNames[g]+itoa(i+1), f[start+i], "want an integer")
			}
			switch g {
			case 0:
				b.Asks[i].Price = v
			case 1:
				b.Bids[i].Price = v
			case 2:
				b.Asks[i].Quantity = v
			case 3:
				b.Bids[i].Quantity = v
			}
		}
	}
	var v [len(bookInts)]int64
	if err := parseInts(tr, f, bookInts[:], v[:]); err != nil {
		return err
	}
	b.TotalAskQty, b.TotalBidQty, b.ExpectedPrice, b.ExpectedQty, b.ExpectedVolume, b.CumVolume =
		v[0], v[1], v[2], v[3], v[4], v[5]
	return nil
}

// parseInts reads the integer fields of a record into out.
func parseInts(tr string, f [][]byte, fields []intField, out []int64) error {
	for i, fd := range fields {
		v, ok := parseInt(f[fd.idx])
		if !ok {
			return frameErr(ReasonNumber, tr, fd.name, f[fd.idx], "want an integer")
		}
		out[i] = v
	}
	return nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return "10"
}
