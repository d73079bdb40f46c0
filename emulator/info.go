package emulator

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// Product info: search-stock-info and search-info (REFERENCE §d.7, §d.8).

// noData is the product-info backend's "nothing found" (rt_cd "7",
// python-kis info.py). The msg_cd/msg1 pair is not documented; KIOK0560
// follows the backend's KIOK numbering.
func noData() *reply {
	return &reply{status: http.StatusOK, rtCd: "7", msgCd: msgCdNoData, msg1: msg1NoData}
}

func kiokReply(o obj) *reply {
	return &reply{status: http.StatusOK, rtCd: "0", msgCd: msgCdKIOK, msg1: msg1KIOK, blocks: []block{one("output", o)}}
}

// product reads PRDT_TYPE_CD and PDNO and returns the code asked for and
// whether it can be a stock. Only stocks (300) exist in the synthetic
// market; other product types find nothing.
func (d *dataReq) product() (code string, stock bool) {
	pt, ok1 := d.require("PRDT_TYPE_CD")
	pd, ok2 := d.require("PDNO")
	if !ok1 || !ok2 {
		return "", false
	}
	if len(pt) != 3 || len(pd) == 0 || len(pd) > 12 {
		d.fail(errField())
		return "", false
	}
	// The 12-character product number form "00000A005930" is accepted too.
	if len(pd) == 12 && strings.HasPrefix(pd, "00000A") {
		pd = pd[6:]
	}
	return pd, pt == "300" && validCode(pd)
}

// productStock finds the stock a product-info call (search-stock-info,
// search-info) asks for. rep is the parameter error, or the no-data answer
// when the market has no such stock.
func (s *Server) productStock(d *dataReq) (code string, st kisfeed.Stock, info kisfeed.StockInfo, rep *reply) {
	code, stock := d.product()
	if rep := d.failed(); rep != nil {
		return "", st, info, rep
	}
	if !stock {
		return "", st, info, noData()
	}
	st, ok := s.m.Stock(code)
	info, ok2 := s.m.Info(code)
	if !ok || !ok2 {
		return "", st, info, noData()
	}
	return code, st, info, nil
}

func pdno(code string) string {
	if len(code) == 6 {
		return "00000A" + code
	}
	return code
}

func mketID(m kisfeed.Market) (id, excg string) {
	switch m {
	case kisfeed.MarketKOSDAQ:
		return "KSQ", "03"
	case kisfeed.MarketKONEX:
		return "KNX", "05"
	}
	return "STK", "02"
}

// listingDates returns the listing date (from the info, else the master)
// and the same date as the KOSPI or the KOSDAQ listing date, the other
// one blank.
func listingDates(st kisfeed.Stock, info kisfeed.StockInfo) (listed, kospi, kosdaq string) {
	listed = ymd(info.ListingDate)
	if listed == "" {
		listed = ymd(st.ListingDate)
	}
	if st.Market == kisfeed.MarketKOSDAQ {
		return listed, "", listed
	}
	return listed, listed, ""
}

// stockKind returns stck_kind_cd (101 common, 201 preferred, blank for an
// ETF) and etf_dvsn_cd.
func stockKind(st kisfeed.Stock) (kind, etf string) {
	if st.Group == "EF" {
		return "", "1"
	}
	if st.Preferred {
		return "201", "0"
	}
	return "101", "0"
}

