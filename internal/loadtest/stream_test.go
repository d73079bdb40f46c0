package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunStreamCounts: against the fake, both transports count events by
// type, pings, gaps and error events by reason, duplicate and
// out-of-order ids, the latencies from the fake's known timestamps, and
// how each stream ended.
func TestRunStreamCounts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		ws        bool
		end       string
		wantEnd   string
		wantPings int
	}{
		{"sse eof", false, "eof", "eof", 3},
		{"sse slow", false, "slow", "error event: slow_consumer", 3},
		{"ws eof", true, "eof", "eof", 0},
		{"ws close 1008", true, "slow", "close 1008: slow consumer", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeStream{t: t, script: standardScript, end: tc.end}
			srv := httptest.NewServer(f)
			defer srv.Close()
			r := runFake(t, fakeConfig(srv.URL, 3, tc.ws))

			wantEvents := map[string]int{"trade": 18, "book": 3, "gap": 3, "error": 3}
			if tc.ws {
				wantEvents["subscribed"] = 3
			}
			if tc.end == "slow" && !tc.ws {
				wantEvents["error"] = 6 // the final one too
			}
			if !maps.Equal(r.Events, wantEvents) {
				t.Errorf("events: got %v, want %v", r.Events, wantEvents)
			}
			if r.Connected != 3 || r.Pings != tc.wantPings {
				t.Errorf("connected, pings: got %d, %d; want 3, %d", r.Connected, r.Pings, tc.wantPings)
			}
			if r.Duplicates != 3 || r.OutOfOrder != 3 || r.Late != 0 || r.BadIDs != 0 {
				t.Errorf("ids: got %d dup, %d out of order, %d late, %d bad; want 3, 3, 0, 0", r.Duplicates, r.OutOfOrder, r.Late, r.BadIDs)
			}
			if want := map[string]int{"epoch_change": 3}; !maps.Equal(r.Gaps, want) {
				t.Errorf("gaps: got %v, want %v", r.Gaps, want)
			}
			wantErr := map[string]int{"subscription_limit": 3}
			if tc.end == "slow" && !tc.ws {
				wantErr["slow_consumer"] = 3
			}
			if !maps.Equal(r.ErrorEvents, wantErr) {
				t.Errorf("error events: got %v, want %v", r.ErrorEvents, wantErr)
			}
			if want := map[string]int{tc.wantEnd: 3}; !maps.Equal(r.Disconnects, want) {
				t.Errorf("disconnects: got %v, want %v", r.Disconnects, want)
			}
			// 21 trade and book events, each 5 ms after received_at and
			// 20 ms after time on the fake clock.
			wantLat := func(name string, got LatencySummary, d time.Duration) {
				if got.Count != 21 || got.P50 != d || got.P90 != d || got.P99 != d || got.Max != d || got.Negative != 0 {
					t.Errorf("%s latency: got %+v, want 21 events all at %s", name, got, d)
				}
			}
			wantLat("delivery", r.Delivery, 5*time.Millisecond)
			wantLat("end-to-end", r.EndToEnd, 20*time.Millisecond)
			if err := r.Failure(); err == nil || !strings.Contains(err.Error(), "3 duplicate") {
				t.Errorf("Failure: got %v, want the 3 duplicates named", err)
			}
		})
	}
}

// TestRunStreamRequests: every code has consumers, each asks for its
// codes and kinds, and the client's headers reach the server.
func TestRunStreamRequests(t *testing.T) {
	t.Parallel()
	for _, ws := range []bool{false, true} {
		f := &fakeStream{t: t, script: func([]string) []fakeFrame { return nil }, end: "eof"}
		srv := httptest.NewServer(f)
		cfg := fakeConfig(srv.URL, 6, ws)
		cfg.PerClient, cfg.Kinds = 2, []string{"trade"}
		cfg.Ramp = 10 * time.Millisecond // the consumers start staggered
		cfg.Client = &http.Client{Transport: headerTransport{"Authorization", "Bearer k1"}}
		r := runFake(t, cfg)
		srv.Close()
		if r.Started != 6 || r.Connected != 6 || r.CodesCovered != 4 {
			t.Errorf("ws=%v: started, connected, covered: got %d, %d, %d; want 6, 6, 4", ws, r.Started, r.Connected, r.CodesCovered)
		}
		perCode := map[string]int{}
		for _, s := range f.seen {
			for _, c := range s.codes {
				perCode[c]++
			}
			if len(s.codes) != 2 || !slices.Equal(s.kinds, []string{"trade"}) || s.auth != "Bearer k1" {
				t.Errorf("ws=%v: request %+v: want 2 codes, kinds [trade], the bearer token", ws, s)
			}
		}
		// 6 consumers × 2 codes over 4 codes: 3 each.
		if want := map[string]int{"000010": 3, "000020": 3, "000030": 3, "000040": 3}; !maps.Equal(perCode, want) {
			t.Errorf("ws=%v: consumers per code: got %v, want %v", ws, perCode, want)
		}
	}
}

