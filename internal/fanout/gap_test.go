package fanout

import (
	"encoding/json"
	"testing"
	"time"
)

// TestGapAll: a holder change sends one gap per code to every consumer of
// it, from the code's newest event to now, before the new epoch's events;
// codes nobody streams get none.
func TestGapAll(t *testing.T) {
	h, _ := testHub(t, Config{})
	a := subscribe(t, h, Request{Codes: codes("005930", "000660")})
	b := subscribe(t, h, Request{Codes: codes("005930"), Kinds: Books})
	last := t0.Add(-time.Minute)
	h.Publish(trade("005930", 70000, last))
	h.Publish(trade("035720", 50000, last)) // no consumer: no gap
	take(t, a)
	take(t, b)

	if n := h.GapAll(GapEpoch); n != 2 {
		t.Fatalf("GapAll: %d codes, want 2", n)
	}
	if err := h.SetEpoch("e2"); err != nil {
		t.Fatal(err)
	}
	h.Publish(trade("005930", 70100, t0))
	tests := []struct {
		name string
		c    *Consumer
		want []string // types in order, gaps as gap:code
	}{
		{"both codes, both kinds", a, []string{"gap:000660", "gap:005930", "trade:e2-1"}},
		{"books only: the gap, not the trade", b, []string{"gap:005930"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := take(t, tt.c)
			var got []string
			for _, m := range msgs {
				if m.Type == TypeGap {
					got = append(got, "gap:"+m.Code)
					var g struct {
						From   time.Time `json:"from"`
						Reason string    `json:"reason"`
					}
					if err := json.Unmarshal(m.Data, &g); err != nil {
						t.Fatal(err)
					}
					if g.Reason != GapEpoch || m.ID != "" {
						t.Errorf("gap %s: reason %q, id %q; want %q and no id", m.Code, g.Reason, m.ID, GapEpoch)
					}
					if m.Code == "005930" && !g.From.Equal(last) {
						t.Errorf("gap 005930 from %s, want the last event's %s", g.From, last)
					}
					continue
				}
				got = append(got, m.Type+":"+m.ID)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			// Gaps come first; their order among codes is the map's.
			for i, w := range tt.want {
				if w[:4] == "gap:" {
					if got[i][:4] != "gap:" {
						t.Fatalf("got %v, want %v", got, tt.want)
					}
					continue
				}
				if got[i] != w {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}
