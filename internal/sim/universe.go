package sim

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kisfeed/kisfeed"
)

// Universe targets (ordinary and preferred shares, Group "ST"; ETFs).
const (
	targetKOSPI  = 950
	targetKOSDAQ = 1650
	targetETF    = 100
	// preferred shares among them (KRX has about 120, nearly all on KOSPI).
	prefKOSPI  = 100
	prefKOSDAQ = 10
)

// stock is one security with its static parameters and lazily memoised
// series.
type stock struct {
	kisfeed.Stock // BasePrice filled on demand (see baseStock)

	fullName, engName, sector string
	par                       int64
	admin, nxt                bool

	hash  uint64 // FNV-1a of the code
	key   uint64 // hash of (seed, code): the root of the daily stream
	first int    // trading-day index of the first simulated day (listing)

	p0             int64 // base price of the first day (previous close / offering price)
	anchor         int64 // level the walk reverts to
	bandLo, bandHi int64 // the walk turns back outside this band
	volBp          int64 // daily volatility, basis points
	revBp          int64 // mean-reversion strength, basis points
	avgVol         int64 // average daily volume, shares
	idle           int64 // probability (per 65,536) that a minute has no trade
	jumpy          bool  // may have limit-up/limit-down days (generated shares)

	once   sync.Once
	closes []int32 // close of trading day i (valid from first)

	valOnce sync.Once
	values  []atomic.Int64 // memoised traded value per day; 0 = not yet computed
}

// real is a real large cap with plausible parameters.
type real struct {
	code, name, eng, sector string
	market                  kisfeed.Market
	anchor, lo, hi          int64
	shares, par             int64
	vol                     int64 // daily volatility, bp
	listed                  time.Time
}