// headerTransport sets one header on every request.
type headerTransport struct{ k, v string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.k, h.v)
	return http.DefaultTransport.RoundTrip(r)
}

// TestRunStreamRefused: a server answering a status instead of a stream
// is a disconnect named by the status, and a run in which nobody
// connected fails.
func TestRunStreamRefused(t *testing.T) {
	t.Parallel()
	for _, ws := range []bool{false, true} {
		f := &fakeStream{t: t, status: http.StatusTooManyRequests}
		srv := httptest.NewServer(f)
		r := runFake(t, fakeConfig(srv.URL, 2, ws))
		srv.Close()
		if want := map[string]int{"http 429": 2}; !maps.Equal(r.Disconnects, want) || r.Connected != 0 {
			t.Errorf("ws=%v: disconnects %v, connected %d: want %v, 0", ws, r.Disconnects, r.Connected, want)
		}
		if err := r.Failure(); err == nil || !strings.Contains(err.Error(), "no consumer connected") {
			t.Errorf("ws=%v: Failure: got %v, want no consumer connected", ws, err)
		}
	}
}

// TestRunStreamSlow: a consumer that reads nothing is cut off by the
// server; its events and disconnect are counted apart, and its latency
// does not enter the others'.
func TestRunStreamSlow(t *testing.T) {
	t.Parallel()
	for _, ws := range []bool{false, true} {
		// Consumer 0 (the slow one) alone has code 000010.
		f := &fakeStream{t: t, script: standardScript, end: "eof",
			isSlow: func(codes []string) bool { return codes[0] == "000010" }}
		srv := httptest.NewServer(f)
		cfg := fakeConfig(srv.URL, 4, ws)
		cfg.Slow = 1
		r := runFake(t, cfg)
		srv.Close()
		wantSlow := map[string]int{"error event: slow_consumer": 1}
		if ws {
			wantSlow = map[string]int{"close 1008: slow consumer": 1}
		}
		if !maps.Equal(r.SlowDisconnects, wantSlow) {
			t.Errorf("ws=%v: slow disconnects: got %v, want %v", ws, r.SlowDisconnects, wantSlow)
		}
		if want := map[string]int{"eof": 3}; !maps.Equal(r.Disconnects, want) {
			t.Errorf("ws=%v: disconnects: got %v, want %v", ws, r.Disconnects, want)
		}
		if r.SlowEvents["trade"] != 6 || r.Events["trade"] != 18 {
			t.Errorf("ws=%v: trades: got %d slow, %d others; want 6, 18", ws, r.SlowEvents["trade"], r.Events["trade"])
		}
		if r.Delivery.Count != 21 {
			t.Errorf("ws=%v: delivery latencies: got %d, want the 21 of the consumers that kept reading", ws, r.Delivery.Count)
		}
	}
}

// TestRunStreamHold: streams still open when the run ends are not
// disconnects, and the server's drop counters are read as deltas. The run
// is interrupted once both consumers have their event (their clock is the
// trigger), as a Ctrl-C would: the figures so far come back.
func TestRunStreamHold(t *testing.T) {
	t.Parallel()
	for _, ws := range []bool{false, true} {
		f := &fakeStream{t: t, script: func(c []string) []fakeFrame { return []fakeFrame{trade(c[0], "e2-1")} }, end: "hold",
			metrics: func(n int) string {
				return "# TYPE kisfeed_stream_consumer_drops_total counter\n" +
					"kisfeed_stream_consumer_drops_total{reason=\"slow\"} " + map[bool]string{true: "2", false: "9"}[n == 1] + "\n" +
					"kisfeed_stream_frames_total 100\nprocess_resident_memory_bytes 3e7\n"
			}}
		srv := httptest.NewServer(f)
		ctx, cancel := context.WithCancel(t.Context())
		var received atomic.Int32
		cfg := fakeConfig(srv.URL, 2, ws)
		messages := int32(2) // each consumer's trade
		if ws {
			messages = 4 // and its "subscribed"
		}
		cfg.Now = func() time.Time {
			if received.Add(1) == messages {
				cancel()
			}
			return fakeNow
		}
		r, err := RunStream(ctx, cfg)
		srv.Close()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ws=%v: RunStream: got %v, want context.Canceled", ws, err)
		}
		if len(r.Disconnects) != 0 || r.Connected != 2 || r.Events["trade"] != 2 {
			t.Errorf("ws=%v: disconnects %v, connected %d, events %v: want none, 2, 2 trades", ws, r.Disconnects, r.Connected, r.Events)
		}
		want := map[string]float64{`kisfeed_stream_consumer_drops_total{reason="slow"}`: 7}
		if !maps.Equal(r.ServerCounters, want) || r.MemAfter.RSS != 3e7 {
			t.Errorf("ws=%v: server counters %v, rss %v: want %v, 3e7", ws, r.ServerCounters, r.MemAfter.RSS, want)
		}
	}
}

