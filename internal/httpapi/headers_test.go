package httpapi

import (
	"strconv"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed"
)

// TestSharedHeaderValues: the precomputed Content-Length and max-age
// values match what formatting would give, on both sides of the tables'
// ends.
func TestSharedHeaderValues(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 457, 4095, 4096, 70000} {
		if got := contentLength(n); len(got) != 1 || got[0] != strconv.Itoa(n) {
			t.Errorf("contentLength(%d): got %q, want [%d]", n, got, n)
		}
	}
	now := time.Date(2026, 3, 10, 10, 0, 0, 0, kisfeed.KST)
	for _, secs := range []int{1, 59, 1800, 3600, 3601, 86400} {
		m := kisfeed.Meta{Origin: kisfeed.OriginCache, Expires: now.Add(time.Duration(secs)*time.Second + 300*time.Millisecond)}
		want := "max-age=" + strconv.Itoa(secs)
		if got := cacheControl(m, now); len(got) != 1 || got[0] != want {
			t.Errorf("cacheControl(%ds left): got %q, want [%s]", secs, got, want)
		}
	}
}