var reals = []real{
	{"005930", "삼성전자", "Samsung Electronics", "전기·전자", kisfeed.MarketKOSPI, 65_000, 54_000, 76_000, 5_969_782_550, 100, 160, kisfeed.Date(1975, 6, 11)},
	{"005935", "삼성전자우", "Samsung Electronics Pref", "전기·전자", kisfeed.MarketKOSPI, 55_000, 44_000, 66_000, 822_886_700, 100, 150, kisfeed.Date(1989, 9, 25)},
	{"000660", "SK하이닉스", "SK hynix", "전기·전자", kisfeed.MarketKOSPI, 140_000, 90_000, 220_000, 728_002_365, 5_000, 240, kisfeed.Date(1996, 12, 26)},
	{"373220", "LG에너지솔루션", "LG Energy Solution", "전기·전자", kisfeed.MarketKOSPI, 420_000, 330_000, 560_000, 234_000_000, 500, 230, kisfeed.Date(2022, 1, 27)},
	{"207940", "삼성바이오로직스", "Samsung Biologics", "의약품", kisfeed.MarketKOSPI, 800_000, 600_000, 1_000_000, 71_174_000, 2_500, 200, kisfeed.Date(2016, 11, 10)},
	{"005380", "현대차", "Hyundai Motor", "운수장비", kisfeed.MarketKOSPI, 200_000, 140_000, 260_000, 211_531_506, 5_000, 200, kisfeed.Date(1974, 6, 28)},
	{"000270", "기아", "Kia", "운수장비", kisfeed.MarketKOSPI, 80_000, 50_000, 110_000, 397_672_632, 5_000, 210, kisfeed.Date(1973, 7, 21)},
	{"068270", "셀트리온", "Celltrion", "의약품", kisfeed.MarketKOSPI, 180_000, 130_000, 260_000, 216_000_000, 1_000, 230, kisfeed.Date(2018, 2, 9)},
	{"035420", "NAVER", "NAVER", "서비스업", kisfeed.MarketKOSPI, 210_000, 150_000, 300_000, 158_437_008, 100, 220, kisfeed.Date(2008, 11, 28)},
	{"035720", "카카오", "Kakao", "서비스업", kisfeed.MarketKOSPI, 50_000, 35_000, 80_000, 445_000_000, 100, 250, kisfeed.Date(2017, 7, 10)},
	{"051910", "LG화학", "LG Chem", "화학", kisfeed.MarketKOSPI, 420_000, 300_000, 600_000, 70_592_343, 5_000, 230, kisfeed.Date(2001, 4, 25)},
	{"006400", "삼성SDI", "Samsung SDI", "전기·전자", kisfeed.MarketKOSPI, 380_000, 250_000, 550_000, 68_764_530, 5_000, 240, kisfeed.Date(1979, 2, 27)},
	{"105560", "KB금융", "KB Financial Group", "금융업", kisfeed.MarketKOSPI, 60_000, 40_000, 85_000, 403_511_072, 5_000, 170, kisfeed.Date(2008, 10, 10)},
	{"055550", "신한지주", "Shinhan Financial Group", "금융업", kisfeed.MarketKOSPI, 42_000, 30_000, 58_000, 509_000_000, 5_000, 160, kisfeed.Date(2001, 9, 10)},
	{"352820", "하이브", "HYBE", "서비스업", kisfeed.MarketKOSPI, 200_000, 140_000, 290_000, 41_650_000, 500, 300, kisfeed.Date(2020, 10, 15)},
	{"247540", "에코프로비엠", "EcoPro BM", "일반전기전자", kisfeed.MarketKOSDAQ, 200_000, 120_000, 320_000, 97_801_344, 500, 330, kisfeed.Date(2019, 3, 5)},
	{"086520", "에코프로", "EcoPro", "화학", kisfeed.MarketKOSDAQ, 100_000, 60_000, 170_000, 133_138_340, 500, 350, kisfeed.Date(2007, 7, 20)},
	{"091990", "셀트리온헬스케어", "Celltrion Healthcare", "유통", kisfeed.MarketKOSDAQ, 70_000, 50_000, 100_000, 158_000_000, 1_000, 260, kisfeed.Date(2017, 7, 28)},
	{"196170", "알테오젠", "Alteogen", "제약", kisfeed.MarketKOSDAQ, 150_000, 80_000, 300_000, 53_000_000, 500, 380, kisfeed.Date(2014, 12, 12)},
	{"293490", "카카오게임즈", "Kakao Games", "오락·문화", kisfeed.MarketKOSDAQ, 30_000, 18_000, 50_000, 82_000_000, 100, 330, kisfeed.Date(2020, 9, 10)},
}

// realETFs are a few well-known ETFs.
var realETFs = []struct {
	code, name, eng string
	price, shares   int64
	vol             int64
	listed          time.Time
}{
	{"069500", "KODEX 200", "KODEX 200", 33_000, 120_000_000, 130, kisfeed.Date(2002, 10, 14)},
	{"102110", "TIGER 200", "TIGER 200", 33_000, 60_000_000, 130, kisfeed.Date(2008, 4, 3)},
	{"122630", "KODEX 레버리지", "KODEX Leverage", 18_000, 150_000_000, 260, kisfeed.Date(2010, 2, 22)},
	{"114800", "KODEX 인버스", "KODEX Inverse", 4_500, 200_000_000, 130, kisfeed.Date(2009, 9, 16)},
	{"252670", "KODEX 200선물인버스2X", "KODEX 200 Futures Inverse 2X", 2_500, 900_000_000, 260, kisfeed.Date(2016, 9, 22)},
	{"229200", "KODEX 코스닥150", "KODEX KOSDAQ150", 12_000, 40_000_000, 170, kisfeed.Date(2015, 10, 7)},
	{"133690", "TIGER 미국나스닥100", "TIGER NASDAQ100", 90_000, 20_000_000, 130, kisfeed.Date(2010, 10, 18)},
	{"360750", "TIGER 미국S&P500", "TIGER US S&P500", 15_000, 150_000_000, 110, kisfeed.Date(2020, 8, 7)},
}