// TestRunStreamScrapesBeforeHangUp: when the duration ends, the server's
// counters are read while the consumers are still connected, so the run's
// own hang-ups (which a server counts as reason "closed") are not in its
// figures.
func TestRunStreamScrapesBeforeHangUp(t *testing.T) {
	t.Parallel()
	f := &fakeStream{t: t, script: func(c []string) []fakeFrame { return []fakeFrame{trade(c[0], "e2-1")} }, end: "hold"}
	f.metrics = func(int) string {
		return "# TYPE kisfeed_stream_consumer_disconnects_total counter\n" +
			fmt.Sprintf("kisfeed_stream_consumer_disconnects_total{reason=\"closed\"} %d\n", f.hung.Load())
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := fakeConfig(srv.URL, 2, false)
	// The run ends by its duration; nothing is timed.
	cfg.Duration, cfg.Ramp = 50*time.Millisecond, 0
	r := runFake(t, cfg)
	want := map[string]float64{`kisfeed_stream_consumer_disconnects_total{reason="closed"}`: 0}
	if !maps.Equal(r.ServerCounters, want) {
		t.Errorf("server counters %v, want %v (the run's own hang-ups left out)", r.ServerCounters, want)
	}
}

// TestStreamReport: the text report names what a reader looks for, and
// says n/a for server counters the target lacks; the JSON carries the
// same figures.
func TestStreamReport(t *testing.T) {
	t.Parallel()
	f := &fakeStream{t: t, script: standardScript, end: "slow"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	r := runFake(t, fakeConfig(srv.URL, 2, false))
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"delivery      p50 5.000ms  p90 5.000ms  p99 5.000ms  max 5.000ms (14 events)",
		"end-to-end    p50 20.000ms", "disconnects   error event: slow_consumer:2",
		"ids           2 duplicate, 2 out of order", "server drops  n/a", "gaps          epoch_change:2",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	var j struct {
		Delivery struct {
			P99 float64 `json:"p99_ms"`
		} `json:"delivery_latency"`
		Disconnects    map[string]int     `json:"disconnects"`
		ServerCounters map[string]float64 `json:"server_counters"`
		IDs            struct {
			Duplicates int `json:"duplicates"`
		} `json:"ids"`
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &j); err != nil {
		t.Fatal(err)
	}
	if j.Delivery.P99 != 5 || j.Disconnects["error event: slow_consumer"] != 2 || j.ServerCounters != nil || j.IDs.Duplicates != 2 {
		t.Errorf("JSON: got %s", out)
	}
}

// TestStreamConfigValidate: each bad setting is refused naming its flag.
func TestStreamConfigValidate(t *testing.T) {
	t.Parallel()
	ok := func() StreamConfig {
		return StreamConfig{Target: "http://127.0.0.1:1", Clients: 2, PerClient: 1, Duration: time.Second}
	}
	for _, tc := range []struct {
		field string
		edit  func(*StreamConfig)
	}{
		{"target", func(c *StreamConfig) { c.Target = "ftp://x" }},
		{"clients", func(c *StreamConfig) { c.Clients = 0 }},
		{"per-client", func(c *StreamConfig) { c.PerClient = 101 }},
		{"kinds", func(c *StreamConfig) { c.Kinds = []string{"trade", "quote"} }},
		{"duration", func(c *StreamConfig) { c.Duration = 0 }},
		{"ramp", func(c *StreamConfig) { c.Ramp = -time.Second }},
		{"slow", func(c *StreamConfig) { c.Slow = 3 }},
		{"drain", func(c *StreamConfig) { c.Drain = -time.Second }},
	} {
		cfg := ok()
		tc.edit(&cfg)
		var fe *FieldError
		if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: got %v, want a FieldError naming %s", tc.field, err, tc.field)
		}
	}
	cfg := ok()
	if err := cfg.Validate(); err != nil || !slices.Equal(cfg.Kinds, []string{"trade", "book"}) || cfg.Drain != 5*time.Second {
		t.Errorf("defaults: %v, kinds %v, drain %s", err, cfg.Kinds, cfg.Drain)
	}
	cfg.Codes = []string{"000010"}
	cfg.PerClient = 2
	var fe *FieldError
	if _, err := RunStream(t.Context(), cfg); !errors.As(err, &fe) || fe.Field != "per-client" {
		t.Errorf("2 per client of 1 code: got %v, want a FieldError naming per-client", err)
	}
}

// TestAssignCodes: consumers take consecutive codes, wrapping around.
func TestAssignCodes(t *testing.T) {
	t.Parallel()
	codes := []string{"a", "b", "c", "d", "e"}
	for _, tc := range []struct {
		per, i int
		want   []string
	}{
		{1, 0, []string{"a"}}, {1, 6, []string{"b"}}, {2, 2, []string{"e", "a"}}, {5, 3, []string{"a", "b", "c", "d", "e"}},
	} {
		if got := AssignCodes(codes, tc.per, tc.i); !slices.Equal(got, tc.want) {
			t.Errorf("AssignCodes(per %d, i %d): got %v, want %v", tc.per, tc.i, got, tc.want)
		}
	}
}
