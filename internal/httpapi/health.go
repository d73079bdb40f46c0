package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/kisfeed/kisfeed/internal/jsonview"
)

type healthJSON struct {
	Status string    `json:"status"`
	Time   time.Time `json:"time"`
}

// handleHealthz says the process is up and serving; it checks nothing
// else, so an orchestrator restarts only a wedged process, never one
// whose upstream is down.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, healthJSON{Status: "ok", Time: jsonview.KST(s.now())})
}

type readyJSON struct {
	Status string    `json:"status"` // "ready" or "degraded"
	Time   time.Time `json:"time"`
	// Checks maps each check to "ok" or its failure.
	Checks map[string]string `json:"checks"`
	// Degraded lists the failing checks, sorted as configured.
	Degraded []string `json:"degraded"`
}

// handleReadyz runs every check concurrently under one deadline: 200 when
// all pass, 503 listing the degraded ones otherwise.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.readyTime)
	defer cancel()
	results := make([]error, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Go(func() {
			results[i] = runCheck(ctx, c)
		})
	}
	wg.Wait()
	out := readyJSON{Status: "ready", Time: jsonview.KST(s.now()), Checks: map[string]string{}, Degraded: []string{}}
	for i, c := range s.checks {
		if err := results[i]; err != nil {
			out.Checks[c.Name] = err.Error()
			out.Degraded = append(out.Degraded, c.Name)
			continue
		}
		out.Checks[c.Name] = "ok"
	}
	status := http.StatusOK
	if len(out.Degraded) > 0 {
		out.Status = "degraded"
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, out)
}

// runCheck runs one check, turning a panic into a failure so one broken
// checker cannot take /readyz down.
func runCheck(ctx context.Context, c Check) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errPanicked
		}
	}()
	if c.Func == nil {
		return nil
	}
	return c.Func(ctx)
}

var errPanicked = errorString("check panicked")

type errorString string

func (e errorString) Error() string { return string(e) }

// BreakerCheck is the readiness check of a circuit breaker: degraded
// unless the circuit is closed, saying when it will try again.
func BreakerCheck(state func() string, retryAfter func() time.Duration) Check {
	return Check{Name: "breaker", Func: func(context.Context) error {
		s := state()
		if s == "closed" {
			return nil
		}
		if d := retryAfter(); d > 0 {
			return fmt.Errorf("circuit %s; upstream retried in %s", s, d.Round(time.Second))
		}
		return fmt.Errorf("circuit %s", s)
	}}
}

// PingCheck is the readiness check of a dependency with a Ping method
// (Redis, a database pool). Its error text must not carry credentials;
// go-redis and pgx errors name the host, not the password.
func PingCheck(name string, ping func(ctx context.Context) error) Check {
	return Check{Name: name, Func: ping}
}