// Name pieces of generated companies: Korean, English.
var namePrefixes = [][2]string{
	{"대한", "Daehan"}, {"한국", "Korea"}, {"동양", "Dongyang"}, {"삼화", "Samhwa"}, {"세진", "Sejin"},
	{"유니", "Uni"}, {"에스", "S"}, {"케이", "K"}, {"한성", "Hansung"}, {"대성", "Daesung"},
	{"신성", "Shinsung"}, {"우진", "Woojin"}, {"동아", "Donga"}, {"서울", "Seoul"}, {"부산", "Busan"},
	{"한일", "Hanil"}, {"미래", "Mirae"}, {"새한", "Saehan"}, {"광명", "Gwangmyeong"}, {"성우", "Sungwoo"},
	{"진흥", "Jinheung"}, {"대원", "Daewon"}, {"영진", "Youngjin"}, {"금강", "Geumgang"}, {"일진", "Iljin"},
	{"화성", "Hwaseong"}, {"한솔", "Hansol"}, {"코리아", "Korea"}, {"제일", "Jeil"}, {"삼익", "Samik"},
	{"동원", "Dongwon"}, {"대림", "Daelim"}, {"현성", "Hyunsung"}, {"아이", "I"}, {"엘", "L"},
	{"티", "T"}, {"에이", "A"}, {"비", "B"}, {"씨", "C"}, {"디", "D"},
	{"엠", "M"}, {"피", "P"}, {"와이", "Y"}, {"제이", "J"}, {"에이치", "H"},
	{"넥스", "Nex"}, {"하이", "Hi"}, {"뉴", "New"}, {"그린", "Green"}, {"블루", "Blue"},
	{"스마트", "Smart"}, {"글로벌", "Global"}, {"나노", "Nano"}, {"테라", "Tera"}, {"메가", "Mega"},
	{"인터", "Inter"}, {"오션", "Ocean"}, {"선", "Sun"}, {"알파", "Alpha"}, {"태양", "Taeyang"},
	{"청호", "Chungho"}, {"경동", "Kyungdong"}, {"신라", "Silla"}, {"고려", "Koryo"}, {"조선", "Chosun"},
	{"백산", "Baeksan"}, {"한라", "Halla"}, {"삼영", "Samyoung"}, {"대양", "Daeyang"}, {"동일", "Dongil"},
}

var nameInfixes = [][2]string{
	{"", ""}, {"", ""}, {"", ""}, {"", ""}, {"", ""}, {"", ""},
	{"엔", "N"}, {"텍", "Tek"}, {"솔", "Sol"}, {"원", "One"}, {"온", "On"}, {"젠", "Gen"},
	{"씨엔", "CN"}, {"에스", "S"}, {"케이", "K"}, {"플러스", "Plus"},
}

