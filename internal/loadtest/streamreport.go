package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// StreamResult is what a stream run measured. Events, latencies, gaps and
// Disconnects are those of the consumers that kept reading; the slow
// ones' are apart (SlowEvents, SlowDisconnects). Its JSON is
// [StreamResult.MarshalJSON]'s.
type StreamResult struct {
	Target    string
	Transport string // "sse" or "ws"
	Clients   int    // requested
	Started   int    // consumers started (fewer when interrupted during the ramp)
	Connected int    // consumers whose stream opened
	Codes     int
	// CodesCovered is how many of the codes had at least one consumer.
	CodesCovered int
	PerClient    int
	Kinds        []string
	Slow         int
	Duration     time.Duration
	Ramp         time.Duration
	// Elapsed is the main phase, from the first connection to the end of
	// the duration (or of the last reading consumer); the slow consumers'
	// drain comes after it.
	Elapsed time.Duration
	// Events counts events by type ("trade", "book", "gap", "error",
	// "subscribed", "other").
	Events     map[string]int
	SlowEvents map[string]int
	// EventsPerSec is trade and book events delivered per second of
	// Elapsed, over all reading consumers; PerConsumer spreads the same
	// figure over the consumers, each over its own connected time.
	EventsPerSec float64
	PerConsumer  RateSpread
	// Delivery is receipt − received_at (the server's share; received_at
	// has millisecond precision, so it reads up to 1 ms high); EndToEnd is
	// receipt − time (meaningful when the market clock is the wall clock).
	Delivery, EndToEnd LatencySummary
	// Gaps and ErrorEvents count gap and error events by reason.
	Gaps, ErrorEvents map[string]int
	// Disconnects counts streams that ended before the run did (or never
	// opened), by reason: "error event: slow_consumer", "close 1008:
	// ...", "eof", "http 429", "connect failed", "read error".
	Disconnects     map[string]int
	SlowDisconnects map[string]int
	// Duplicates counts ids a consumer saw twice (must be 0); OutOfOrder
	// ids below one already seen; Late ids too far back to tell; BadIDs
	// ids not shaped "<epoch>-<seq>"; EpochChanges new epochs seen.
	Duplicates, OutOfOrder, Late, BadIDs, EpochChanges int
	// Pings counts ": ping" comments (SSE).
	Pings int
	// ServerCounters are the deltas over the run of the target's
	// kisfeed_stream_* counters about drops and disconnects, by series;
	// nil when /metrics was unreadable or had none.
	ServerCounters map[string]float64
	// MemBefore and MemAfter are the target's memory from its /metrics.
	MemBefore, MemAfter Memory
	// ClientRSS and ClientPeakRSS are the generator's own resident memory
	// at the end and at its peak (Linux; 0 elsewhere).
	ClientRSS, ClientPeakRSS float64
	FirstError               string
}

// RateSpread is events per second per consumer.
type RateSpread struct {
	Mean, Min, Median, Max float64
}

// Failure reports whether the run failed: no consumer connected, or a
// consumer saw an id twice. nil otherwise; gaps, latencies and
// disconnects are figures to judge, not failures.
func (r StreamResult) Failure() error {
	switch {
	case r.Connected == 0 && r.Started > 0:
		msg := "no consumer connected"
		if r.FirstError != "" {
			msg += ": first error: " + r.FirstError
		}
		return fmt.Errorf("%s", msg)
	case r.Duplicates > 0:
		return fmt.Errorf("%d duplicate event ids", r.Duplicates)
	}
	return nil
}

