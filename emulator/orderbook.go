package emulator

import (
	"strconv"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// inquire-asking-price-exp-ccn (REFERENCE §d.2).

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