var nameSuffixes = []struct{ ko, en, sector string }{
	{"전자", "Electronics", "전기·전자"}, {"화학", "Chemical", "화학"}, {"제약", "Pharm", "의약품"},
	{"바이오", "Bio", "의약품"}, {"건설", "Construction", "건설업"}, {"산업", "Industries", "기계"},
	{"테크", "Tech", "전기·전자"}, {"시스템", "Systems", "IT 서비스"}, {"소재", "Materials", "화학"},
	{"에너지", "Energy", "전기·가스업"}, {"홀딩스", "Holdings", "서비스업"}, {"정밀", "Precision", "기계"},
	{"통신", "Telecom", "통신업"}, {"식품", "Foods", "음식료품"}, {"물산", "Trading", "유통업"},
	{"중공업", "Heavy Industries", "운수장비"}, {"반도체", "Semiconductor", "전기·전자"}, {"로지스", "Logis", "운수창고업"},
	{"머티리얼즈", "Materials", "화학"}, {"엔지니어링", "Engineering", "건설업"}, {"제강", "Steel", "철강·금속"},
	{"금속", "Metal", "철강·금속"}, {"섬유", "Textile", "섬유·의복"}, {"제지", "Paper", "종이·목재"},
	{"증권", "Securities", "증권"}, {"화재", "Fire & Marine", "보험"}, {"생명과학", "Life Science", "의약품"},
	{"게임즈", "Games", "오락·문화"}, {"엔터", "Entertainment", "오락·문화"}, {"미디어", "Media", "방송서비스"},
	{"소프트", "Soft", "소프트웨어"}, {"모터스", "Motors", "운수장비"}, {"오토텍", "Autotech", "운수장비"},
	{"디스플레이", "Display", "전기·전자"}, {"이노텍", "Innotek", "전기·전자"}, {"제과", "Confectionery", "음식료품"},
	{"해운", "Shipping", "운수창고업"}, {"유통", "Distribution", "유통업"}, {"파마", "Pharma", "의약품"},
	{"메디칼", "Medical", "의료정밀"}, {"광학", "Optics", "의료정밀"}, {"기계", "Machinery", "기계"},
	{"인터내셔널", "International", "유통업"}, {"네트웍스", "Networks", "IT 서비스"}, {"케미칼", "Chemical", "화학"},
}

var etfBrands = []string{"KODEX", "TIGER", "KBSTAR", "ARIRANG", "HANARO", "SOL", "ACE", "KOSEF"}

var etfThemes = [][2]string{
	{"200TR", "200TR"}, {"고배당", "High Dividend"}, {"2차전지산업", "Secondary Battery"}, {"반도체", "Semiconductor"},
	{"미국S&P500", "US S&P500"}, {"미국나스닥100", "US NASDAQ100"}, {"국고채3년", "KTB 3Y"}, {"단기채권", "Short-Term Bond"},
	{"은행", "Banks"}, {"자동차", "Autos"}, {"헬스케어", "Healthcare"}, {"K-뉴딜", "K-New Deal"},
	{"차이나CSI300", "China CSI300"}, {"골드선물(H)", "Gold Futures(H)"}, {"200선물레버리지", "200 Futures Leverage"}, {"코스닥150레버리지", "KOSDAQ150 Leverage"},
	{"미국배당다우존스", "US Dividend Dow Jones"}, {"KRX300", "KRX300"}, {"바이오", "Bio"}, {"인터넷", "Internet"},
}

// isinFor returns the ISIN of a KRX share: KR7 + the six-digit code (a
// preferred share carries 1 in the sixth place, as 005935 → KR7005931001)
// + 00 + the ISO 6166 check digit.
func isinFor(code string, preferred bool) string {
	body := "KR7" + code
	if preferred && len(code) == 6 {
		body = "KR7" + code[:5] + "1"
	}
	body += "00"
	return body + strconv.Itoa(isinCheck(body))
}

