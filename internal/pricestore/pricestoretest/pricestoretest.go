// Package pricestoretest is the conformance suite every [kisfeed.PriceStore]
// passes: the SQLite and PostgreSQL stores run the same tests, so they
// count inserts, updates and unchanged rows the same way.
package pricestoretest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kisfeed/kisfeed"
)

// Opener returns a fresh, empty, migrated store; the caller's cleanup
// closes it.
type Opener func(t *testing.T) kisfeed.PriceStore

// Run runs the whole suite against stores made by open.
func Run(t *testing.T, open Opener) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s kisfeed.PriceStore)
	}{
		{"UpsertCounts", testUpsertCounts},
		{"UpsertDuplicatesInBatch", testUpsertDuplicates},
		{"ReadBack", testReadBack},
		{"BarCountsAndSample", testBarCountsAndSample},
		{"Rejected", testRejected},
		{"Runs", testRuns},
		{"RunLease", testRunLease},
		{"Stocks", testStocks},
		{"Empty", testEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

var (
	day1 = kisfeed.Date(2025, 6, 2)
	day2 = kisfeed.Date(2025, 6, 3)
	at   = time.Date(2025, 6, 3, 16, 5, 0, 0, kisfeed.KST)
)

func bar(code string, day time.Time, close int64) kisfeed.DailyBar {
	return kisfeed.DailyBar{
		Code: code, Date: day, Open: close - 100, High: close + 200, Low: close - 300, Close: close,
		Volume: 1000, Value: 1000 * close, Source: "mock/quotes", FetchedAt: at,
	}
}

func testUpsertCounts(t *testing.T, s kisfeed.PriceStore) {
	ctx := t.Context()
	first := []kisfeed.DailyBar{bar("005930", day1, 70000), bar("000660", day1, 180000), bar("005930", day2, 70500)}
	steps := []struct {
		name string
		bars []kisfeed.DailyBar
		want kisfeed.WriteResult
	}{
		{"fresh", first, kisfeed.WriteResult{Inserted: 3}},
		{"same again", first, kisfeed.WriteResult{Unchanged: 3}},
		{"one changed one new", []kisfeed.DailyBar{
			bar("005930", day1, 70000), bar("000660", day1, 181000), bar("035420", day1, 190000),
		}, kisfeed.WriteResult{Inserted: 1, Updated: 1, Unchanged: 1}},
		{"provenance only", []kisfeed.DailyBar{func() kisfeed.DailyBar {
			b := bar("005930", day1, 70000)
			b.Source, b.FetchedAt = "kis/candles", at.Add(time.Hour)
			return b
		}()}, kisfeed.WriteResult{Unchanged: 1}},
	}
	for _, st := range steps {
		got, err := s.UpsertBars(ctx, st.bars)
		if err != nil {
			t.Fatalf("%s: UpsertBars: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: UpsertBars = %+v, want %+v", st.name, got, st.want)
		}
	}
	n, err := s.CountBars(ctx, day1, day2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("CountBars = %d, want 4", n)
	}
	got, err := s.Bars(ctx, "000660", day1, day1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Close != 181000 {
		t.Errorf("Bars(000660) = %+v, want one bar closing 181000", got)
	}
	// Unchanged rows keep their first provenance.
	got, err = s.Bars(ctx, "005930", day1, day1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Source != "mock/quotes" || !got[0].FetchedAt.Equal(at) {
		t.Errorf("Bars(005930) = %+v, want source mock/quotes fetched %v", got, at)
	}
}

func testUpsertDuplicates(t *testing.T, s kisfeed.PriceStore) {
	got, err := s.UpsertBars(t.Context(), []kisfeed.DailyBar{bar("005930", day1, 70000), bar("005930", day1, 71000)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (kisfeed.WriteResult{Inserted: 1}); got != want {
		t.Errorf("UpsertBars = %+v, want %+v", got, want)
	}
	bars, err := s.BarsOn(t.Context(), day1)
	if err != nil {
		t.Fatal(err)
	}
	if len(bars) != 1 || bars[0].Close != 71000 {
		t.Errorf("BarsOn = %+v, want one bar closing 71000 (the last)", bars)
	}
}

func testReadBack(t *testing.T, s kisfeed.PriceStore) {
	ctx := t.Context()
	in := []kisfeed.DailyBar{bar("005930", day2, 70500), bar("005930", day1, 70000), bar("000660", day1, 180000)}
	if _, err := s.UpsertBars(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Bars(ctx, "005930", day1, day2)
	if err != nil {
		t.Fatal(err)
	}
	want := []kisfeed.DailyBar{in[1], in[0]}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("Bars mismatch (-want +got):\n%s", diff)
	}
	for _, b := range got {
		if b.Date.Location().String() != kisfeed.KST.String() || b.Date.Hour() != 0 {
			t.Errorf("bar date %v: want midnight KST", b.Date)
		}
	}
	on, err := s.BarsOn(ctx, day1)
	if err != nil {
		t.Fatal(err)
	}
	if len(on) != 2 || on[0].Code != "000660" || on[1].Code != "005930" {
		t.Errorf("BarsOn(day1) codes = %v, want [000660 005930]", codes(on))
	}
}

func codes(bars []kisfeed.DailyBar) []string {
	var out []string
	for _, b := range bars {
		out = append(out, b.Code)
	}
	return out
}

func testBarCountsAndSample(t *testing.T, s kisfeed.PriceStore) {
	ctx := t.Context()
	var in []kisfeed.DailyBar
	for i := range 30 {
		code := fmt.Sprintf("%06d", 100000+i)
		in = append(in, bar(code, day1, 10000+int64(i)*10))
		if i%2 == 0 {
			in = append(in, bar(code, day2, 10000+int64(i)*10))
		}
	}
	if _, err := s.UpsertBars(ctx, in); err != nil {
		t.Fatal(err)
	}
	counts, err := s.BarCounts(ctx, day1, day2)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 30 || counts["100000"] != 2 || counts["100001"] != 1 {
		t.Errorf("BarCounts: %d codes, 100000=%d 100001=%d; want 30 codes, 2, 1", len(counts), counts["100000"], counts["100001"])
	}
	only2, err := s.BarCounts(ctx, day2, day2)
	if err != nil {
		t.Fatal(err)
	}
	if len(only2) != 15 {
		t.Errorf("BarCounts(day2): %d codes, want 15", len(only2))
	}
	sample, err := s.SampleBars(ctx, day1, day1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(sample) != 10 {
		t.Fatalf("SampleBars: %d bars, want 10", len(sample))
	}
	seen := map[string]bool{}
	for _, b := range sample {
		if !b.Date.Equal(day1) || seen[b.Code] {
			t.Errorf("sample bar %s %v: want distinct codes on %v", b.Code, b.Date, day1)
		}
		seen[b.Code] = true
	}
	all, err := s.SampleBars(ctx, day1, day2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 45 {
		t.Errorf("SampleBars(1000): %d bars, want all 45", len(all))
	}
}

func testRejected(t *testing.T, s kisfeed.PriceStore) {
	ctx := t.Context()
	run := &kisfeed.IngestionRun{From: day1, To: day1, Path: "quotes"}
	if err := s.StartRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"code": "005930", "high": 1, "low": 2})
	rej := []kisfeed.RejectedBar{
		{RunID: run.ID, Code: "005930", Date: day1, Reason: "high 1 < low 2", Payload: payload},
		{RunID: run.ID, Code: "000660", Reason: "no date", Payload: []byte(`not json`)},
	}
	if err := s.AddRejected(ctx, rej); err != nil {
		t.Fatal(err)
	}
	if rej[0].ID == 0 || rej[1].ID == 0 || rej[0].ID == rej[1].ID {
		t.Errorf("IDs = %d, %d: want distinct non-zero", rej[0].ID, rej[1].ID)
	}
	got, err := s.Rejected(ctx, day1, day1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("Rejected(day1): %d rows, want 1", len(got))
	}
	g := got[0]
	if g.Code != "005930" || g.RunID != run.ID || g.Reason != rej[0].Reason || !g.Date.Equal(day1) || g.CreatedAt.IsZero() {
		t.Errorf("Rejected(day1)[0] = %+v, want %+v", g, rej[0])
	}
	var m map[string]any
	if err := json.Unmarshal(g.Payload, &m); err != nil || m["code"] != "005930" {
		t.Errorf("payload = %s, want the JSON stored", g.Payload)
	}
	every, err := s.Rejected(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(every) != 2 {
		t.Errorf("Rejected(all): %d rows, want 2", len(every))
	}
	if n, _ := s.CountBars(ctx, day1, day1); n != 0 {
		t.Errorf("CountBars after rejects = %d, want 0", n)
	}
}

func testRuns(t *testing.T, s kisfeed.PriceStore) {
	ctx := t.Context()
	started := time.Date(2025, 6, 3, 16, 10, 0, 0, kisfeed.KST)
	r1 := &kisfeed.IngestionRun{StartedAt: started, From: day1, To: day2, Path: "candles", Universe: 10, Status: kisfeed.RunSucceeded}
	if err := s.StartRun(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if r1.ID == 0 || r1.Status != kisfeed.RunRunning {
		t.Fatalf("StartRun: id %d status %q, want an id and running", r1.ID, r1.Status)
	}
	r2 := &kisfeed.IngestionRun{StartedAt: started.Add(time.Minute), From: day2, To: day2, Path: "quotes", Universe: 5}
	if err := s.StartRun(ctx, r2); err != nil {
		t.Fatal(err)
	}
	fin := *r1
	fin.FinishedAt = started.Add(3 * time.Second)
	fin.Status = kisfeed.RunInterrupted
	fin.Fetched, fin.Written, fin.Unchanged, fin.Rejected, fin.Failed = 9, 7, 1, 1, 1
	fin.Requests, fin.Elapsed, fin.Error, fin.Unwritten = 42, 3*time.Second, "interrupted", 2
	if err := s.FinishRun(ctx, fin); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, kisfeed.IngestionRun{ID: 999999, Status: kisfeed.RunFailed}); err == nil {
		t.Errorf("FinishRun(unknown id): got nil error, want one")
	}
	runs, err := s.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("Runs: %d, want 2", len(runs))
	}
	if runs[0].ID != r2.ID || runs[0].Status != kisfeed.RunRunning || !runs[0].FinishedAt.IsZero() {
		t.Errorf("Runs[0] = %+v, want run %d still running", runs[0], r2.ID)
	}
	if diff := cmp.Diff(fin, runs[1], cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("Runs[1] mismatch (-want +got):\n%s", diff)
	}
}

// testRunLease: a running run whose heartbeat is older than the cutoff,
// or whose owner the dead func says is gone, is marked abandoned, finished
// at its last heartbeat; a live or finished run is left alone (and its
// owner never asked about), an empty owner is never asked about, and a
// late heartbeat cannot bring an abandoned run back.
func testRunLease(t *testing.T, s kisfeed.PriceStore) {
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	start := func(hb time.Time, owner string) *kisfeed.IngestionRun {
		t.Helper()
		r := &kisfeed.IngestionRun{StartedAt: t0, From: day1, To: day1, Path: "candles", Universe: 3, HeartbeatAt: hb,
			Owner: owner}
		if err := s.StartRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	fresh := t0.Add(10 * time.Minute)           // after the cutoff below
	stale := start(t0, "h/1")                   // killed: never beats again
	live := start(t0, "h/2")                    // beats below
	done := start(t0.Add(-time.Hour), "h/gone") // finished long ago, its owner gone too
	gone := start(fresh, "h/gone")              // beat recently, but its process is gone
	away := start(fresh, "other/3")             // another host's: alive as far as we know
	legacy := start(fresh, "")                  // recorded before owners existed
	if err := s.HeartbeatRun(ctx, live.ID, fresh); err != nil {
		t.Fatal(err)
	}
	fin := *done
	fin.Status, fin.FinishedAt = kisfeed.RunSucceeded, t0
	if err := s.FinishRun(ctx, fin); err != nil {
		t.Fatal(err)
	}
	var asked []string
	dead := func(owner string) bool {
		asked = append(asked, owner)
		return owner == "h/gone"
	}
	ids, err := s.AbandonRuns(ctx, t0.Add(5*time.Minute), dead)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{stale.ID, gone.ID}; !slices.Equal(ids, want) {
		t.Fatalf("AbandonRuns = %v, want %v", ids, want)
	}
	slices.Sort(asked)
	if want := []string{"h/1", "h/2", "h/gone", "other/3"}; !slices.Equal(asked, want) {
		t.Errorf("dead asked about %q, want the running runs' owners %q", asked, want)
	}
	if ids, err := s.AbandonRuns(ctx, t0.Add(5*time.Minute), dead); err != nil || len(ids) != 0 {
		t.Errorf("AbandonRuns again = %v, %v; want none", ids, err)
	}
	if ids, err := s.AbandonRuns(ctx, t0.Add(5*time.Minute), nil); err != nil || len(ids) != 0 {
		t.Errorf("AbandonRuns with no dead func = %v, %v; want none", ids, err)
	}
	// The dead process waking up (a paused VM) must not resurrect it.
	if err := s.HeartbeatRun(ctx, stale.ID, t0.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]kisfeed.IngestionRun{}
	for _, r := range runs {
		got[r.ID] = r
	}
	want := []struct {
		id        int64
		status    kisfeed.RunStatus
		finished  time.Time
		heartbeat time.Time
		owner     string
		err       string
	}{
		{stale.ID, kisfeed.RunAbandoned, t0, t0, "h/1", "no heartbeat since 2026-11-27 07:00:00 UTC"},
		{live.ID, kisfeed.RunRunning, time.Time{}, fresh, "h/2", ""},
		{done.ID, kisfeed.RunSucceeded, t0, t0.Add(-time.Hour), "h/gone", ""},
		{gone.ID, kisfeed.RunAbandoned, fresh, fresh, "h/gone", "its process h/gone is gone"},
		{away.ID, kisfeed.RunRunning, time.Time{}, fresh, "other/3", ""},
		{legacy.ID, kisfeed.RunRunning, time.Time{}, fresh, "", ""},
	}
	for _, w := range want {
		r := got[w.id]
		if r.Status != w.status || !r.FinishedAt.Equal(w.finished) || !r.HeartbeatAt.Equal(w.heartbeat) || r.Owner != w.owner {
			t.Errorf("run %d: status %q finished %v heartbeat %v owner %q; want %q, %v, %v, %q", w.id, r.Status,
				r.FinishedAt, r.HeartbeatAt, r.Owner, w.status, w.finished, w.heartbeat, w.owner)
		}
		if (w.err == "") != (r.Error == "") || !strings.Contains(r.Error, w.err) {
			t.Errorf("run %d: error %q, want one containing %q", w.id, r.Error, w.err)
		}
	}
}

func testStocks(t *testing.T, s kisfeed.PriceStore) {
	ctx := t.Context()
	st := []kisfeed.Stock{
		{Code: "005930", ISIN: "KR7005930003", Name: "삼성전자", Market: kisfeed.MarketKOSPI, Group: "ST", ListedShares: 5_969_782_550, ListingDate: kisfeed.Date(1975, 6, 11)},
		{Code: "005935", Name: "삼성전자우", Market: kisfeed.MarketKOSPI, Group: "ST", Preferred: true},
	}
	for range 2 {
		if err := s.UpsertStocks(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
}

func testEmpty(t *testing.T, s kisfeed.PriceStore) {
	ctx := context.WithoutCancel(t.Context())
	if res, err := s.UpsertBars(ctx, nil); err != nil || res != (kisfeed.WriteResult{}) {
		t.Errorf("UpsertBars(nil) = %+v, %v; want zero, nil", res, err)
	}
	if err := s.AddRejected(ctx, nil); err != nil {
		t.Errorf("AddRejected(nil) = %v, want nil", err)
	}
	counts, err := s.BarCounts(ctx, day1, day2)
	if err != nil || len(counts) != 0 {
		t.Errorf("BarCounts on empty = %v, %v; want empty", counts, err)
	}
	bars, err := s.BarsOn(ctx, day1)
	if err != nil || len(bars) != 0 {
		t.Errorf("BarsOn on empty = %v, %v; want empty", bars, err)
	}
	runs, err := s.Runs(ctx, 5)
	if err != nil || len(runs) != 0 {
		t.Errorf("Runs on empty = %v, %v; want empty", runs, err)
	}
}
