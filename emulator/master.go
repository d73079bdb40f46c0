package emulator

import (
	"archive/zip"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/korean"

	"github.com/kisfeed/kisfeed"
)

// Master files (REFERENCE §g): zip archives holding one CP949 text file of
// fixed-width records. Each line is
//
//	code (9, left-aligned, space-padded) · ISIN (12) · Korean name (CP949,
//	space-padded to 40 bytes) · ASCII tail (227 KOSPI / 221 KOSDAQ / 184
//	KONEX) · "\n"
//
// Lines end in "\n" (the official parser reads text mode, so "\r\n" would
// work too; "\n" keeps the tail at the documented width + 1). Numeric tail
// fields are zero-padded, right-aligned; prdy_vol is 0 (the file is built
// once, not per session). Built lazily on first request and cached.

// tailField is one fixed-width tail field.
type tailField struct {
	name  string
	width int
}

var kospiTail = []tailField{
	{"scrt_grp_cls_code", 2}, {"avls_scal_cls_code", 1}, {"bstp_larg_div_code", 4}, {"bstp_medm_div_code", 4},
	{"bstp_smal_div_code", 4}, {"mnin_cls_code_yn", 1}, {"low_current_yn", 1}, {"sprn_strr_nmix_issu_yn", 1},
	{"kospi200_apnt_cls_code", 1}, {"kospi100_issu_yn", 1}, {"kospi50_issu_yn", 1}, {"krx_issu_yn", 1},
	{"etp_prod_cls_code", 1}, {"elw_pblc_yn", 1}, {"krx100_issu_yn", 1}, {"krx_car_yn", 1}, {"krx_smcn_yn", 1},
	{"krx_bio_yn", 1}, {"krx_bank_yn", 1}, {"etpr_undt_objt_co_yn", 1}, {"krx_enrg_chms_yn", 1}, {"krx_stel_yn", 1},
	{"short_over_cls_code", 1}, {"krx_medi_cmnc_yn", 1}, {"krx_cnst_yn", 1}, {"krx_fnnc_svc_yn", 1},
	{"krx_scrt_yn", 1}, {"krx_ship_yn", 1}, {"krx_insu_yn", 1}, {"krx_trnp_yn", 1}, {"sri_nmix_yn", 1},
	{"stck_sdpr", 9}, {"frml_mrkt_deal_qty_unit", 5}, {"ovtm_mrkt_deal_qty_unit", 5}, {"trht_yn", 1},
	{"sltr_yn", 1}, {"mang_issu_yn", 1}, {"mrkt_alrm_cls_code", 2}, {"mrkt_alrm_risk_adnt_yn", 1},
	{"insn_pbnt_yn", 1}, {"byps_lstn_yn", 1}, {"flng_cls_code", 2}, {"fcam_mod_cls_code", 2}, {"icic_cls_code", 2},
	{"marg_rate", 3}, {"crdt_able", 1}, {"crdt_days", 3}, {"prdy_vol", 12}, {"stck_fcam", 12},
	{"stck_lstn_date", 8}, {"lstn_stcn", 15}, {"cpfn", 21}, {"stac_month", 2}, {"po_prc", 7},
	{"prst_cls_code", 1}, {"ssts_hot_yn", 1}, {"stange_runup_yn", 1}, {"krx300_issu_yn", 1},
	{"kospi_issu_yn", 1}, {"sale_account", 9}, {"bsop_prfi", 9}, {"op_prfi", 9}, {"thtr_ntin", 5},
	{"roe", 9}, {"base_date", 8}, {"prdy_avls_scal", 9}, {"grp_code", 3}, {"co_crdt_limt_over_yn", 1},
	{"secu_lend_able_yn", 1}, {"stln_able_yn", 1},
}

var kosdaqTail = []tailField{
	{"scrt_grp_cls_code", 2}, {"avls_scal_cls_code", 1}, {"bstp_larg_div_code", 4}, {"bstp_medm_div_code", 4},
	{"bstp_smal_div_code", 4}, {"vntr_issu_yn", 1}, {"low_current_yn", 1}, {"krx_issu_yn", 1},
	{"etp_prod_cls_code", 1}, {"krx100_issu_yn", 1}, {"krx_car_yn", 1}, {"krx_smcn_yn", 1}, {"krx_bio_yn", 1},
	{"krx_bank_yn", 1}, {"etpr_undt_objt_co_yn", 1}, {"krx_enrg_chms_yn", 1}, {"krx_stel_yn", 1},
	{"short_over_cls_code", 1}, {"krx_medi_cmnc_yn", 1}, {"krx_cnst_yn", 1}, {"invt_alrm_yn", 1},
	{"krx_scrt_yn", 1}, {"krx_ship_yn", 1}, {"krx_insu_yn", 1}, {"krx_trnp_yn", 1}, {"ksq150_nmix_yn", 1},
	{"stck_sdpr", 9}, {"frml_mrkt_deal_qty_unit", 5}, {"ovtm_mrkt_deal_qty_unit", 5}, {"trht_yn", 1},
	{"sltr_yn", 1}, {"mang_issu_yn", 1}, {"mrkt_alrm_cls_code", 2}, {"mrkt_alrm_risk_adnt_yn", 1},
	{"insn_pbnt_yn", 1}, {"byps_lstn_yn", 1}, {"flng_cls_code", 2}, {"fcam_mod_cls_code", 2}, {"icic_cls_code", 2},
	{"marg_rate", 3}, {"crdt_able", 1}, {"crdt_days", 3}, {"prdy_vol", 12}, {"stck_fcam", 12},
	{"stck_lstn_date", 8}, {"lstn_stcn", 15}, {"cpfn", 21}, {"stac_month", 2}, {"po_prc", 7},
	{"prst_cls_code", 1}, {"ssts_hot_yn", 1}, {"stange_runup_yn", 1}, {"krx300_issu_yn", 1},
	{"sale_account", 9}, {"bsop_prfi", 9}, {"op_prfi", 9}, {"thtr_ntin", 5}, {"roe", 9}, {"base_date", 8},
	{"prdy_avls_scal", 9}, {"grp_code", 3}, {"co_crdt_limt_over_yn", 1}, {"secu_lend_able_yn", 1},
	{"stln_able_yn", 1},
}

