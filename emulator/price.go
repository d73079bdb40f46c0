package emulator

import (
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
