package pricestore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/pricestore"
)

// TestAbandonReason: which running run is abandoned, and the reason
// recorded: its owner gone (asked first), or its lease run out.
func TestAbandonReason(t *testing.T) {
	cut := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	gone := func(o string) bool { return o == "h/1" }
	tests := []struct {
		name   string
		run    pricestore.RunningRun
		dead   func(string) bool
		want   bool
		reason string
	}{
		{"owner gone, lease fresh", pricestore.RunningRun{Owner: "h/1", HeartbeatAt: cut.Add(time.Second)}, gone, true, "its process h/1 is gone (last heartbeat 2026-11-27 07:00:01 UTC)"},
		{"owner gone and stale", pricestore.RunningRun{Owner: "h/1", HeartbeatAt: cut.Add(-time.Second)}, gone, true, "its process h/1 is gone"},
		{"owner alive, stale", pricestore.RunningRun{Owner: "h/2", HeartbeatAt: cut.Add(-time.Second)}, gone, true, "no heartbeat since 2026-11-27 06:59:59 UTC"},
		{"owner alive, fresh", pricestore.RunningRun{Owner: "h/2", HeartbeatAt: cut}, gone, false, ""},
		{"no owner, fresh", pricestore.RunningRun{HeartbeatAt: cut}, func(string) bool { return true }, false, ""},
		{"no dead func, fresh", pricestore.RunningRun{Owner: "h/1", HeartbeatAt: cut}, nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := pricestore.AbandonReason(tt.run, cut, tt.dead)
			if ok != tt.want || !strings.Contains(reason, tt.reason) || (tt.want && !strings.HasPrefix(reason, "abandoned: ")) {
				t.Errorf("AbandonReason = %q, %v; want %v with %q", reason, ok, tt.want, tt.reason)
			}
		})
	}
}
