package pricestore

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kisfeed/kisfeed"
)

func TestDedupe(t *testing.T) {
	day := kisfeed.Date(2025, 6, 2)
	// 15:30 UTC on June 1 is 00:30 KST on June 2: the same trading day.
	sameDayUTC := time.Date(2025, 6, 1, 15, 30, 0, 0, time.UTC)
	next := kisfeed.Date(2025, 6, 3)
	bars := []kisfeed.DailyBar{
		{Code: "005930", Date: day, Close: 1},
		{Code: "000660", Date: day, Close: 2},
		{Code: "005930", Date: sameDayUTC, Close: 3},
		{Code: "005930", Date: next, Close: 4},
		{Code: "000660", Date: day, Close: 5},
	}
	got := Dedupe(bars)
	want := []kisfeed.DailyBar{
		{Code: "005930", Date: sameDayUTC, Close: 3},
		{Code: "000660", Date: day, Close: 5},
		{Code: "005930", Date: next, Close: 4},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Dedupe (-want +got):\n%s", diff)
	}
}

type fakeRows struct {
	n   int
	err error
}

func (r *fakeRows) Next() bool {
	if r.n == 0 {
		return false
	}
	r.n--
	return true
}

func (r *fakeRows) Err() error { return r.err }

func TestCollect(t *testing.T) {
	errScan := errors.New("scan failed")
	errRows := errors.New("connection lost")
	tests := []struct {
		name    string
		rows    *fakeRows
		scanErr error
		want    []int
		wantErr string
	}{
		{name: "none is nil", rows: &fakeRows{}, want: nil},
		{name: "all rows", rows: &fakeRows{n: 3}, want: []int{3, 2, 1}},
		{name: "scan error as it is", rows: &fakeRows{n: 2}, scanErr: errScan, wantErr: "scan failed"},
		{name: "rows error wrapped", rows: &fakeRows{n: 1, err: errRows}, wantErr: "test: read: connection lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Collect(tt.rows, "test: read", func() (int, error) { return tt.rows.n + 1, tt.scanErr })
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || got != nil {
					t.Fatalf("got %v, %v; want nil, %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" || (tt.want == nil) != (got == nil) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestRunDefaults(t *testing.T) {
	now := time.Date(2025, 6, 3, 16, 0, 0, 0, kisfeed.KST)
	clock := func() time.Time { return now }
	set := now.Add(-time.Hour)

	run := kisfeed.IngestionRun{Status: kisfeed.RunStatus("done")}
	StartingRun(&run, clock)
	if run.Status != kisfeed.RunRunning || !run.StartedAt.Equal(now) {
		t.Errorf("StartingRun: got status %q, started %v; want %q, %v", run.Status, run.StartedAt, kisfeed.RunRunning, now)
	}
	run = kisfeed.IngestionRun{StartedAt: set}
	StartingRun(&run, clock)
	if !run.StartedAt.Equal(set) {
		t.Errorf("StartingRun kept StartedAt: got %v, want %v", run.StartedAt, set)
	}

	run = kisfeed.IngestionRun{}
	FinishingRun(&run, clock)
	if !run.FinishedAt.Equal(now) {
		t.Errorf("FinishingRun: got %v, want %v", run.FinishedAt, now)
	}
	run = kisfeed.IngestionRun{FinishedAt: set}
	FinishingRun(&run, clock)
	if !run.FinishedAt.Equal(set) {
		t.Errorf("FinishingRun kept FinishedAt: got %v, want %v", run.FinishedAt, set)
	}
}

func TestPayload(t *testing.T) {
	for _, tt := range []struct{ in, want string }{{"", "null"}, {`{"a":1}`, `{"a":1}`}, {"not json", "not json"}} {
		if got := string(Payload([]byte(tt.in))); got != tt.want {
			t.Errorf("Payload(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
