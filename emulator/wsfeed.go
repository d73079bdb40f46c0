package emulator

import (
	"strconv"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/sim"
	"github.com/kisfeed/kisfeed/krx"
)

// Data frames (REFERENCE §h.5–h.7): "0|TR|NNN|f^f^…", all records'
// fields joined by '^'. Trades come from sim's executions and books from
// sim's OrderBookAt, so a record says exactly what inquire-price and
// inquire-asking-price-exp-ccn answer at its instant.

// Field counts of the TR layouts.
const (
	tradeFields   = 46
	bookFields    = 59
	unifBookExtra = 6 // KMID_PRC … NMID_CLS_CODE on H0UNASP0 (§h.5)
)

// feed sends what the market did for each registration of sess up to
// market time now.
func (s *Server) feed(sess *wsSession, now time.Time) {
	extra := s.ws.currentFaults().ExtraFields
	for _, r := range sess.registrations() {
		if !r.ready.Load() {
			continue
		}
		switch r.key.trID {
		case TrTrade, TrTradeUnif:
			s.feedTrades(sess, r, now, extra[r.key.trID])
		case TrBook, TrBookUnif:
			s.feedBook(sess, r, now, extra[r.key.trID])
		}
		if sess.ctx.Err() != nil {
			return
		}
	}
}