// searchStockInfo serves search-stock-info: the wire table of one stock.
func (s *Server) searchStockInfo(d *dataReq) *reply {
	code, st, info, rep := s.productStock(d)
	if rep != nil {
		return rep
	}
	id, excg := mketID(st.Market)
	listed, kospiLst, kosdaqLst := listingDates(st, info)
	kind, etf := stockKind(st)
	qt, _ := s.m.QuoteAt(code, d.now)
	sbst := krx.RoundDown(max(qt.PrevClose*75/100, 1))
	return kiokReply(obj{
		{"pdno", pdno(code)},
		{"prdt_type_cd", "300"},
		{"mket_id_cd", id},
		{"scty_grp_id_cd", st.Group},
		{"excg_dvsn_cd", excg},
		{"setl_mmdd", "12"},
		{"lstg_stqt", itoa(info.ListedShares)},
		{"lstg_cptl_amt", "0"},
		{"cpta", itoa(info.Capital)},
		{"papr", itoa(info.ParValue)},
		{"issu_pric", "0"},
		{"kospi200_item_yn", yn(st.Market == kisfeed.MarketKOSPI && st.Group == "ST" && hash64("k200", code)%4 == 0)},
		{"scts_mket_lstg_dt", kospiLst},
		{"scts_mket_lstg_abol_dt", ""},
		{"kosdaq_mket_lstg_dt", kosdaqLst},
		{"kosdaq_mket_lstg_abol_dt", ""},
		{"frbd_mket_lstg_dt", listed},
		{"frbd_mket_lstg_abol_dt", ""},
		{"reits_kind_cd", ""},
		{"etf_dvsn_cd", etf},
		{"oilf_fund_yn", "N"},
		{"idx_bztp_lcls_cd", "002"},
		{"idx_bztp_mcls_cd", sectorCode(info.Sector)},
		{"idx_bztp_scls_cd", sectorCode(info.Sector)},
		{"stck_kind_cd", kind},
		{"mfnd_opng_dt", ""},
		{"mfnd_end_dt", ""},
		{"dpsi_erlm_cncl_dt", ""},
		{"etf_cu_qty", "0"},
		{"prdt_name", info.FullName},
		{"prdt_name120", info.FullName},
		{"prdt_abrv_name", info.Name},
		{"std_pdno", info.ISIN},
		{"prdt_eng_name", info.EnglishName},
		{"prdt_eng_name120", info.EnglishName},
		{"prdt_eng_abrv_name", info.EnglishName},
		{"dpsi_aptm_erlm_yn", "Y"},
		{"etf_txtn_type_cd", "00"},
		{"etf_type_cd", ""},
		{"lstg_abol_dt", ""},
		{"nwst_odst_dvsn_cd", "1"},
		{"sbst_pric", itoa(sbst)},
		{"thco_sbst_pric", itoa(sbst)},
		{"thco_sbst_pric_chng_dt", ymd(sessionDay(d.now))},
		{"tr_stop_yn", yn(info.Halted)},
		{"admn_item_yn", yn(info.Administrative)},
		{"thdt_clpr", itoa(qt.Price)},
		{"bfdy_clpr", itoa(qt.PrevClose)},
		{"clpr_chng_dt", ymd(sessionDay(d.now))},
		{"std_idst_clsf_cd", sectorCode(info.Sector) + "604"},
		{"std_idst_clsf_cd_name", info.Sector},
		{"idx_bztp_lcls_cd_name", "시가총액규모대"},
		{"idx_bztp_mcls_cd_name", info.Sector},
		{"idx_bztp_scls_cd_name", info.Sector},
		{"ocr_no", ""},
		{"crfd_item_yn", ""},
		{"elec_scty_yn", "Y"},
		{"issu_istt_cd", code[:min(5, len(code))]},
		{"etf_chas_erng_rt_dbnb", "0"},
		{"etf_etn_ivst_heed_item_yn", "N"},
		{"stln_int_rt_dvsn_cd", "01"},
		{"frnr_psnl_lmt_rt", "0.00000000"},
		{"lstg_rqsr_issu_istt_cd", ""},
		{"lstg_rqsr_item_cd", ""},
		{"trst_istt_issu_istt_cd", ""},
		{"cptt_trad_tr_psbl_yn", yn(info.NXTTradable)},
		{"nxt_tr_stop_yn", yn(info.Halted && info.NXTTradable)},
	})
}

// sectorCode is a stable 3-digit code for a sector name.
func sectorCode(sector string) string {
	if sector == "" {
		return "000"
	}
	return strconv.Itoa(int(hash64("sector", sector)%900) + 100)
}

func (s *Server) searchInfo(d *dataReq) *reply {
	code, st, info, rep := s.productStock(d)
	if rep != nil {
		return rep
	}
	clsCd, clsName, ivst, ivstName := "101010", "주권", "1010", "주식"
	if st.Group == "EF" {
		clsCd, clsName, ivst, ivstName = "101020", "ETF", "1020", "ETF"
	}
	return kiokReply(obj{
		{"pdno", pdno(code)},
		{"prdt_type_cd", "300"},
		{"prdt_name", info.FullName},
		{"prdt_name120", info.FullName},
		{"prdt_abrv_name", info.Name},
		{"prdt_eng_name", info.EnglishName},
		{"prdt_eng_name120", info.EnglishName},
		{"prdt_eng_abrv_name", info.EnglishName},
		{"std_pdno", info.ISIN},
		{"shtn_pdno", code},
		{"prdt_sale_stat_cd", ""},
		{"prdt_risk_grad_cd", ""},
		{"prdt_clsf_cd", clsCd},
		{"prdt_clsf_name", clsName},
		{"sale_strt_dt", ""},
		{"sale_end_dt", ""},
		{"wrap_asst_type_cd", ""},
		{"ivst_prdt_type_cd", ivst},
		{"ivst_prdt_type_cd_name", ivstName},
		{"frst_erlm_dt", ymd(info.ListingDate)},
	})
}
