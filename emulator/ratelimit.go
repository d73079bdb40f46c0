package emulator

import (
	"math"
	"sync"
	"time"
)

// limiter is the per-app-key REST limit: a sliding window over ACCEPTED
// requests. A request is accepted when fewer than n requests were accepted
// in the window (now-w, now]; rejected requests do not enter the window.
//
// Why sliding and not the fixed 1-second buckets python-kis uses: anything
// that passes a sliding window passes any fixed window too (every fixed
// window is one of the sliding ones), while a fixed-window server would
// accept 2n requests straddling a bucket edge. So a client that survives
// this emulator survives either reading of KIS's "초당 n건". It also makes
// the stats oracle exact: MaxRequestsPerSecondWindow <= n whenever the
// limiter is on.
type limiter struct {
	n int           // accepted requests allowed per window; 0 = no limit
	w time.Duration // the window: 1s, or 1/rate for rates below 1/s

	mu   sync.Mutex // guards keys
	keys map[string]*keyWindow
}

// keyWindow holds one app key's accepted-request times within the last
// max(w, 1s), oldest first.
type keyWindow struct {
	mu    sync.Mutex // guards times, head
	times []time.Time
	head  int
}

func newLimiter(rate float64) *limiter {
	l := &limiter{keys: map[string]*keyWindow{}, w: time.Second}
	switch {
	case rate <= 0:
	case rate >= 1:
		// floor: a fractional rate like 2.5/s allows 2 per second, the
		// strict reading.
		l.n = int(math.Floor(rate))
	default:
		l.n, l.w = 1, time.Duration(float64(time.Second)/rate)
	}
	return l
}

// allow decides one request of key at now. It returns whether it was
// accepted and, if so, how many requests of key (this one included) were
// accepted within the 1-second window ending now.
func (l *limiter) allow(key string, now time.Time) (ok bool, inSecond int) {
	l.mu.Lock()
	kw := l.keys[key]
	if kw == nil {
		kw = &keyWindow{}
		l.keys[key] = kw
	}
	l.mu.Unlock()

	kw.mu.Lock()
	defer kw.mu.Unlock()
	keep := max(l.w, time.Second)
	// Prune what fell out of both windows. Clocks are assumed monotonic;
	// a fake clock going back only keeps entries longer.
	for kw.head < len(kw.times) && !kw.times[kw.head].After(now.Add(-keep)) {
		kw.head++
	}
	if kw.head > 1024 && kw.head*2 > len(kw.times) {
		kw.times = append(kw.times[:0], kw.times[kw.head:]...)
		kw.head = 0
	}
	live := kw.times[kw.head:]
	if l.n > 0 {
		inW := len(live)
		if l.w != keep {
			inW = countAfter(live, now.Add(-l.w))
		}
		if inW >= l.n {
			return false, 0
		}
	}
	kw.times = append(kw.times, now)
	live = kw.times[kw.head:]
	if keep == time.Second {
		return true, len(live)
	}
	return true, countAfter(live, now.Add(-time.Second))
}

// countAfter counts the times after t, scanning from the newest.
func countAfter(times []time.Time, t time.Time) int {
	n := 0
	for i := len(times) - 1; i >= 0 && times[i].After(t); i-- {
		n++
	}
	return n
}
