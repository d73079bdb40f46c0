package emulator

import (
	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// inquire-price (REFERENCE §d.1).

func (s *Server) inquirePrice(d *dataReq) *reply {
	code := d.stock()
	if rep := d.failed(); rep != nil {
		return rep
	}
	// An unknown code is not an error at KIS: python-kis detects it by an
	// all-zero output (stck_prpr "0"), so the emulator answers that way.
	return okReply(msg1OKBang, one("output", s.priceOutput(s.snapshot(code, d.now))))
}

// priceFacts are the figures of an inquire-price output that are derived
// rather than read off the quote, computed in named steps so that
// priceOutput is only the wire table.
type priceFacts struct {
	f                       fundamentals
	h                       hilo
	statCode, mktName, crdt string
	shares                  int64
	vwap                    string
	pv                      pivots
	per, pbr, eps, bps      string
	frgnNet, pgtrNet        int64
	capEok, sspr, prevVol   int64
}

// pivots are the pivot and DeMark points from the previous day's bar.
type pivots struct {
	pp, r1, r2, s1, s2, dmr, dms int64
}

// pivotsOf computes the pivots of the previous day's bar; all zero without one.
func pivotsOf(sn *snap) pivots {
	var p pivots
	if sn.hasPrev {
		H, L, C := sn.prev.High, sn.prev.Low, sn.prev.Close
		p.pp = (H + L + C) / 3
		p.r1, p.s1 = 2*p.pp-L, 2*p.pp-H
		p.r2, p.s2 = p.pp+(H-L), p.pp-(H-L)
		x := H + L + 2*C
		p.dmr, p.dms = x/2-L, x/2-H
	}
	return p
}

// priceStatus returns iscd_stat_cls_code, rprs_mrkt_kor_name and
// crdt_able_yn: a halted or administrative stock cannot be bought on credit.
func priceStatus(sn *snap) (statCode, mktName, crdt string) {
	if !sn.known {
		return "00", "", "N"
	}
	switch {
	case sn.st.Halted:
		return "58", string(sn.st.Market), "N"
	case sn.info.Administrative:
		return "51", string(sn.st.Market), "N"
	}
	return "55", string(sn.st.Market), "Y"
}

// vwapOf is wghn_avrg_stck_prc: traded value over volume, the price
// before the first trade.
func vwapOf(q kisfeed.Quote) string {
	if q.Volume > 0 {
		return fixed(float64(q.TradingValue)/float64(q.Volume), 2)
	} else if q.Price > 0 {
		return fixed(float64(q.Price), 2)
	}
	return "0.00"
}

// priceFacts derives what priceOutput needs beyond the quote; an unknown
// stock gets zeros (and marg_rate "0.00").
func (s *Server) priceFacts(sn *snap) priceFacts {
	q, info, st := sn.q, sn.info, sn.st
	p := priceFacts{f: fundamentals{marg: "0.00"}, shares: st.ListedShares, vwap: vwapOf(q), pv: pivotsOf(sn)}
	if sn.known {
		p.f = fundOf(st.Code)
		p.h = s.hilo(sn)
		p.frgnNet = int64(dailyNoise("frgn", st.Code, sn.day) * float64(q.Volume) / 10)
		p.pgtrNet = int64(dailyNoise("pgtr", st.Code, sn.day) * float64(q.Volume) / 10)
	}
	p.statCode, p.mktName, p.crdt = priceStatus(sn)
	if p.shares == 0 {
		p.shares = info.ListedShares
	}
	p.per, p.pbr, p.eps, p.bps = valuation(sn, p.f)
	p.capEok = info.Capital / 100_000_000
	if q.PrevClose > 0 {
		p.sspr = krx.RoundDown(q.PrevClose * 75 / 100)
	}
	if sn.hasPrev {
		p.prevVol = sn.prev.Volume
	}
	return p
}

// priceOutput is inquire-price's output block, fields in KIS's order.
func (s *Server) priceOutput(sn *snap) obj {
	q, info, st := sn.q, sn.info, sn.st
	p := s.priceFacts(sn)
	f, h, pv, shares := p.f, p.h, p.pv, p.shares
	rate := func(hi int64) string {
		if hi == 0 {
			return "0.00"
		}
		return pctChange(q.Price, hi)
	}
	return obj{
		{"iscd_stat_cls_code", p.statCode},
		{"marg_rate", f.marg},
		{"rprs_mrkt_kor_name", p.mktName},
		{"new_hgpr_lwpr_cls_code", ""},
		{"bstp_kor_isnm", info.Sector},
		{"temp_stop_yn", yn(st.Halted)},
		{"oprc_rang_cont_yn", "N"},
		{"clpr_rang_cont_yn", "N"},
		{"crdt_able_yn", p.crdt},
		{"grmn_rate_cls_code", choose(sn.known, "40", "")},
		{"elw_pblc_yn", "N"},
		{"stck_prpr", itoa(q.Price)},
		{"prdy_vrss", itoa(q.Change)},
		{"prdy_vrss_sign", sign(q.Price, q.PrevClose, q.UpperLimit, q.LowerLimit)},
		{"prdy_ctrt", fixed(q.ChangeRate, 2)},
		{"acml_tr_pbmn", itoa(q.TradingValue)},
		{"acml_vol", itoa(q.Volume)},
		{"prdy_vrss_vol_rate", pctChange(q.Volume, p.prevVol)},
		{"stck_oprc", itoa(q.Open)},
		{"stck_hgpr", itoa(q.High)},
		{"stck_lwpr", itoa(q.Low)},
		{"stck_mxpr", itoa(q.UpperLimit)},
		{"stck_llam", itoa(q.LowerLimit)},
		{"stck_sdpr", itoa(q.BasePrice)},
		{"wghn_avrg_stck_prc", p.vwap},
		{"hts_frgn_ehrt", fixed(f.ehrt, 2)},
		{"frgn_ntby_qty", itoa(p.frgnNet)},
		{"pgtr_ntby_qty", itoa(p.pgtrNet)},
		{"pvt_scnd_dmrs_prc", itoa(pv.r2)},
		{"pvt_frst_dmrs_prc", itoa(pv.r1)},
		{"pvt_pont_val", itoa(pv.pp)},
		{"pvt_frst_dmsp_prc", itoa(pv.s1)},
		{"pvt_scnd_dmsp_prc", itoa(pv.s2)},
		{"dmrs_val", itoa(pv.dmr)},
		{"dmsp_val", itoa(pv.dms)},
		{"cpfn", itoa(p.capEok)},
		{"rstc_wdth_prc", itoa(q.UpperLimit - q.BasePrice)},
		{"stck_fcam", itoa(info.ParValue)},
		{"stck_sspr", itoa(p.sspr)},
		{"aspr_unit", itoa(q.TickSize)},
		{"hts_deal_qty_unit_val", choose(sn.known, "1", "0")},
		{"lstn_stcn", itoa(shares)},
		{"hts_avls", itoa(q.Price * shares / 100_000_000)},
		{"per", p.per},
		{"pbr", p.pbr},
		{"stac_month", choose(sn.known, "12", "")},
		{"vol_tnrt", ratio(q.Volume, shares, 2)},
		{"eps", p.eps},
		{"bps", p.bps},
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
		{"cpfn_cnnm", commas(p.capEok) + " 억"},
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
