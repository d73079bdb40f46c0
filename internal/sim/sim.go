// Package sim is a deterministic synthetic KRX market: a universe of about
// 2,600 listed stocks (plus some ETFs), daily bars for every trading day
// 2020–2027, minute bars whose aggregate equals the day's bar, the price at
// any instant consistent with the minute bars so far, and a 10-level book
// around it. The emulator serves it over the KIS wire protocol and the mock
// Source serves it in-process, so both agree number for number.
//
// Same seed, same numbers: on any machine, in any order of queries, from
// any number of goroutines. A *Market is safe for concurrent use.
//
// Every price respects the KRX tick table and the ±30 % daily limit of the
// day's base price (the previous close), see package krx.
//
// How the numbers are made: every random draw comes from a splitmix64
// stream derived by hashing (seed, code, trading day, purpose), so no
// result depends on query order, and all price arithmetic is integer. A
// stock's closes are a bounded random walk computed once per stock on
// first use (about 8 KB per stock); the rest of a daily bar is replayed
// from the day's stream, and minute bars are rebuilt from the daily bar
// on demand. The first simulated day's base price is a per-stock initial
// price (the offering price for stocks listed after 2020-01-02).
//
// Costs (one core, see the benchmarks): New a few ms; the first query of a
// stock walks its closes (about 50 µs); a daily bar a few µs the first time
// (its traded value needs the day's minute path) and well under 1 µs once
// memoised; MinuteBars 10–30 µs; QuoteAt and OrderBookAt about 10 µs
// during the session, 1–2 µs after the close. Memory grows with use to at
// most about 24 KB per stock (65 MB for the whole universe).
//
// ETFs use the stock tick table of package krx (real ETF ticks are
// smaller), so that every consumer can derive the tick from the price. No
// security is halted.
package sim

import (
	"sync"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

// SourceName is the Meta.Source of every value the market produces.
const SourceName = "mock"

// Market is the synthetic market for one seed.
type Market struct {
	seed   int64
	stocks []*stock          // sorted by code
	byCode map[string]*stock // lookup only; never iterated

	uOnce    sync.Once
	universe []kisfeed.Stock
}

// New builds the market for seed. It is cheap (well under 100 ms): series
// are computed lazily on first use and memoised.
//
// The universe (codes, names, listed shares, listing dates, price levels)
// is the same for every seed; the seed drives every price path, volume and
// book, so two seeds give different markets over the same securities.
func New(seed int64) *Market {
	stocks := buildUniverse()
	m := &Market{seed: seed, stocks: stocks, byCode: make(map[string]*stock, len(stocks))}
	for _, s := range stocks {
		s.key = mix(uint64(seed) ^ mix(s.hash^saltDay))
		m.byCode[s.Code] = s
	}
	return m
}

// Seed returns the seed the market was built with.
func (m *Market) Seed() int64 { return m.seed }

// Universe returns every listed security, sorted by code: ~950 KOSPI and
// ~1,650 KOSDAQ ordinary/preferred shares (Group "ST"), a few real large
// caps among them (005930 삼성전자, 000660 SK하이닉스, 035420 NAVER,
// 005380 현대차, 035720 카카오, 373220 LG에너지솔루션, 207940
// 삼성바이오로직스, 068270 셀트리온, 005935 삼성전자우, ...), plus ~100
// ETFs (Group "EF") on KOSPI. The slice is shared: do not modify it.
//
// BasePrice is the close of [BaseDay] (the offering price for a stock
// listed later). The first call for a seed in a process walks every
// stock's series up to BaseDay (about 0.1–0.2 s of CPU, several times
// that under -race); later calls, on any Market of that seed, are cheap.
func (m *Market) Universe() []kisfeed.Stock {
	m.uOnce.Do(func() {
		prices := basePrices.get(m.seed)
		if prices == nil {
			prices = make([]int64, len(m.stocks))
			for k, s := range m.stocks {
				prices[k] = m.baseStock(s).BasePrice
			}
			basePrices.put(m.seed, prices)
		}
		u := make([]kisfeed.Stock, len(m.stocks))
		for k, s := range m.stocks {
			u[k] = s.Stock
			u[k].BasePrice = prices[k]
		}
		m.universe = u
	})
	return m.universe
}

// basePrices memoises the universe's base prices per seed across Market
// instances. It caches a pure function of the seed (so it is not
// observable state), and it makes the common pattern "New(seed) and
// Universe() in every test" cost the walk of 2,700 stocks once per seed
// and process instead of every time. At most maxMemoSeeds seeds are kept
// (21 KB each).
var basePrices = &priceMemo{m: make(map[int64][]int64)}

const maxMemoSeeds = 64

type priceMemo struct {
	mu sync.Mutex
	m  map[int64][]int64
}

func (p *priceMemo) get(seed int64) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[seed]
}