// WriteText prints the figures for people.
func (r StreamResult) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "target        %s (%s)\n", r.Target, r.Transport)
	fmt.Fprintf(&b, "consumers     %d connected of %d (%d slow), %d codes each of %d (%d covered), kinds %s\n",
		r.Connected, r.Clients, r.Slow, r.PerClient, r.Codes, r.CodesCovered, strings.Join(r.Kinds, ","))
	fmt.Fprintf(&b, "run           %s after a %s ramp (elapsed %s)\n", r.Duration, r.Ramp, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "events        %s\n", counts(r.Events))
	fmt.Fprintf(&b, "delivered     %.1f events/s in total; per consumer mean %.2f, min %.2f, median %.2f, max %.2f /s\n",
		r.EventsPerSec, r.PerConsumer.Mean, r.PerConsumer.Min, r.PerConsumer.Median, r.PerConsumer.Max)
	for _, l := range []struct {
		name string
		s    LatencySummary
	}{{"delivery", r.Delivery}, {"end-to-end", r.EndToEnd}} {
		fmt.Fprintf(&b, "%-13s p50 %s  p90 %s  p99 %s  max %s (%d events", l.name, ms(l.s.P50), ms(l.s.P90), ms(l.s.P99), ms(l.s.Max), l.s.Count)
		if l.s.Negative > 0 {
			fmt.Fprintf(&b, ", %d before their timestamp", l.s.Negative)
		}
		b.WriteString(")\n")
	}
	fmt.Fprintf(&b, "gaps          %s\n", counts(r.Gaps))
	fmt.Fprintf(&b, "error events  %s\n", counts(r.ErrorEvents))
	fmt.Fprintf(&b, "disconnects   %s\n", counts(r.Disconnects))
	if r.Slow > 0 {
		fmt.Fprintf(&b, "slow          %s; events read after stalling %s\n", counts(r.SlowDisconnects), counts(r.SlowEvents))
	}
	fmt.Fprintf(&b, "ids           %d duplicate, %d out of order, %d late, %d malformed, %d epoch changes\n",
		r.Duplicates, r.OutOfOrder, r.Late, r.BadIDs, r.EpochChanges)
	if r.Transport == "sse" {
		fmt.Fprintf(&b, "pings         %d\n", r.Pings)
	}
	if r.ServerCounters == nil {
		b.WriteString("server drops  n/a (no kisfeed_stream_*drop*/*disconnect* counters in /metrics)\n")
	} else {
		b.WriteString("server drops ")
		for _, k := range slices.Sorted(maps.Keys(r.ServerCounters)) {
			fmt.Fprintf(&b, " %s:%g", k, r.ServerCounters[k])
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "target rss    %s before, %s after (from /metrics)\n", mb(r.MemBefore.RSS), mb(r.MemAfter.RSS))
	fmt.Fprintf(&b, "client rss    %s at the end, %s peak\n", mb(r.ClientRSS), mb(r.ClientPeakRSS))
	if r.FirstError != "" {
		fmt.Fprintf(&b, "first error   %s\n", r.FirstError)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// counts prints a map as "k:v k:v" in key order, or "none".
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// latencyJSON is a LatencySummary in milliseconds.
type latencyJSON struct {
	Count    uint64  `json:"count"`
	Negative uint64  `json:"before_timestamp"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

func (s LatencySummary) json() latencyJSON {
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return latencyJSON{s.Count, s.Negative, msf(s.P50), msf(s.P90), msf(s.P99), msf(s.Max)}
}

// MarshalJSON writes durations as seconds or milliseconds (float).
func (r StreamResult) MarshalJSON() ([]byte, error) {
	type ids struct {
		Duplicates   int `json:"duplicates"`
		OutOfOrder   int `json:"out_of_order"`
		Late         int `json:"late"`
		Malformed    int `json:"malformed"`
		EpochChanges int `json:"epoch_changes"`
	}
	return json.Marshal(struct {
		Target          string             `json:"target"`
		Transport       string             `json:"transport"`
		Clients         int                `json:"clients"`
		Started         int                `json:"started"`
		Connected       int                `json:"connected"`
		Codes           int                `json:"codes"`
		CodesCovered    int                `json:"codes_covered"`
		PerClient       int                `json:"per_client"`
		Kinds           []string           `json:"kinds"`
		Slow            int                `json:"slow"`
		DurationS       float64            `json:"duration_s"`
		RampS           float64            `json:"ramp_s"`
		ElapsedS        float64            `json:"elapsed_s"`
		Events          map[string]int     `json:"events"`
		SlowEvents      map[string]int     `json:"slow_events"`
		EventsPerSec    float64            `json:"events_per_s"`
		PerConsumer     map[string]float64 `json:"per_consumer_events_per_s"`
		Delivery        latencyJSON        `json:"delivery_latency"`
		EndToEnd        latencyJSON        `json:"end_to_end_latency"`
		Gaps            map[string]int     `json:"gaps"`
		ErrorEvents     map[string]int     `json:"error_events"`
		Disconnects     map[string]int     `json:"disconnects"`
		SlowDisconnects map[string]int     `json:"slow_disconnects"`
		IDs             ids                `json:"ids"`
		Pings           int                `json:"pings"`
		ServerCounters  map[string]float64 `json:"server_counters"` // null: n/a
		MemBefore       Memory             `json:"mem_before"`
		MemAfter        Memory             `json:"mem_after"`
		ClientRSS       float64            `json:"client_rss_bytes"`
		ClientPeakRSS   float64            `json:"client_peak_rss_bytes"`
		FirstError      string             `json:"first_error,omitempty"`
	}{
		r.Target, r.Transport, r.Clients, r.Started, r.Connected, r.Codes, r.CodesCovered, r.PerClient,
		r.Kinds, r.Slow, r.Duration.Seconds(), r.Ramp.Seconds(), r.Elapsed.Seconds(), r.Events, r.SlowEvents,
		r.EventsPerSec, map[string]float64{"mean": r.PerConsumer.Mean, "min": r.PerConsumer.Min,
			"median": r.PerConsumer.Median, "max": r.PerConsumer.Max},
		r.Delivery.json(), r.EndToEnd.json(), r.Gaps, r.ErrorEvents, r.Disconnects, r.SlowDisconnects,
		ids{r.Duplicates, r.OutOfOrder, r.Late, r.BadIDs, r.EpochChanges}, r.Pings, r.ServerCounters,
		r.MemBefore, r.MemAfter, r.ClientRSS, r.ClientPeakRSS, r.FirstError,
	})
}

// streamSnapshot is what a stream run reads from the target's /metrics.
type streamSnapshot struct {
	counters serverCounters
	mem      Memory
}

// serverCounters are counter values by series ("name{label=...}"); nil
// when none of the wanted families was exposed.
type serverCounters map[string]float64

func (c serverCounters) sub(o serverCounters) map[string]float64 {
	if c == nil {
		return nil
	}
	out := make(map[string]float64, len(c))
	for k, v := range c {
		out[k] = v - o[k]
	}
	return out
}

// isStreamDropCounter says whether a family counts dropped events or
// disconnected consumers of the fan-out; the names are the server's
// choice, so any kisfeed_stream_* name mentioning drops or disconnects.
func isStreamDropCounter(name string) bool {
	return strings.HasPrefix(name, "kisfeed_stream_") &&
		(strings.Contains(name, "drop") || strings.Contains(name, "disconnect"))
}

// scrapeStream reads the target's /metrics.
func scrapeStream(ctx context.Context, c *http.Client, base string) (streamSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return streamSnapshot{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return streamSnapshot{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return streamSnapshot{}, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return streamSnapshot{}, err
	}
	return parseStreamMetrics(body)
}

// parseStreamMetrics reads the drop and disconnect counters, by series,
// and the memory figures from a Prometheus text exposition.
func parseStreamMetrics(body []byte) (streamSnapshot, error) {
	snap, err := ParseMetrics(bytes.NewReader(body))
	if err != nil {
		return streamSnapshot{}, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return streamSnapshot{}, fmt.Errorf("metrics: %w", err)
	}
	out := streamSnapshot{mem: snap.Memory}
	for name, f := range families {
		if !isStreamDropCounter(name) {
			continue
		}
		if out.counters == nil {
			out.counters = serverCounters{}
		}
		for _, m := range f.GetMetric() {
			key := name
			if lp := m.GetLabel(); len(lp) > 0 {
				labels := make([]string, len(lp))
				for i, l := range lp {
					labels[i] = l.GetName() + "=" + strconv.Quote(l.GetValue())
				}
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out.counters[key] += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return out, nil
}

// selfRSS returns this process's resident memory now and at its peak,
// from /proc/self/status (Linux); zeros elsewhere.
func selfRSS() (now, peak float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			now = kb * 1024
		case "VmHWM":
			peak = kb * 1024
		}
	}
	return now, peak
}