// isinCheck computes the ISO 6166 check digit: letters become two digits
// (A=10 … Z=35), then Luhn from the right, doubling the rightmost digit.
func isinCheck(body string) int {
	var digits []int
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, int(c-'0'))
		case c >= 'A' && c <= 'Z':
			v := int(c-'A') + 10
			digits = append(digits, v/10, v%10)
		}
	}
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := digits[i]
		if (len(digits)-1-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// pow101 holds 1.01^k. Repeated IEEE multiplication (never fused) gives
// the same bits on every platform, unlike math.Pow.
var pow101 = func() []float64 {
	t := make([]float64, 1_500)
	f := 1.0
	for k := range t {
		t[k] = f
		f *= 1.01
	}
	return t
}()

// logUniform returns a value between lo and hi (0 < lo < hi) spread
// evenly on a log scale, in 1 % steps.
func logUniform(r *rng, lo, hi int64) int64 {
	ratio := float64(hi) / float64(lo)
	steps, _ := slices.BinarySearch(pow101, ratio)
	k := r.intn(int64(steps) + 1)
	return min(int64(float64(lo)*pow101[k]), hi)
}

// universeSeed seeds the universe. The universe (codes, names, shares,
// price levels) is the same for every market seed, so fixtures and tests
// can name stocks; the seed drives the prices.
const universeSeed = 0x4b525820 // "KRX "

// buildUniverse generates the securities, sorted by code. The order of
// the steps is the order of the draws: the universe depends on it.
func buildUniverse() []*stock {
	u := &universeBuilder{
		c:     cal(),
		r:     newRNG(universeSeed, 0, 0, saltUniverse),
		used:  make(map[int]bool, 4096),
		names: make(map[string]bool, 4096),
	}
	u.addReals()
	u.gen(kisfeed.MarketKOSPI, targetKOSPI, prefKOSPI)
	u.gen(kisfeed.MarketKOSDAQ, targetKOSDAQ, prefKOSDAQ)
	u.genETFs()
	u.finish()
	return u.out
}

// universeBuilder is the state of [buildUniverse]: one draw sequence and
// the codes and names taken so far.
type universeBuilder struct {
	c     *calendar
	r     rng
	used  map[int]bool // code numbers taken (membership only)
	names map[string]bool
	out   []*stock
}

// listIndex is the trading-day index a stock listed on d starts at: 0
// when listed before FirstDay.
func (u *universeBuilder) listIndex(d time.Time) int {
	if d.Before(FirstDay) {
		return 0
	}
	i := u.c.tradingIndex(d)
	if i < 0 {
		i = u.c.tradingIndex(nextTrading(d))
	}
	return i
}

// addReals adds the real stocks and ETFs of the tables.
func (u *universeBuilder) addReals() {
	r := &u.r
	for _, rl := range reals {
		n, _ := strconv.Atoi(rl.code)
		u.used[n], u.used[n/10*10] = true, true
		u.names[rl.name] = true
		s := &stock{
			Stock: kisfeed.Stock{
				Code: rl.code, Name: rl.name, Market: rl.market, Group: "ST",
				Preferred: rl.code[5] == '5', ListedShares: rl.shares, ListingDate: rl.listed,
			},
			engName: rl.eng, sector: rl.sector, par: rl.par, nxt: true,
			anchor: rl.anchor, bandLo: rl.lo, bandHi: rl.hi, volBp: rl.vol, revBp: 30,
		}
		s.first = u.listIndex(rl.listed)
		s.p0 = roundTick(rl.anchor * (90 + r.intn(21)) / 100)
		s.avgVol = rl.shares * (15 + r.intn(30)) / 10_000
		u.out = append(u.out, s)
	}
	for _, e := range realETFs {
		n, _ := strconv.Atoi(e.code)
		u.used[n] = true
		u.names[e.name] = true
		s := &stock{
			Stock: kisfeed.Stock{
				Code: e.code, Name: e.name, Market: kisfeed.MarketKOSPI, Group: "EF",
				ListedShares: e.shares, ListingDate: e.listed,
			},
			engName: e.eng, nxt: true,
			anchor: e.price, bandLo: e.price * 6 / 10, bandHi: e.price * 16 / 10, volBp: e.vol, revBp: 30,
		}
		s.first = u.listIndex(e.listed)
		s.p0 = roundTick(e.price)
		s.avgVol = e.shares * (30 + r.intn(60)) / 10_000
		u.out = append(u.out, s)
	}
}

// newCode draws a free code number in [lo, hi) ×10, whose preferred
// (+5) is free too.
func (u *universeBuilder) newCode(lo, hi int64) string {
	for {
		n := int((lo + u.r.intn(hi-lo)) * 10)
		if !u.used[n] && !u.used[n+5] {
			u.used[n] = true
			return leftPad6(n)
		}
	}
}

// listing draws a listing day and its trading-day index: after FirstDay
// (a late listing) for ~1 % of stocks, else before it (index 0).
func (u *universeBuilder) listing() (time.Time, int) {
	r, c := &u.r, u.c
	maxLate := c.tradingIndex(kisfeed.Date(2026, time.June, 30))
	if r.intn(100) == 0 {
		i := 1 + int(r.intn(int64(maxLate-1)))
		return c.days[i], i
	}
	y := 1975 + int(r.intn(45))
	d := kisfeed.Date(y, time.Month(1+r.intn(12)), 1+int(r.intn(28)))
	for d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
		d = d.AddDate(0, 0, 1)
	}
	if !d.Before(FirstDay) {
		d = kisfeed.Date(2019, time.December, 2)
	}
	return d, 0
}