func (p *priceMemo) put(seed int64, prices []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) < maxMemoSeeds {
		p.m[seed] = prices
	}
}

// baseStock returns s's Stock with BasePrice filled.
func (m *Market) baseStock(s *stock) kisfeed.Stock {
	st := s.Stock
	st.BasePrice = s.p0
	if i := cal().tradingIndex(BaseDay); i >= s.first {
		st.BasePrice = int64(m.series(s)[i])
	}
	return st
}

// Stock returns one security of the universe.
func (m *Market) Stock(code string) (kisfeed.Stock, bool) {
	s, ok := m.byCode[code]
	if !ok {
		return kisfeed.Stock{}, false
	}
	return m.baseStock(s), true
}

// Info returns the descriptive data of one security. Capital is par value
// × listed shares; ETFs have no par value (0) and no sector. Meta.AsOf is
// zero: the data is static.
func (m *Market) Info(code string) (kisfeed.StockInfo, bool) {
	s, ok := m.byCode[code]
	if !ok {
		return kisfeed.StockInfo{}, false
	}
	return kisfeed.StockInfo{
		Code:           s.Code,
		ISIN:           s.ISIN,
		Name:           s.Name,
		FullName:       s.fullName,
		EnglishName:    s.engName,
		Market:         s.Market,
		Group:          s.Group,
		Sector:         s.sector,
		ListedShares:   s.ListedShares,
		ParValue:       s.par,
		Capital:        s.par * s.ListedShares,
		ListingDate:    s.ListingDate,
		Halted:         s.Halted,
		Administrative: s.admin,
		NXTTradable:    s.nxt,
		Meta:           kisfeed.Meta{Source: SourceName, Origin: kisfeed.OriginSource},
	}, true
}

// index returns the stock and trading-day index of (code, day), ok false
// when the code is unknown, day is not a simulated trading day or precedes
// the listing.
func (m *Market) index(code string, day time.Time) (*stock, int, bool) {
	s, ok := m.byCode[code]
	if !ok {
		return nil, 0, false
	}
	i := cal().tradingIndex(day)
	if i < s.first {
		return nil, 0, false
	}
	return s, i, true
}

// candle returns the complete daily bar of trading day i.
func (m *Market) candle(s *stock, i int) kisfeed.Candle {
	d := m.day(s, i)
	return kisfeed.Candle{
		Time: cal().days[i], Open: d.open, High: d.high, Low: d.low, Close: d.close,
		Volume: d.volume, Value: m.dayValue(s, i, d),
	}
}

// DailyBar returns the complete bar of code on trading day day (its KST
// calendar day). ok is false for an unknown code, a non-trading day, or a
// day outside 2020-01-02 … 2027-12-30 or before the stock's listing.
func (m *Market) DailyBar(code string, day time.Time) (bar kisfeed.Candle, ok bool) {
	s, i, ok := m.index(code, day)
	if !ok {
		return kisfeed.Candle{}, false
	}
	return m.candle(s, i), true
}

// DailyBars returns the complete daily bars of code for every trading day
// in [from, to], oldest first.
func (m *Market) DailyBars(code string, from, to time.Time) []kisfeed.Candle {
	s, ok := m.byCode[code]
	if !ok {
		return nil
	}
	c := cal()
	lo, hi := c.span(from, to)
	lo = max(lo, s.first)
	if lo > hi {
		return nil
	}
	out := make([]kisfeed.Candle, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		out = append(out, m.candle(s, i))
	}
	return out
}

// span returns the trading-day indices of the first trading day >= from
// and the last <= to (lo > hi when there is none).
func (c *calendar) span(from, to time.Time) (lo, hi int) {
	fo, _ := split(from)
	to0, _ := split(to)
	switch {
	case fo < 0:
		lo = 0
	case fo >= calDays:
		lo = len(c.days)
	default:
		lo = int(c.lastLE[fo])
		if lo < 0 || int(c.offs[lo]) < int(fo) {
			lo++
		}
	}
	switch {
	case to0 < 0:
		hi = -1
	case to0 >= calDays:
		hi = len(c.days) - 1
	default:
		hi = int(c.lastLE[to0])
	}
	return lo, hi
}

// PrevClose returns the close of the trading day before day (the base
// price for day's limits).
//
// For the first simulated day (2020-01-02, or a later listing day) it is
// the stock's initial price. ok is false for an unknown code or a day
// before that first day.
func (m *Market) PrevClose(code string, day time.Time) (int64, bool) {
	s, ok := m.byCode[code]
	if !ok {
		return 0, false
	}
	c := cal()
	off, _ := split(day)
	var j int // last trading day strictly before day
	switch {
	case off < 0:
		return 0, false
	case off == 0:
		j = -1
	case off >= calDays:
		j = len(c.days) - 1
	default:
		j = int(c.lastLE[off-1])
	}
	switch {
	case j >= s.first:
		return int64(m.series(s)[j]), true
	case j == s.first-1:
		return s.p0, true
	}
	return 0, false
}

