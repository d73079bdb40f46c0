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

// tradeInts maps H0STCNT0 integer fields to the Trade fields they fill;
// names are the KIS field names errors report.
var tradeInts = [...]struct {
	idx  int
	name string
	set  func(*kisfeed.Trade, int64)
}{
	{tPrice, "STCK_PRPR", func(t *kisfeed.Trade, v int64) { t.Price = v }},
	{tChange, "PRDY_VRSS", func(t *kisfeed.Trade, v int64) { t.Change = v }},
	{tOpen, "STCK_OPRC", func(t *kisfeed.Trade, v int64) { t.Open = v }},
	{tHigh, "STCK_HGPR", func(t *kisfeed.Trade, v int64) { t.High = v }},
	{tLow, "STCK_LWPR", func(t *kisfeed.Trade, v int64) { t.Low = v }},
	{tAsk, "ASKP1", func(t *kisfeed.Trade, v int64) { t.Ask = v }},
	{tBid, "BIDP1", func(t *kisfeed.Trade, v int64) { t.Bid = v }},
	{tVolume, "CNTG_VOL", func(t *kisfeed.Trade, v int64) { t.Volume = v }},
	{tCumVolume, "ACML_VOL", func(t *kisfeed.Trade, v int64) { t.CumVolume = v }},
	{tCumValue, "ACML_TR_PBMN", func(t *kisfeed.Trade, v int64) { t.CumValue = v }},
	{tAskQty, "ASKP_RSQN1", func(t *kisfeed.Trade, v int64) { t.AskQty = v }},
	{tBidQty, "BIDP_RSQN1", func(t *kisfeed.Trade, v int64) { t.BidQty = v }},
	{tTotalAsk, "TOTAL_ASKP_RSQN", func(t *kisfeed.Trade, v int64) { t.TotalAskQty = v }},
	{tTotalBid, "TOTAL_BIDP_RSQN", func(t *kisfeed.Trade, v int64) { t.TotalBidQty = v }},
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
	*t = kisfeed.Trade{Code: p.code(f[tCode]), Time: at}
	for _, fd := range tradeInts {
		v, ok := parseInt(f[fd.idx])
		if !ok {
			return frameErr(ReasonNumber, tr, fd.name, f[fd.idx], "want an integer")
		}
		fd.set(t, v)
	}
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

// bookInts are the H0STASP0 scalar fields past the levels.
var bookInts = [...]struct {
	idx  int
	name string
	set  func(*kisfeed.Book, int64)
}{
	{bTotalAsk, "TOTAL_ASKP_RSQN", func(b *kisfeed.Book, v int64) { b.TotalAskQty = v }},
	{bTotalBid, "TOTAL_BIDP_RSQN", func(b *kisfeed.Book, v int64) { b.TotalBidQty = v }},
	{bExpPrice, "ANTC_CNPR", func(b *kisfeed.Book, v int64) { b.ExpectedPrice = v }},
	{bExpQty, "ANTC_CNQN", func(b *kisfeed.Book, v int64) { b.ExpectedQty = v }},
	{bExpVolume, "ANTC_VOL", func(b *kisfeed.Book, v int64) { b.ExpectedVolume = v }},
	{bCumVolume, "ACML_VOL", func(b *kisfeed.Book, v int64) { b.CumVolume = v }},
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
	for _, fd := range bookInts {
		v, ok := parseInt(f[fd.idx])
		if !ok {
			return frameErr(ReasonNumber, tr, fd.name, f[fd.idx], "want an integer")
		}
		fd.set(b, v)
	}
	return nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return "10"
}
