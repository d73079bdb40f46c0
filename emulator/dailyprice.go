package emulator

// inquire-daily-price (REFERENCE §d.6).

func (s *Server) inquireDailyPrice(d *dataReq) *reply {
	code := d.stock()
	period := d.enum("FID_PERIOD_DIV_CODE", "D", "W", "M")
	d.enum("FID_ORG_ADJ_PRC", "0", "1")
	if rep := d.failed(); rep != nil {
		return rep
	}
	sn := s.snapshot(code, d.now)
	out := []obj{}
	if sn.known {
		// More than dailyPriceRows periods back, so every row served has
		// its previous period's volume.
		from := sn.day.AddDate(0, 0, -80) // ≥ 31 trading days
		switch period {
		case "W":
			from = sn.day.AddDate(0, 0, -7*33)
		case "M":
			from = sn.day.AddDate(-3, 0, -80)
		}
		bars := s.periodBars(sn, from, sn.day, period)
		f := fundOf(code)
		for i := len(bars) - 1; i >= 0 && len(out) < dailyPriceRows; i-- {
			b := bars[i]
			change := b.Close - b.prevClose
			prevVol := int64(0)
			if i > 0 {
				prevVol = bars[i-1].Volume
			}
			ehrt := f.ehrt + dailyNoise("ehrt", code, b.Time)*0.5
			out = append(out, obj{
				{"stck_bsop_date", ymd(b.Time)},
				{"stck_oprc", itoa(b.Open)},
				{"stck_hgpr", itoa(b.High)},
				{"stck_lwpr", itoa(b.Low)},
				{"stck_clpr", itoa(b.Close)},
				{"acml_vol", itoa(b.Volume)},
				{"prdy_vrss_vol_rate", pctChange(b.Volume, prevVol)},
				{"prdy_vrss", itoa(change)},
				{"prdy_vrss_sign", b.sign()},
				{"prdy_ctrt", pctChange(b.Close, b.prevClose)},
				{"hts_frgn_ehrt", fixed(max(ehrt, 0), 2)},
				{"frgn_ntby_qty", itoa(int64(dailyNoise("frgn", code, b.Time) * float64(b.Volume) / 10))},
				{"flng_cls_code", "00"},
				{"acml_prtt_rate", "1.00"},
			})
		}
	}
	return okReply(msg1OK, rows("output", out))
}