// gen tops market up to target stocks, prefTarget of them preferred.
func (u *universeBuilder) gen(market kisfeed.Market, target, prefTarget int) {
	var count, prefs int
	for _, s := range u.out {
		if s.Group == "ST" && s.Market == market {
			count++
			if s.Preferred {
				prefs++
			}
		}
	}
	made := u.genCommons(market, target-count-(prefTarget-prefs))
	u.genPrefs(market, made, prefTarget-prefs)
}

// genCommons makes n common stocks of market and returns them.
func (u *universeBuilder) genCommons(market kisfeed.Market, n int) []*stock {
	r := &u.r
	var made []*stock
	for k := 0; k < n; k++ {
		var name, eng string
		var suf int
		for try := 0; ; try++ {
			p := namePrefixes[r.intn(int64(len(namePrefixes)))]
			in := nameInfixes[r.intn(int64(len(nameInfixes)))]
			suf = int(r.intn(int64(len(nameSuffixes))))
			name = p[0] + in[0] + nameSuffixes[suf].ko
			eng = p[1] + in[1] + " " + nameSuffixes[suf].en
			if try > 20 {
				name += strconv.Itoa(try)
				eng += " " + strconv.Itoa(try)
			}
			if !u.names[name] {
				break
			}
		}
		u.names[name] = true
		hi := int64(45_000)
		if market == kisfeed.MarketKOSDAQ {
			hi = 49_000
		}
		code := u.newCode(1, hi)
		ld, first := u.listing()
		var price, mcap int64
		if market == kisfeed.MarketKOSPI {
			price = logUniform(r, 1_000, 400_000)
			mcap = logUniform(r, 30_000_000_000, 8_000_000_000_000)
		} else {
			price = logUniform(r, 500, 120_000)
			mcap = logUniform(r, 20_000_000_000, 2_000_000_000_000)
		}
		shares := max(mcap/price/1000*1000, 1_000_000)
		vol := int64(200) + r.intn(100)
		if market == kisfeed.MarketKOSDAQ {
			vol = 260 + r.intn(160)
		}
		s := &stock{
			Stock: kisfeed.Stock{
				Code: code, Name: name, Market: market, Group: "ST",
				ListedShares: shares, ListingDate: ld,
			},
			engName: eng, sector: nameSuffixes[suf].sector,
			par:   []int64{100, 200, 500, 500, 500, 1_000, 2_500, 5_000, 5_000}[r.intn(9)],
			admin: r.intn(100) == 0, nxt: r.intn(10) < 3,
			first: first, anchor: price, bandLo: max(price/3, 100), bandHi: price * 3,
			volBp: vol, revBp: 20, jumpy: true,
		}
		s.p0 = roundTick(price * (80 + r.intn(41)) / 100)
		s.avgVol = shares * (10 + r.intn(140)) / 10_000
		made = append(made, s)
		u.out = append(u.out, s)
	}
	return made
}