// feedTrades sends the executions in (r.last, now], at most maxRecords
// per frame: several when the market traded more than once since the last
// send (the open, busy minutes, a high --speed).
func (s *Server) feedTrades(sess *wsSession, r *wsReg, now time.Time, extra int) {
	from := r.last
	if !now.After(from) {
		r.last = now
		return
	}
	from = later(from, now.Add(-maxWindow))
	r.last = now
	ex := s.m.Executions(r.key.trKey, from, now)
	for len(ex) > 0 {
		n := min(len(ex), maxRecords)
		if !sess.send(s.tradeFrame(r, ex[:n], extra)) {
			return
		}
		s.ws.stats.frame(r.key.trID, n)
		ex = ex[n:]
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// frameHead starts a plain frame of trID with n records.
func frameHead(b []byte, trID string, n int) []byte {
	b = append(b, "0|"...)
	b = append(b, trID...)
	b = append(b, '|')
	if n < 100 {
		b = append(b, '0')
	}
	if n < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '|')
}

// rec appends fields to a record, '^' between them.
type rec struct {
	b     []byte
	first bool
}

func (r *rec) s(v string) {
	if !r.first {
		r.b = append(r.b, '^')
	}
	r.first = false
	r.b = append(r.b, v...)
}

func (r *rec) i(v int64) {
	if !r.first {
		r.b = append(r.b, '^')
	}
	r.first = false
	r.b = strconv.AppendInt(r.b, v, 10)
}

// pct appends a/b × 100 with two decimals, rounded half away from zero
// on integers ("0.00" when b is 0): the feed writes several per record,
// and float formatting would dominate its cost.
func (r *rec) pct(a, b int64) {
	var h int64
	if b != 0 {
		n, d := 2*a*10_000+b, 2*b
		if a < 0 {
			n = 2*a*10_000 - b
		}
		h = n / d
	}
	r.hundredths(h)
}

// change appends the change rate of change over base as sim rounds it
// (kisfeed.Quote.ChangeRate), so it equals inquire-price's prdy_ctrt.
func (r *rec) change(change, base int64) {
	var h int64
	if base > 0 {
		a := change
		if a < 0 {
			a = -a
		}
		h = (2*a*10_000 + base) / (2 * base)
		if change < 0 {
			h = -h
		}
	}
	r.hundredths(h)
}

// hundredths appends h/100 with two decimals ("-1.39", "0.00").
func (r *rec) hundredths(h int64) {
	if !r.first {
		r.b = append(r.b, '^')
	}
	r.first = false
	if h < 0 {
		r.b = append(r.b, '-')
		h = -h
	}
	r.b = strconv.AppendInt(r.b, h/100, 10)
	r.b = append(r.b, '.', byte('0'+h%100/10), byte('0'+h%10))
}

// extraFields appends n made-up trailing fields (the extra-fields fault:
// KIS has added fields to a TR without notice).
func (r *rec) extraFields(n int) {
	for k := range n {
		r.i(int64(k + 1))
	}
}

// tradeFacts holds the facts of one code that every record shares.
type tradeFacts struct {
	code     string
	shares   int64
	prevVol  int64 // previous trading day's volume
	sameTime int64 // previous day's volume at the same time of day
	buyShare int64 // buy-initiated share of volume, in percent
	lot      int64 // average shares per execution, for the counts
}

func (s *Server) tradeFacts(code string, at time.Time) tradeFacts {
	f := tradeFacts{code: code, lot: 1}
	day := kisfeed.Day(at)
	st, _ := s.m.Stock(code)
	f.shares = st.ListedShares
	prevDay := krx.PrevTradingDay(day)
	if bar, ok := s.m.DailyBar(code, prevDay); ok {
		f.prevVol = bar.Volume
		f.lot = max(1, bar.Volume/8_000)
	}
	if q, ok := s.m.QuoteAt(code, prevDay.Add(at.Sub(day))); ok {
		f.sameTime = q.Volume
	}
	f.buyShare = 35 + int64(hash64("buy", code, ymd(day))%31)
	return f
}

// tradeFrame builds one H0STCNT0 (or H0UNCNT0) frame of ex.
func (s *Server) tradeFrame(r *wsReg, ex []sim.Execution, extra int) []byte {
	// The facts change slowly (the previous day's volume at the same time
	// of day is read to the minute): computed once per minute per
	// registration, they cost nothing per record.
	at := ex[len(ex)-1].Time
	if minute := at.Unix() / 60; r.facts == nil || r.factsMinute != minute {
		f := s.tradeFacts(r.key.trKey, at.Truncate(time.Minute))
		r.facts, r.factsMinute = &f, minute
	}
	f := r.facts
	out := rec{b: frameHead(make([]byte, 0, 64+len(ex)*(320+8*extra)), r.key.trID, len(ex)), first: true}
	for _, e := range ex {
		s.tradeRecord(&out, r, f, e)
		out.extraFields(extra)
	}
	return out.b
}

// tradeRecord appends the 46 fields of one execution (§h.6).
func (s *Server) tradeRecord(o *rec, r *wsReg, f *tradeFacts, e sim.Execution) {
	// The book around the trade's price is OrderBookAt at its instant
	// (sim.BookAround), without recomputing the session per record.
	book, _ := s.m.BookAround(f.code, e.Time, e.Price)
	upper, lower := krx.Limits(e.PrevClose)
	at := hms(e.Time) // one string per record, shared by the hour fields
	if e.High != r.hi {
		r.hi, r.hiHour = e.High, choose(e.Price == e.High || r.hiHour == "", at, r.hiHour)
	}
	if e.Low != r.lo {
		r.lo, r.loHour = e.Low, choose(e.Price == e.Low || r.loHour == "", at, r.loHour)
	}
	side := "5" // sell-initiated (down-tick)
	if e.Price > r.prevPx || (e.Price == r.prevPx && e.Time.UnixMilli()%2 == 0) {
		side = "1"
	}
	r.prevPx = e.Price
	buy := e.CumVolume * f.buyShare / 100
	sell := e.CumVolume - buy
	buyN, sellN := buy/f.lot+1, sell/f.lot+1
	o.s(f.code)
	o.s(at)
	o.i(e.Price)
	o.s(sign(e.Price, e.PrevClose, upper, lower))
	o.i(e.Price - e.PrevClose)
	o.change(e.Price-e.PrevClose, e.PrevClose)
	o.s(vwapOf(kisfeed.Quote{Price: e.Price, Volume: e.CumVolume, TradingValue: e.CumValue}))
	o.i(e.Open)
	o.i(e.High)
	o.i(e.Low)
	o.i(book.Asks[0].Price)
	o.i(book.Bids[0].Price)
	o.i(e.Volume)
	o.i(e.CumVolume)
	o.i(e.CumValue)
	o.i(sellN)
	o.i(buyN)
	o.i(buyN - sellN)
	o.pct(buy, sell)
	o.i(sell)
	o.i(buy)
	o.s(side)
	o.pct(buy, e.CumVolume)
	o.pct(e.CumVolume, f.prevVol)
	o.s("090000")
	o.s(sign(e.Price, e.Open, 0, 0))
	o.i(e.Price - e.Open)
	o.s(r.hiHour)
	o.s(sign(e.Price, e.High, 0, 0))
	o.i(e.Price - e.High)
	o.s(r.loHour)
	o.s(sign(e.Price, e.Low, 0, 0))
	o.i(e.Price - e.Low)
	o.s(ymd(e.Time))
	mkop, _ := sessionCode(e.Time)
	o.s(mkop)
	o.s("N")
	o.i(book.Asks[0].Quantity)
	o.i(book.Bids[0].Quantity)
	o.i(book.TotalAskQty)
	o.i(book.TotalBidQty)
	o.pct(e.CumVolume, f.shares)
	o.i(f.sameTime)
	o.pct(e.CumVolume, f.sameTime)
	o.s("0")
	o.s("")
	o.i(e.PrevClose)
}

// feedBook sends the book at now when it differs from the last one sent
// (one record per frame, as KIS sends books), only during the session.
func (s *Server) feedBook(sess *wsSession, r *wsReg, now time.Time, extra int) {
	if !sim.SessionOpen(now) {
		return
	}
	head, body, ok := s.bookRecord(r.key.trKey, now, r.key.trID == TrBookUnif)
	if !ok || body == r.lastBook {
		return
	}
	o := rec{b: frameHead(make([]byte, 0, 512), r.key.trID, 1), first: true}
	o.s(head)
	o.b = append(o.b, body...)
	o.extraFields(extra)
	if sess.send(o.b) {
		r.lastBook = body
		s.ws.stats.frame(r.key.trID, 1)
	}
}

// bookRecord returns one H0STASP0 record at t split in two: head (code
// and time) and body (the rest, starting with '^'), so a feed can tell
// whether the book changed. Its numbers are inquire-asking-price-exp-ccn's
// at t (orderbook.go).
func (s *Server) bookRecord(code string, t time.Time, unif bool) (head, body string, ok bool) {
	// OrderBookAt(code, t) is BookAround at QuoteAt's price: one session
	// computation instead of two per feed step.
	q, ok := s.m.QuoteAt(code, t)
	if !ok {
		return "", "", false
	}
	book, _ := s.m.BookAround(code, t, q.Price)
	o := rec{b: make([]byte, 0, 480)}
	o.s(choose(!t.Before(kisfeed.Day(t).Add(krx.AuctionHour*time.Hour+krx.AuctionMinute*time.Minute)), "A", "0"))
	for k := range kisfeed.BookDepth {
		o.i(book.Asks[k].Price)
	}
	for k := range kisfeed.BookDepth {
		o.i(book.Bids[k].Price)
	}
	for k := range kisfeed.BookDepth {
		o.i(book.Asks[k].Quantity)
	}
	for k := range kisfeed.BookDepth {
		o.i(book.Bids[k].Quantity)
	}
	o.i(book.TotalAskQty)
	o.i(book.TotalBidQty)
	o.s("0")
	o.s("0")
	antc := book.ExpectedPrice
	antcVrss, antcSign, antcRate, antcVol := int64(0), "3", "0.00", int64(0)
	if antc > 0 {
		antcVrss = antc - q.PrevClose
		antcSign = sign(antc, q.PrevClose, q.UpperLimit, q.LowerLimit)
		antcRate = pctChange(antc, q.PrevClose)
		antcVol = int64(hash64("antc", code, ymd(kisfeed.Day(t)))%200_000) + 1
	}
	o.i(antc)
	o.i(antcVol)
	o.i(antcVol)
	o.i(antcVrss)
	o.s(antcSign)
	o.s(antcRate)
	o.i(q.Volume)
	for range 4 {
		o.s("0") // changes of the totals: 0, as inquire-asking-price shows them
	}
	o.s("0")
	if unif {
		for range unifBookExtra {
			o.s("0")
		}
	}
	return code + "^" + hms(t), string(o.b), true
}

// garbageFrame is a frame a client cannot parse: "count" (default) a
// record count that does not match the fields, "text" neither JSON nor a
// frame, "encrypted" an encrypted frame for a TR never registered.
func garbageFrame(kind string) []byte {
	switch kind {
	case "text":
		return []byte("<html>502 Bad Gateway</html>")
	case "encrypted":
		return []byte("1|H0STCNI0|001|bm90IGVuY3J5cHRlZA==")
	}
	return []byte("0|H0STCNT0|003|005930^093000^70000")
}
