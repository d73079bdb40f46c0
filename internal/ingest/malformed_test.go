package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/ingest"
	"github.com/kisfeed/kisfeed/internal/sourcetest"
	"github.com/kisfeed/kisfeed/internal/synthetic"
	"github.com/kisfeed/kisfeed/kis"
	"github.com/kisfeed/kisfeed/krx"
)

// unreadable wraps a source: the codes in bad get, the first `times`
// times they are asked (forever when times < 0), an unreadable-value
// error — in the Quotes BatchError the *kis.MalformedError the KIS client
// returns (the other codes of the batch still answered), as the Candles
// error the root *kisfeed.MalformedError another adapter would return:
// ingest must recognise both.
type unreadable struct {
	kisfeed.Source
	bad   map[string]bool
	times int

	mu   sync.Mutex
	seen map[string]int // guarded by mu
}

func (u *unreadable) hit(code string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.bad[code] || (u.times >= 0 && u.seen[code] >= u.times) {
		return false
	}
	if u.seen == nil {
		u.seen = map[string]int{}
	}
	u.seen[code]++
	return true
}

func multRowError(code string, n int) *kis.MalformedError {
	raw := fmt.Sprintf(`{"inter_shrn_iscd":%q,"inter2_prpr":"70100","inter2_hgpr":"70900x"}`, code)
	return &kis.MalformedError{MalformedError: kisfeed.MalformedError{Op: kis.TrMultPrice, Field: fmt.Sprintf("output[%d].inter2_hgpr", n),
		Value: "70900x", Want: "an integer", Code: code, Raw: json.RawMessage(raw)}}
}

func (u *unreadable) Quotes(ctx context.Context, codes []kisfeed.Code) ([]*kisfeed.Quote, error) {
	qs, err := u.Source.Quotes(ctx, codes)
	if err != nil {
		return qs, err
	}
	var be *kisfeed.BatchError
	for i, code := range codes {
		if u.hit(code.String()) {
			if be == nil {
				be = &kisfeed.BatchError{Errs: map[string]error{}}
			}
			qs[i] = nil
			be.Errs[code.String()] = multRowError(code.String(), i)
		}
	}
	if be != nil {
		return qs, be
	}
	return qs, nil
}

func (u *unreadable) Candles(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
	if u.hit(q.Code.String()) {
		raw := fmt.Sprintf(`{"stck_bsop_date":%q,"stck_clpr":"-"}`, q.To.Format("20060102"))
		// Wrapped the way kis.Source and the cache wrap it.
		return nil, &kisfeed.UnavailableError{Err: fmt.Errorf("candles %s: %w", q.Code, &kisfeed.MalformedError{
			Op: kis.TrDailyChart, Field: "output2[0].stck_clpr", Value: "-", Want: "an integer", Code: q.Code.String(), Raw: json.RawMessage(raw)})}
	}
	return u.Source.Candles(ctx, q)
}

// reasonRE is the reason of a rejected unreadable value: the quote row
// (the first attempt on the quotes path) or the daily chart row (the
// candles path, and the retry of a quote).
var reasonRE = regexp.MustCompile(`^malformed upstream field (output\[\d+\]\.inter2_hgpr: "70900x"|output2\[0\]\.stck_clpr: "-")$`)