var konexTail = []tailField{
	{"scrt_grp_cls_code", 2}, {"stck_sdpr", 9}, {"frml_mrkt_deal_qty_unit", 5}, {"ovtm_mrkt_deal_qty_unit", 5},
	{"trht_yn", 1}, {"sltr_yn", 1}, {"mang_issu_yn", 1}, {"mrkt_alrm_cls_code", 2}, {"mrkt_alrm_risk_adnt_yn", 1},
	{"insn_pbnt_yn", 1}, {"byps_lstn_yn", 1}, {"flng_cls_code", 2}, {"fcam_mod_cls_code", 2}, {"icic_cls_code", 2},
	{"marg_rate", 3}, {"crdt_able", 1}, {"crdt_days", 3}, {"prdy_vol", 12}, {"stck_fcam", 12},
	{"stck_lstn_date", 8}, {"lstn_stcn", 15}, {"cpfn", 21}, {"stac_month", 2}, {"po_prc", 7},
	{"prst_cls_code", 1}, {"ssts_hot_yn", 1}, {"stange_runup_yn", 1}, {"krx300_issu_yn", 1},
	{"sale_account", 9}, {"bsop_prfi", 9}, {"op_prfi", 9}, {"thtr_ntin", 5}, {"roe", 9}, {"base_date", 8},
	{"prdy_avls_scal", 9}, {"co_crdt_limt_over_yn", 1}, {"secu_lend_able_yn", 1}, {"stln_able_yn", 1},
}

// numericTail lists the zero-padded numeric tail fields.
var numericTail = map[string]bool{
	"stck_sdpr": true, "frml_mrkt_deal_qty_unit": true, "ovtm_mrkt_deal_qty_unit": true, "marg_rate": true,
	"crdt_days": true, "prdy_vol": true, "stck_fcam": true, "lstn_stcn": true, "cpfn": true, "po_prc": true,
	"sale_account": true, "bsop_prfi": true, "op_prfi": true, "thtr_ntin": true, "roe": true,
	"prdy_avls_scal": true,
}

// masterNameWidth is the name's width in CP949 bytes (R-bt: bytes 21–60).
const masterNameWidth = 40

type masterFile struct {
	once sync.Once
	b    []byte
	err  error
}

var masterFiles = []struct {
	url    string
	member string
	market kisfeed.Market
	tail   []tailField
}{
	{"/common/master/kospi_code.mst.zip", "kospi_code.mst", kisfeed.MarketKOSPI, kospiTail},
	{"/common/master/kosdaq_code.mst.zip", "kosdaq_code.mst", kisfeed.MarketKOSDAQ, kosdaqTail},
	{"/common/master/konex_code.mst.zip", "konex_code.mst", kisfeed.MarketKONEX, konexTail},
}