// minuteOffsets holds the start of each minute bar from midnight.
var minuteOffsets = func() (o [minuteBars]time.Duration) {
	for k := range contBars {
		o[k] = krx.OpenHour*time.Hour + krx.OpenMinute*time.Minute + time.Duration(k)*time.Minute
	}
	o[auctionBar] = krx.CloseHour*time.Hour + krx.CloseMinute*time.Minute
	return o
}()

// minuteTime returns the start time of minute bar k of trading day i.
func minuteTime(i, k int) time.Time {
	return cal().days[i].Add(minuteOffsets[min(k, auctionBar)])
}

// MinuteBars returns the complete minute bars of code on trading day day,
// oldest first: one bar per minute 09:00 … 15:19 of continuous trading and
// one 15:30 bar for the closing auction (381 bars). Their aggregate (first
// open, max high, min low, last close, summed volume and value) equals
// DailyBar. Minutes with no trade carry volume 0 and O=H=L=C = last price.
func (m *Market) MinuteBars(code string, day time.Time) []kisfeed.Candle {
	s, i, ok := m.index(code, day)
	if !ok {
		return nil
	}
	var buf minuteBuf
	m.genMinutes(s, i, m.day(s, i), &buf)
	out := make([]kisfeed.Candle, minuteBars)
	midnight := cal().days[i]
	for k := range buf {
		b := &buf[k]
		out[k] = kisfeed.Candle{
			Time: midnight.Add(minuteOffsets[k]), Open: b.open, High: b.high, Low: b.low, Close: b.close,
			Volume: b.volume, Value: b.value,
		}
	}
	return out
}

// Session boundaries in seconds of the KST day.
const (
	secOpen      = krx.OpenHour*3600 + krx.OpenMinute*60
	secAuction   = krx.AuctionHour*3600 + krx.AuctionMinute*60
	secClose     = krx.CloseHour*3600 + krx.CloseMinute*60
	secPreOpen   = 8*3600 + 30*60 // pre-open order book (expected price)
	minuteLength = 60
)

// at resolves instant t for s: the trading-day index and how many minute
// bars of it are complete (0 … 381).
func at(s *stock, t time.Time) (i, bars int, ok bool) {
	c := cal()
	off, sec := split(t)
	switch {
	case off < 0:
		return 0, 0, false
	case off >= calDays:
		i, bars = len(c.days)-1, minuteBars
	case c.idx[off] >= 0:
		i = int(c.idx[off])
		switch {
		case sec >= secClose:
			bars = minuteBars
		case sec >= secOpen:
			bars = min(int(sec-secOpen)/minuteLength, contBars)
		}
	default:
		i, bars = int(c.lastLE[off]), minuteBars
	}
	if i < s.first {
		return 0, 0, false
	}
	return i, bars, true
}

// QuoteAt returns the quote of code at instant t. Before 09:00 on a trading
// day it shows the previous close with zero volume; during the session it
// aggregates the minute bars completed up to t (open/high/low/volume/value
// so far, price = last close so far) plus the trades of the minute in
// progress up to t (see [Market.Executions]; at a minute boundary there are
// none, so there it is the aggregate of complete bars); after 15:30 it
// equals the day's bar.
// On a non-trading day it is the last trading day's closing quote. Meta.AsOf
// is the time of the last included bar; Meta.Source is "mock".
//
// A minute bar counts once complete: the 09:00 bar from 09:01, the
// closing-auction bar from 15:30. Until the first bar completes, Open, High
// and Low equal the previous close too, and Meta.AsOf is the previous
// session's close (the listing day's midnight on the first day). Inside a
// minute, Meta.AsOf is the time of the last included trade. After
// 2027-12-30 the quote stays at that day's close; before the first day ok is
// false.
func (m *Market) QuoteAt(code string, t time.Time) (kisfeed.Quote, bool) {
	s, ok := m.byCode[code]
	if !ok {
		return kisfeed.Quote{}, false
	}
	i, bars, ok := at(s, t)
	if !ok {
		return kisfeed.Quote{}, false
	}
	prev := m.prevClose(s, i)
	q := kisfeed.Quote{Code: s.Code, Name: s.Name, Market: s.Market, PrevClose: prev, BasePrice: prev}
	traded := false
	switch {
	case bars == minuteBars:
		b := m.candle(s, i)
		q.Price, q.Open, q.High, q.Low = b.Close, b.Open, b.High, b.Low
		q.Volume, q.TradingValue = b.Volume, b.Value
		q.Meta.AsOf = minuteTime(i, contBars)
		traded = true
	case bars > 0 || t.Unix() >= cal().days[i].Unix()+secOpen:
		var buf minuteBuf
		m.genMinutes(s, i, m.day(s, i), &buf)
		traded = m.partialQuote(s, i, bars, t, &buf, &q)
	}
	if !traded {
		q.Price, q.Open, q.High, q.Low = prev, prev, prev, prev
		q.Meta.AsOf = cal().days[i]
		if i > s.first {
			q.Meta.AsOf = minuteTime(i-1, contBars)
		}
	}
	q.Change = q.Price - prev
	q.ChangeRate = changeRate(q.Change, prev)
	q.UpperLimit, q.LowerLimit = krx.Limits(prev)
	q.TickSize = krx.TickSize(q.Price)
	q.Meta.Source, q.Meta.Origin = SourceName, kisfeed.OriginSource
	return q, true
}