// TestRunMalformedUpstream: a value the client could not read is a
// rejected bar with the field, the value and the raw row — never a failed
// code, never a stored bar; the retry stores the good bar, and the
// rejected row stays as the audit trail.
func TestRunMalformedUpstream(t *testing.T) {
	t.Parallel()
	codes := []string{"005930", "000660", "035420", "005380", "035720"}
	bad := map[string]bool{"000660": true, "035720": true}
	from, to := kisfeed.Date(2025, 5, 26), kisfeed.Date(2025, 5, 30)
	tests := []struct {
		name  string
		opts  ingest.Options
		times int
		// per bad code: rejected rows, and whether its bars end stored
		wantRejected int
		wantStored   bool
	}{
		{"quotes: one bad row, the retry stores it", ingest.Options{Codes: kisfeed.MustParseCodes(codes...)}, 1, 1, true},
		{"quotes: always unreadable, rejected twice", ingest.Options{Codes: kisfeed.MustParseCodes(codes...)}, -1, 2, false},
		{"candles: one bad chart, the retry stores it", ingest.Options{Codes: kisfeed.MustParseCodes(codes...), From: from, To: to, Path: ingest.PathCandles}, 1, 1, true},
		{"candles: always unreadable", ingest.Options{Codes: kisfeed.MustParseCodes(codes...), From: from, To: to, Path: ingest.PathCandles}, -1, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			store := openStore(t)
			src := &unreadable{Source: synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }}), bad: bad, times: tt.times}
			sum, err := newIngester(src, store, afterClose).Run(ctx, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.wantRejected * len(bad)
			if sum.Rejected != want || sum.Malformed != want || sum.Failed != 0 || len(sum.FailedCodes) != 0 {
				t.Errorf("rejected %d malformed %d failed %d %v; want %d, %d, 0 (an unreadable value is not a failed fetch)",
					sum.Rejected, sum.Malformed, sum.Failed, sum.FailedCodes, want, want)
			}
			rej, err := store.Rejected(ctx, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rej) != want {
				t.Fatalf("rejected_bars rows = %d, want %d", len(rej), want)
			}
			for _, r := range rej {
				if !bad[r.Code] {
					t.Errorf("rejected %s, which was readable", r.Code)
				}
				if !reasonRE.MatchString(r.Reason) {
					t.Errorf("%s: reason %q, want %s", r.Code, r.Reason, reasonRE)
				}
				var row map[string]string
				if err := json.Unmarshal(r.Payload, &row); err != nil || (row["inter2_hgpr"] != "70900x" && row["stck_clpr"] != "-") {
					t.Errorf("%s: payload %s, want the raw row", r.Code, r.Payload)
				}
				wantDay := day
				if tt.opts.Path == ingest.PathCandles {
					wantDay = to // the row's own date
				}
				if !r.Date.Equal(wantDay) || r.RunID != sum.RunID {
					t.Errorf("%s: rejected on %v run %d, want %v run %d", r.Code, r.Date, r.RunID, wantDay, sum.RunID)
				}
			}
			first, last := day, day
			if tt.opts.Path == ingest.PathCandles {
				first, last = from, to
			}
			days := len(krx.TradingDays(first, last))
			for _, code := range codes {
				bars, _ := store.Bars(ctx, code, first, last)
				switch {
				case bad[code] && !tt.wantStored && len(bars) != 0:
					t.Errorf("%s: %d bars stored from an unreadable answer, want none", code, len(bars))
				case (!bad[code] || tt.wantStored) && len(bars) != days:
					t.Errorf("%s: %d bars stored, want %d", code, len(bars), days)
				}
				for _, b := range bars {
					m, _ := simMarket().DailyBar(code, b.Date)
					if !b.SameValues(kisfeed.DailyBar{Code: code, Date: b.Date, Open: m.Open, High: m.High, Low: m.Low, Close: m.Close,
						Volume: m.Volume, Value: m.Value, Source: b.Source}) {
						t.Errorf("stored %+v, market has %+v", b, m)
					}
				}
			}
			if tt.wantStored {
				if sum.Incomplete != 0 || len(sum.RejectedCodes) != 0 {
					t.Errorf("incomplete %d %v, want 0 after the retry", sum.Incomplete, sum.RejectedCodes)
				}
			} else if sum.Incomplete != len(bad) || len(sum.RejectedCodes) != len(bad) {
				t.Errorf("incomplete %d rejected codes %v, want the %d unreadable codes", sum.Incomplete, sum.RejectedCodes, len(bad))
			}
			b, _ := json.Marshal(sum)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if m["malformed"] != float64(want) || m["rejected"] != float64(want) {
				t.Errorf("json malformed %v rejected %v, want %d", m["malformed"], m["rejected"], want)
			}
		})
	}
}

// TestRunMalformedWholeQuotesCall: a malformed error that fails the
// whole Quotes call (not a BatchError) rejects the code it names, and the
// others of the batch fail and are retried.
func TestRunMalformedWholeQuotesCall(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	base := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	var once sync.Once
	src := &sourcetest.Func{
		UniverseFn: base.Universe, CandlesFn: base.Candles,
		QuotesFn: func(ctx context.Context, codes []string) ([]*kisfeed.Quote, error) {
			var err error
			once.Do(func() { err = fmt.Errorf("quotes: %w", multRowError("000660", 1)) })
			if err != nil {
				return nil, err
			}
			return base.Quotes(ctx, kisfeed.MustParseCodes(codes...))
		},
	}
	codes := []string{"005930", "000660", "035420"}
	sum, err := newIngester(src, store, afterClose).Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes(codes...)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rejected != 1 || sum.Malformed != 1 || sum.Failed != 0 || sum.Written != 3 || sum.Incomplete != 0 {
		t.Errorf("rejected %d malformed %d failed %d written %d incomplete %d; want 1, 1, 0, 3, 0",
			sum.Rejected, sum.Malformed, sum.Failed, sum.Written, sum.Incomplete)
	}
	rej, _ := store.Rejected(ctx, day, day)
	if len(rej) != 1 || rej[0].Code != "000660" {
		t.Errorf("rejected rows %+v, want one for 000660", rej)
	}
}

// TestRunMalformedWithoutRaw: an unreadable value without a raw row keeps
// what the error knows as the payload (the column holds JSON).
func TestRunMalformedWithoutRaw(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openStore(t)
	base := synthetic.NewSource(simMarket(), kisfeed.Clock{Market: func() time.Time { return afterClose }})
	src := &sourcetest.Func{
		UniverseFn: base.Universe,
		CandlesFn: func(ctx context.Context, q kisfeed.CandleQuery) (*kisfeed.Candles, error) {
			return nil, &kisfeed.MalformedError{Op: kis.TrDailyChart, Field: "output1", Value: "[", Code: q.Code.String()}
		},
	}
	sum, err := newIngester(src, store, afterClose).Run(ctx, ingest.Options{Codes: kisfeed.MustParseCodes("005930"), Path: ingest.PathCandles})
	if err != nil {
		t.Fatal(err)
	}
	rej, _ := store.Rejected(ctx, time.Time{}, time.Time{})
	if sum.Rejected != 2 || len(rej) != 2 || !json.Valid(rej[0].Payload) || !strings.Contains(string(rej[0].Payload), `"field":"output1"`) ||
		!rej[0].Date.Equal(day) {
		t.Errorf("rejected %d rows %+v; want 2 with a JSON payload naming the field, on %v", sum.Rejected, rej, day)
	}
	if p := string(rej[0].Payload); !strings.Contains(p, `"tr_id":"`+kis.TrDailyChart+`"`) || !strings.Contains(p, `"value":"["`) {
		t.Errorf("payload %s: want the tr_id and the value the error knows", p)
	}
	if !errors.Is(&kisfeed.MalformedError{}, kisfeed.ErrMalformed) {
		t.Errorf("MalformedError does not match ErrMalformed")
	}
}