func (s *Server) serveMaster(w http.ResponseWriter, r *http.Request) {
	for i, mf := range masterFiles {
		if r.URL.Path != mf.url {
			continue
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, err := s.masterZip(i)
		if err != nil {
			s.log.Error("master file", "file", mf.member, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(b)
		}
		return
	}
	http.NotFound(w, r)
}

// MasterFile returns the zipped master file for a market (KOSPI, KOSDAQ or
// KONEX), as served at /common/master/<market>_code.mst.zip.
func (s *Server) MasterFile(m kisfeed.Market) ([]byte, error) {
	for i, mf := range masterFiles {
		if mf.market == m {
			return s.masterZip(i)
		}
	}
	return nil, fmt.Errorf("master file: market %q: want KOSPI, KOSDAQ or KONEX", m)
}

func (s *Server) masterZip(i int) ([]byte, error) {
	mf := &s.masters[i]
	mf.once.Do(func() {
		text := s.masterText(masterFiles[i].market, masterFiles[i].tail)
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		fw, err := zw.CreateHeader(&zip.FileHeader{
			Name: masterFiles[i].member, Method: zip.Deflate,
			Modified: time.Date(2020, 1, 2, 0, 0, 0, 0, kisfeed.KST), // reproducible bytes
		})
		if err == nil {
			_, err = fw.Write(text)
		}
		if err == nil {
			err = zw.Close()
		}
		mf.b, mf.err = buf.Bytes(), err
	})
	return mf.b, mf.err
}

// masterText renders the records of one market.
func (s *Server) masterText(m kisfeed.Market, tail []tailField) []byte {
	var out []byte
	for _, st := range s.m.Universe() {
		if st.Market != m {
			continue
		}
		info, _ := s.m.Info(st.Code)
		out = append(out, padRight(st.Code, 9)...)
		out = append(out, padRight(st.ISIN, 12)...)
		out = append(out, cp949Name(st.Name, masterNameWidth)...)
		vals := masterValues(st, info)
		for _, f := range tail {
			out = append(out, fixedWidth(vals[f.name], f.width, numericTail[f.name])...)
		}
		out = append(out, '\n')
	}
	return out
}

func masterValues(st kisfeed.Stock, info kisfeed.StockInfo) map[string]string {
	capEok := st.BasePrice * st.ListedShares / 100_000_000
	avls := "3"
	switch {
	case st.Group != "ST":
		avls = "0"
	case capEok >= 10_000:
		avls = "1"
	case capEok >= 2_000:
		avls = "2"
	}
	etp := "0"
	if st.Group == "EF" {
		etp = "2"
	}
	prst := "0"
	if st.Preferred {
		prst = "1"
	}
	fcam := info.ParValue
	if fcam == 0 && st.Group == "ST" {
		fcam = 500
	}
	h := hash64("master", st.Code)
	sector := sectorCode(info.Sector)
	return map[string]string{
		"scrt_grp_cls_code":       st.Group,
		"avls_scal_cls_code":      avls,
		"bstp_larg_div_code":      "0001",
		"bstp_medm_div_code":      "0" + sector,
		"bstp_smal_div_code":      "0" + sector,
		"kospi200_apnt_cls_code":  "0",
		"etp_prod_cls_code":       etp,
		"short_over_cls_code":     "0",
		"stck_sdpr":               itoa(st.BasePrice),
		"frml_mrkt_deal_qty_unit": "1",
		"ovtm_mrkt_deal_qty_unit": "1",
		"trht_yn":                 yn(st.Halted),
		"mang_issu_yn":            yn(info.Administrative),
		"mrkt_alrm_cls_code":      "00",
		"flng_cls_code":           "00",
		"fcam_mod_cls_code":       "00",
		"icic_cls_code":           "00",
		"marg_rate":               fundOf(st.Code).marg[:len(fundOf(st.Code).marg)-3],
		"crdt_able":               yn(!st.Halted && st.Group == "ST"),
		"crdt_days":               "150",
		"prdy_vol":                "0",
		"stck_fcam":               itoa(fcam),
		"stck_lstn_date":          ymd(st.ListingDate),
		"lstn_stcn":               itoa(st.ListedShares / 1000),
		"cpfn":                    itoa(info.Capital),
		"stac_month":              "12",
		"po_prc":                  "0",
		"prst_cls_code":           prst,
		"kospi_issu_yn":           yn(st.Group == "ST"),
		"sale_account":            itoa(int64(h % 100_000)),
		"bsop_prfi":               itoa(int64(h >> 17 % 10_000)),
		"op_prfi":                 itoa(int64(h >> 31 % 10_000)),
		"thtr_ntin":               itoa(int64(h >> 45 % 10_000)),
		"roe":                     itoa(int64(h >> 7 % 3_000)),
		"base_date":               "20241231",
		"prdy_avls_scal":          itoa(capEok),
		"grp_code":                "000",
		"secu_lend_able_yn":       "Y",
		"stln_able_yn":            yn(st.Group == "ST"),
	}
}

func padRight(s string, w int) string {
	if len(s) >= w {
		return s[:w]
	}
	return s + strings.Repeat(" ", w-len(s))
}

// fixedWidth renders v in w ASCII bytes: numbers zero-padded on the left
// (capped at all nines), text space-padded on the right; Y/N flags default
// to N.
func fixedWidth(v string, w int, numeric bool) string {
	if numeric {
		if v == "" {
			v = "0"
		}
		if len(v) > w {
			return strings.Repeat("9", w)
		}
		return strings.Repeat("0", w-len(v)) + v
	}
	if v == "" && w == 1 {
		v = "N"
	}
	return padRight(v, w)
}

// cp949Name encodes name in CP949, truncated at a character boundary and
// space-padded to exactly w bytes; characters CP949 lacks become '?'.
func cp949Name(name string, w int) []byte {
	enc := korean.EUCKR.NewEncoder()
	out := make([]byte, 0, w)
	for _, r := range name {
		var b []byte
		if r < utf8.RuneSelf {
			b = []byte{byte(r)}
		} else {
			e, err := enc.Bytes([]byte(string(r)))
			if err != nil {
				e = []byte{'?'}
			}
			b = e
		}
		if len(out)+len(b) > w {
			break
		}
		out = append(out, b...)
	}
	for len(out) < w {
		out = append(out, ' ')
	}
	return out
}