// genPrefs makes count preferred shares of some of the commons made: code
// ending in 5, name + "우", priced below the common.
func (u *universeBuilder) genPrefs(market kisfeed.Market, made []*stock, count int) {
	r := &u.r
	for k := 0; k < count; k++ {
		var cm *stock
		for {
			cm = made[r.intn(int64(len(made)))]
			n, _ := strconv.Atoi(cm.Code)
			if !u.used[n+5] && len([]rune(cm.Name)) < 19 {
				u.used[n+5] = true
				break
			}
		}
		n, _ := strconv.Atoi(cm.Code)
		anchor := roundTick(cm.anchor * (55 + r.intn(35)) / 100)
		s := &stock{
			Stock: kisfeed.Stock{
				Code: leftPad6(n + 5), Name: cm.Name + "우", Market: market, Group: "ST",
				Preferred: true, ListedShares: max(cm.ListedShares*(5+r.intn(20))/100/1000*1000, 100_000),
				ListingDate: cm.ListingDate,
			},
			engName: cm.engName + " Pref", sector: cm.sector, par: cm.par,
			nxt: false, first: cm.first, anchor: anchor,
			bandLo: max(anchor/3, 100), bandHi: anchor * 3, volBp: cm.volBp - 40, revBp: 20,
		}
		s.p0 = roundTick(anchor * (85 + r.intn(31)) / 100)
		s.avgVol = s.ListedShares * (5 + r.intn(40)) / 10_000
		u.names[s.Name] = true
		u.out = append(u.out, s)
	}
}

// genETFs tops the ETFs up to targetETF: brand + theme, unique.
func (u *universeBuilder) genETFs() {
	r := &u.r
	for k := len(realETFs); k < targetETF; k++ {
		var name, eng string
		for {
			b := etfBrands[r.intn(int64(len(etfBrands)))]
			th := etfThemes[r.intn(int64(len(etfThemes)))]
			name, eng = b+" "+th[0], b+" "+th[1]
			if !u.names[name] {
				break
			}
		}
		u.names[name] = true
		price := logUniform(r, 5_000, 60_000)
		ld, first := u.listing()
		s := &stock{
			Stock: kisfeed.Stock{
				Code: u.newCode(10_000, 49_000), Name: name, Market: kisfeed.MarketKOSPI, Group: "EF",
				ListedShares: (5 + r.intn(200)) * 1_000_000, ListingDate: ld,
			},
			engName: eng, nxt: r.intn(2) == 0, first: first,
			anchor: price, bandLo: price / 2, bandHi: price * 2, volBp: 90 + r.intn(150), revBp: 20,
		}
		s.p0 = roundTick(price)
		s.avgVol = s.ListedShares * (20 + r.intn(100)) / 10_000
		u.out = append(u.out, s)
	}
}

// finish derives each stock's hash, ISIN, full name, idle share and
// listing day, and sorts the universe by code.
func (u *universeBuilder) finish() {
	for _, s := range u.out {
		s.hash = fnv1a(s.Code)
		s.ISIN = isinFor(s.Code, s.Preferred)
		if s.fullName == "" {
			switch {
			case s.Group == "EF":
				s.fullName = s.Name
			case s.Preferred:
				s.fullName = trimPref(s.Name) + "1우선주"
			default:
				s.fullName = s.Name + "보통주"
			}
		}
		s.avgVol = max(s.avgVol, 2_000)
		// Thinly traded stocks have minutes without a trade.
		if s.avgVol < 300_000 {
			s.idle = (300_000 - s.avgVol) * 30_000 / 300_000
		}
		if s.first > 0 {
			s.ListingDate = u.c.days[s.first]
		}
	}
	slices.SortFunc(u.out, func(a, b *stock) int { return strings.Compare(a.Code, b.Code) })
}

func trimPref(name string) string {
	r := []rune(name)
	if len(r) > 1 && r[len(r)-1] == '우' {
		return string(r[:len(r)-1])
	}
	return name
}

func leftPad6(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 6 {
		s = "0" + s
	}
	return s
}

func nextTrading(d time.Time) time.Time {
	c := cal()
	off, _ := split(d)
	for o := max(off, 0); o < calDays; o++ {
		if c.idx[o] >= 0 {
			return c.days[c.idx[o]]
		}
	}
	return LastDay
}
