package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RunFigures are the figures of one ingestion run, as the ingestion job
// records them.
type RunFigures struct {
	// Started and Finished bound the run; Finished is zero while it runs.
	Started, Finished time.Time
	// Stocks is the number of stocks the run set out to ingest; Succeeded
	// and Failed how many ended each way.
	Stocks, Succeeded, Failed int64
	// Rows is the number of rows (bars) written.
	Rows int64
	// Status is the run's state ("running", "succeeded", "failed",
	// "interrupted", "abandoned"; see [RunStatuses]); empty leaves the
	// status gauge out.
	Status string
	// LastSuccess is when the newest succeeded run finished, which may be
	// an older run than the one the other fields describe; zero when none
	// is known. An alert asks "has today's ingestion succeeded?", and the
	// latest run alone cannot say it once a later run (a retry, a
	// backfill) failed after a success.
	LastSuccess time.Time
}

// RunStatuses are the ingestion-run states the status gauge always
// exports (the values of kisfeed.RunStatus), so a rule can compare the
// current one with 0 series for the rest.
var RunStatuses = []string{"running", "succeeded", "failed", "interrupted", "abandoned"}

// ingestCollector exports the latest run's figures at scrape time, read
// through a function so the figures come from wherever the job stores
// them (the database's run table) without a polling goroutine.
type ingestCollector struct {
	mu sync.Mutex // guards f
	f  func() (RunFigures, bool)

	started, finished, duration, stocks, rows, status, success *prometheus.Desc
}

func newIngestCollector() *ingestCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_ingest_last_run_"+name, help, labels, nil)
	}
	return &ingestCollector{
		started:  d("start_timestamp_seconds", "Unix time the latest ingestion run started."),
		finished: d("end_timestamp_seconds", "Unix time the latest ingestion run finished (0 while running)."),
		duration: d("duration_seconds", "Duration of the latest ingestion run (so far, while running)."),
		stocks:   d("stocks", "Stocks of the latest ingestion run, by result: total, succeeded, failed.", "result"),
		rows:     d("rows", "Rows written by the latest ingestion run."),
		status:   d("status", "State of the latest ingestion run: 1 for its state, 0 for the others.", "status"),
		success: prometheus.NewDesc(Namespace+"_ingest_last_success_timestamp_seconds",
			"Unix time the newest succeeded ingestion run finished.", nil, nil),
	}
}

func (c *ingestCollector) set(f func() (RunFigures, bool)) {
	c.mu.Lock()
	c.f = f
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.started
	ch <- c.finished
	ch <- c.duration
	ch <- c.stocks
	ch <- c.rows
	ch <- c.status
	ch <- c.success
}

// Collect implements prometheus.Collector.
func (c *ingestCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.f
	c.mu.Unlock()
	if f == nil {
		return
	}
	r, ok := f()
	if !ok {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	gauge(c.started, unix(r.Started))
	gauge(c.finished, unix(r.Finished))
	end := r.Finished
	if end.IsZero() {
		end = time.Now()
	}
	if !r.Started.IsZero() {
		gauge(c.duration, end.Sub(r.Started).Seconds())
	}
	gauge(c.stocks, float64(r.Stocks), "total")
	gauge(c.stocks, float64(r.Succeeded), "succeeded")
	gauge(c.stocks, float64(r.Failed), "failed")
	gauge(c.rows, float64(r.Rows))
	if r.Status != "" {
		known := false
		for _, s := range RunStatuses {
			v := 0.0
			if s == r.Status {
				v, known = 1, true
			}
			gauge(c.status, v, s)
		}
		if !known {
			gauge(c.status, 1, r.Status)
		}
	}
	if !r.LastSuccess.IsZero() {
		gauge(c.success, unix(r.LastSuccess))
	}
}
