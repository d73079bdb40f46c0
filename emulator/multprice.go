package emulator

import (
	"strconv"
	"strings"
	"time"

	"github.com/kisfeed/kisfeed"
)

// intstock-multprice (REFERENCE §d.9).

const maxMultCodes = 30

func (s *Server) intstockMultprice(d *dataReq) *reply {
	// Pairs n = 1…30; pair 1 is required, the others are sent only when
	// used. A pair beyond 30 is an error rather than silently dropped.
	for k := range d.q {
		ku := strings.ToUpper(k)
		if n, ok := strings.CutPrefix(ku, "FID_INPUT_ISCD_"); ok {
			if i, err := strconv.Atoi(n); err != nil || i < 1 || i > maxMultCodes {
				return errField()
			}
		}
	}
	out := []obj{}
	for n := 1; n <= maxMultCodes; n++ {
		ns := strconv.Itoa(n)
		iscdKey, mktKey := "FID_INPUT_ISCD_"+ns, "FID_COND_MRKT_DIV_CODE_"+ns
		if _, ok := d.param(iscdKey); !ok {
			if n == 1 {
				return errMissing(iscdKey)
			}
			continue
		}
		d.marketCode(mktKey)
		code := d.code(iscdKey)
		if rep := d.failed(); rep != nil {
			return rep
		}
		out = append(out, s.multRow(code, d.now))
	}
	return okReply(msg1OK, rows("output", out))
}

// multRow is one multprice row; an unknown code keeps its position with
// zero values so the client can match rows to codes.
func (s *Server) multRow(code string, now time.Time) obj {
	sn := s.snapshot(code, now)
	q := sn.q
	var book kisfeed.OrderBook
	hourCls := ""
	if sn.known {
		book, _ = s.m.OrderBookAt(code, now)
		hourCls = "0"
	}
	hgRate := "0.00"
	if q.Open > 0 {
		hgRate = pctChange(q.High, q.Open)
	}
	return obj{
		{"kospi_kosdaq_cls_name", marketKorName(sn.st.Market)},
		{"mrkt_trtm_cls_name", ""},
		{"hour_cls_code", hourCls},
		{"inter_shrn_iscd", code},
		{"inter_kor_isnm", sn.st.Name},
		{"inter2_prpr", itoa(q.Price)},
		{"inter2_prdy_vrss", itoa(q.Change)},
		{"prdy_vrss_sign", sign(q.Price, q.PrevClose, q.UpperLimit, q.LowerLimit)},
		{"prdy_ctrt", fixed(q.ChangeRate, 2)},
		{"acml_vol", itoa(q.Volume)},
		{"inter2_oprc", itoa(q.Open)},
		{"inter2_hgpr", itoa(q.High)},
		{"inter2_lwpr", itoa(q.Low)},
		{"inter2_llam", itoa(q.LowerLimit)},
		{"inter2_mxpr", itoa(q.UpperLimit)},
		{"inter2_askp", itoa(book.Asks[0].Price)},
		{"inter2_bidp", itoa(book.Bids[0].Price)},
		{"seln_rsqn", itoa(book.Asks[0].Quantity)},
		{"shnu_rsqn", itoa(book.Bids[0].Quantity)},
		{"total_askp_rsqn", itoa(book.TotalAskQty)},
		{"total_bidp_rsqn", itoa(book.TotalBidQty)},
		{"acml_tr_pbmn", itoa(q.TradingValue)},
		{"inter2_prdy_clpr", itoa(q.PrevClose)},
		{"oprc_vrss_hgpr_rate", hgRate},
		{"intr_antc_cntg_vrss", "0"},
		{"intr_antc_cntg_vrss_sign", "3"},
		{"intr_antc_cntg_prdy_ctrt", "0.00"},
		{"intr_antc_vol", "0"},
		{"inter2_sdpr", itoa(q.BasePrice)},
	}
}