// changeRate returns change/base in percent rounded half away from zero to
// two decimals, computed on integers so it is the same everywhere.
func changeRate(change, base int64) float64 {
	if base <= 0 {
		return 0
	}
	q := (2*abs64(change)*10_000 + base) / (2 * base)
	if change < 0 {
		q = -q
	}
	return float64(q) / 100
}

// OrderBookAt returns the 10-level book of code at instant t, centred on
// QuoteAt(code, t).Price: asks from one tick above, bids from the price
// down, every level on the tick grid and within the day's limits,
// quantities deterministic.
//
// A level that would lie beyond the day's limit (at a limit-up or
// limit-down price) is empty: Price 0, Quantity 0, as KIS shows it.
// ExpectedPrice is the day's open during the pre-open (08:30–09:00) and the
// close during the closing auction (15:20–15:30) of a trading day, else 0.
func (m *Market) OrderBookAt(code string, t time.Time) (kisfeed.OrderBook, bool) {
	q, ok := m.QuoteAt(code, t)
	if !ok {
		return kisfeed.OrderBook{}, false
	}
	ob := m.bookAround(m.byCode[code], t, q.Price, q.UpperLimit, q.LowerLimit)
	ob.Meta = q.Meta
	return ob, true
}

// BookAround returns the book OrderBookAt(code, t) shows when the price at
// t is price, without recomputing the session: for an execution at t, at
// its price, it equals OrderBookAt(code, t) but for Meta.AsOf, which is t.
// A feed uses it to quote the best bid and ask beside each trade cheaply.
// ok is false for an unknown code or an instant before the stock's first
// simulated day.
func (m *Market) BookAround(code string, t time.Time, price int64) (kisfeed.OrderBook, bool) {
	s, ok := m.byCode[code]
	if !ok {
		return kisfeed.OrderBook{}, false
	}
	i, _, ok := at(s, t)
	if !ok {
		return kisfeed.OrderBook{}, false
	}
	upper, lower := krx.Limits(m.prevClose(s, i))
	ob := m.bookAround(s, t, price, upper, lower)
	ob.Meta = kisfeed.Meta{AsOf: t, Source: SourceName, Origin: kisfeed.OriginSource}
	return ob, true
}

// bookAround builds the book of s at t around price within the day's
// limits (see OrderBookAt); Meta is left for the caller.
func (m *Market) bookAround(s *stock, t time.Time, price, upper, lower int64) kisfeed.OrderBook {
	ob := kisfeed.OrderBook{Code: s.Code}
	minute := t.Unix() / minuteLength
	if minute < 0 {
		minute = 0
	}
	r := newRNG(m.seed, s.hash, minute, saltBook)
	base := max(s.avgVol/minuteBars/4, 10)
	ix := tickIdx(price)
	for k := 0; k < kisfeed.BookDepth; k++ {
		depth := int64(100 + 15*k)
		if p := tickPrice(ix + 1 + int64(k)); p <= upper {
			ob.Asks[k] = kisfeed.Level{Price: p, Quantity: 1 + base*depth*(20+r.intn(280))/10_000}
		}
		if ix-int64(k) >= 0 {
			if p := tickPrice(ix - int64(k)); p >= lower {
				ob.Bids[k] = kisfeed.Level{Price: p, Quantity: 1 + base*depth*(20+r.intn(280))/10_000}
			}
		}
		ob.TotalAskQty += ob.Asks[k].Quantity
		ob.TotalBidQty += ob.Bids[k].Quantity
	}
	if off, sec := split(t); off >= 0 && off < calDays && cal().idx[off] >= 0 {
		i := int(cal().idx[off])
		switch {
		case sec >= secPreOpen && sec < secOpen:
			ob.ExpectedPrice = m.day(s, i).open
		case sec >= secAuction && sec < secClose:
			ob.ExpectedPrice = m.day(s, i).close
		}
	}
	return ob
}
