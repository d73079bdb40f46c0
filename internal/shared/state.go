package shared

import (
	"log/slog"
	"sync"
)

// redisState is whether Redis answered a part's last call, so that the
// part logs each change once (a Redis outage is one warning, its end one
// info line) rather than every failed call.
type redisState struct {
	mu   sync.Mutex // guards down
	down bool
}

// note records whether Redis answered (err == nil) and, on a change, logs
// failing with err, or recovered, on l.
func (r *redisState) note(l *slog.Logger, err error, failing, recovered string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	down := err != nil
	if down == r.down {
		return
	}
	r.down = down
	if down {
		l.Warn(failing, "err", err)
	} else {
		l.Info(recovered)
	}
}
