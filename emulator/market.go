package emulator

import (
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// Helpers every quotation output shares: the snapshot of one stock now,
// made-up fundamentals, range extremes and date formats.

// sessionDay is the trading day whose session the instant t shows: t's day
// when KRX trades on it, else the previous trading day (as sim.QuoteAt).
func sessionDay(t time.Time) time.Time {
	d := kisfeed.Day(t)
	if krx.IsTradingDay(d) {
		return d
	}
	return krx.PrevTradingDay(d)
}

// snap gathers what most quotation outputs need about one stock now.
type snap struct {
	known   bool
	st      kisfeed.Stock
	info    kisfeed.StockInfo
	q       kisfeed.Quote
	day     time.Time      // session day
	prev    kisfeed.Candle // previous trading day's bar
	hasPrev bool
}

func (s *Server) snapshot(code string, now time.Time) *snap {
	sn := &snap{st: kisfeed.Stock{Code: code}, info: kisfeed.StockInfo{Code: code}, day: sessionDay(now)}
	st, ok := s.m.Stock(code)
	if !ok {
		return sn
	}
	q, ok := s.m.QuoteAt(code, now)
	if !ok {
		return sn
	}
	sn.known, sn.st, sn.q = true, st, q
	if info, ok := s.m.Info(code); ok {
		sn.info = info
	}
	sn.prev, sn.hasPrev = s.m.DailyBar(code, krx.PrevTradingDay(sn.day))
	return sn
}

// todayStarted reports whether the quote includes bars of the session day
// (false before 09:00 when it still shows the previous close).
func (sn *snap) todayStarted() bool {
	return sn.known && kisfeed.Day(sn.q.Meta.AsOf).Equal(sn.day) && !sn.q.Meta.AsOf.Before(krx.OpenTime(sn.day))
}

// fundamentals are deterministic made-up figures KIS reports that the
// synthetic market does not model (valuation, foreign ownership).
type fundamentals struct {
	per, pbr, ehrt, loan float64
	marg                 string
}

// valuation returns PER, PBR, EPS and BPS at the quoted price from f, the
// stock's fundamentals: "0.00" each for an unknown stock or a zero price.
func valuation(sn *snap, f fundamentals) (per, pbr, eps, bps string) {
	if !sn.known || sn.q.Price <= 0 {
		return "0.00", "0.00", "0.00", "0.00"
	}
	p := float64(sn.q.Price)
	return fixed(f.per, 2), fixed(f.pbr, 2), fixed(float64(int64(p/f.per)), 2), fixed(float64(int64(p/f.pbr)), 2)
}

func hash64(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}

func fundOf(code string) fundamentals {
	h := hash64("fund", code)
	margs := [...]string{"20.00", "30.00", "40.00", "50.00", "100.00"}
	return fundamentals{
		per:  4 + float64(h%3600)/100,      // 4.00 … 39.99
		pbr:  0.3 + float64(h>>12%370)/100, // 0.30 … 3.99
		ehrt: float64(h>>24%6000) / 100,
		loan: float64(h>>40%300) / 100,
		marg: margs[h>>50%uint64(len(margs))],
	}
}

// dailyNoise is a deterministic signed fraction in [-1, 1) for a stock and
// day (foreign/program net buying).
func dailyNoise(kind, code string, day time.Time) float64 {
	h := hash64(kind, code, day.Format("20060102"))
	return float64(h%20001)/10000 - 1
}

// hilo holds 250-day, 52-week and year-to-date extremes of complete bars
// before a session day.
type hilo struct {
	d250H, d250L, w52H, w52L, ytdH, ytdL       int64
	d250HD, d250LD, w52HD, w52LD, ytdHD, ytdLD time.Time
}

// derivedCache memoises hilo per (code, session day). It is cleared when it
// grows past a bound, so a long-running emulator does not grow forever.
type derivedCache struct {
	m sync.Map // string → *hilo
	n atomic.Int64
}

func (s *Server) hilo(sn *snap) hilo {
	key := sn.st.Code + sn.day.Format("20060102")
	if v, ok := s.derived.m.Load(key); ok {
		h := *v.(*hilo)
		mergeToday(&h, sn)
		return h
	}
	bars := s.m.DailyBars(sn.st.Code, sn.day.AddDate(-1, 0, -30), sn.day.AddDate(0, 0, -1))
	var h hilo
	upd := func(hi, lo *int64, hd, ld *time.Time, b kisfeed.Candle) {
		if *hi == 0 || b.High > *hi {
			*hi, *hd = b.High, b.Time
		}
		if *lo == 0 || b.Low < *lo {
			*lo, *ld = b.Low, b.Time
		}
	}
	yearStart := time.Date(sn.day.Year(), 1, 1, 0, 0, 0, 0, kisfeed.KST)
	weekAgo := sn.day.AddDate(0, 0, -364)
	for i, b := range bars {
		if len(bars)-i <= 250 {
			upd(&h.d250H, &h.d250L, &h.d250HD, &h.d250LD, b)
		}
		if !b.Time.Before(weekAgo) {
			upd(&h.w52H, &h.w52L, &h.w52HD, &h.w52LD, b)
		}
		if !b.Time.Before(yearStart) {
			upd(&h.ytdH, &h.ytdL, &h.ytdHD, &h.ytdLD, b)
		}
	}
	if s.derived.n.Add(1) > 50_000 {
		s.derived.m.Clear()
		s.derived.n.Store(0)
	}
	s.derived.m.Store(key, &h)
	mergeToday(&h, sn)
	return h
}

func mergeToday(h *hilo, sn *snap) {
	if !sn.todayStarted() || sn.q.High == 0 {
		return
	}
	for _, p := range []struct {
		hi, lo *int64
		hd, ld *time.Time
	}{{&h.d250H, &h.d250L, &h.d250HD, &h.d250LD}, {&h.w52H, &h.w52L, &h.w52HD, &h.w52LD}, {&h.ytdH, &h.ytdL, &h.ytdHD, &h.ytdLD}} {
		if *p.hi == 0 || sn.q.High > *p.hi {
			*p.hi, *p.hd = sn.q.High, sn.day
		}
		if *p.lo == 0 || sn.q.Low < *p.lo {
			*p.lo, *p.ld = sn.q.Low, sn.day
		}
	}
}

func ymd(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kisfeed.KST).Format("20060102")
}

func hms(t time.Time) string { return t.In(kisfeed.KST).Format("150405") }

func marketKorName(m kisfeed.Market) string {
	switch m {
	case kisfeed.MarketKOSPI:
		return "코스피"
	case kisfeed.MarketKOSDAQ:
		return "코스닥"
	case kisfeed.MarketKONEX:
		return "코넥스"
	}
	return ""
}
