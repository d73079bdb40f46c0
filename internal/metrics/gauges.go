package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// KeyRate is one app key's request rate budget, as the KIS client paces
// it.
type KeyRate struct {
	// Key is the app key's id ("key1", "key2", ... in the order of the
	// configuration), never the app key itself.
	Key string
	// Limit is the configured limit, requests per second
	// (KIS_RATE_LIMIT, or the server's documented limit).
	Limit float64
	// Pacing is the rate the client paces at now: a little under Limit,
	// lower for a while after KIS answered EGW00201.
	Pacing float64
}

// funcCollector exports gauges computed at scrape time by a function
// installed later (the wiring's figures are known only once the stack is
// built), so there is no goroutine to own and no stale value to reset.
// Its descriptors are described from the start: a name is part of the
// registry before the first value exists.
type funcCollector struct {
	descs []*prometheus.Desc
	emit  func(f any, ch chan<- prometheus.Metric)

	mu sync.Mutex // guards f
	f  any
}

func (c *funcCollector) set(f any) {
	c.mu.Lock()
	c.f = f
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.f
	c.mu.Unlock()
	if f != nil {
		c.emit(f, ch)
	}
}

func newRateCollector() *funcCollector {
	limit := prometheus.NewDesc(Namespace+"_kis_rate_limit",
		"Configured KIS request rate limit of an app key, requests per second, by app key id.", []string{"key"}, nil)
	pacing := prometheus.NewDesc(Namespace+"_kis_pacing_rate",
		"Rate the KIS client paces an app key at now, requests per second (under the limit; lower after EGW00201), by app key id.",
		[]string{"key"}, nil)
	return &funcCollector{
		descs: []*prometheus.Desc{limit, pacing},
		emit: func(f any, ch chan<- prometheus.Metric) {
			for _, r := range f.(func() []KeyRate)() {
				ch <- prometheus.MustNewConstMetric(limit, prometheus.GaugeValue, r.Limit, r.Key)
				ch <- prometheus.MustNewConstMetric(pacing, prometheus.GaugeValue, r.Pacing, r.Key)
			}
		},
	}
}

func newMarketCollector() *funcCollector {
	day := prometheus.NewDesc(Namespace+"_krx_trading_day",
		"1 when today (KST, on the market clock) is a KRX trading day, else 0 (weekends and KRX holidays).", nil, nil)
	open := prometheus.NewDesc(Namespace+"_krx_market_open",
		"1 while the KRX regular session (09:00-15:30 KST on a trading day, market clock) is running, else 0.", nil, nil)
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return &funcCollector{
		descs: []*prometheus.Desc{day, open},
		emit: func(f any, ch chan<- prometheus.Metric) {
			tradingDay, isOpen := f.(func() (bool, bool))()
			ch <- prometheus.MustNewConstMetric(day, prometheus.GaugeValue, b(tradingDay))
			ch <- prometheus.MustNewConstMetric(open, prometheus.GaugeValue, b(isOpen))
		},
	}
}

// SetRateFunc installs the function the rate-limit gauges
// (kisfeed_kis_rate_limit, kisfeed_kis_pacing_rate) read at each scrape:
// one [KeyRate] per app key; none in mock mode. Passing nil removes it.
func (m *Metrics) SetRateFunc(f func() []KeyRate) {
	if f == nil {
		m.rates.set(nil)
		return
	}
	m.rates.set(f)
}

// SetMarketFunc installs the function the market gauges
// (kisfeed_krx_trading_day, kisfeed_krx_market_open) read at each scrape.
// It reports whether today is a KRX trading day and whether the regular
// session is open, on the market clock. Alert rules need them because
// PromQL knows weekdays (in UTC) but not KRX holidays. Passing nil removes
// it.
func (m *Metrics) SetMarketFunc(f func() (tradingDay, open bool)) {
	if f == nil {
		m.market.set(nil)
		return
	}
	m.market.set(f)
}
