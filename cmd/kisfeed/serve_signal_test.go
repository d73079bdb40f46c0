package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/emulator"
	"github.com/kisfeed/kisfeed/internal/sim"
)

// signalChildEnv marks the child process of TestServeSignalDrains: the
// test binary re-run as kisfeed itself, so that a real signal reaches a
// real process whose main wiring is kisfeed's.
const signalChildEnv = "KISFEED_TEST_SIGNAL_CHILD"

// TestServeSignalChild is not a test: in the child it runs kisfeed as
// main does (signal.NotifyContext on SIGINT and SIGTERM) with the
// arguments after "--", and exits with its code.
func TestServeSignalChild(t *testing.T) {
	if os.Getenv(signalChildEnv) != "1" {
		t.Skip("the child process of TestServeSignalDrains")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, args, os.Environ(), strings.NewReader(""), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// upstreamGate holds the emulator's data calls, once armed, until
// released, and reports each one held: the test then knows that many
// requests are inside serve, waiting on KIS, when the signal arrives.
type upstreamGate struct {
	armed   atomic.Bool
	arrived chan string   // one per held call (its query)
	release chan struct{} // closed to let every held call through
}

func (g *upstreamGate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.armed.Load() && strings.HasPrefix(r.URL.Path, "/uapi/") {
			select {
			case g.arrived <- r.URL.RawQuery:
			default:
			}
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// lineWaiter reads r line by line and closes found when a line contains
// want; it keeps reading (and discarding) so the writer never blocks.
func lineWaiter(r io.Reader, want string, found chan<- struct{}, first chan<- string) {
	sc := bufio.NewScanner(r)
	var once sync.Once
	sentFirst := false
	for sc.Scan() {
		line := sc.Text()
		if first != nil && !sentFirst {
			first <- line
			sentFirst = true
		}
		if want != "" && strings.Contains(line, want) {
			once.Do(func() { close(found) })
		}
	}
}

// TestServeSignalDrains sends SIGTERM (and SIGINT) to a serve process
// under load while requests wait on the upstream: the listener closes at
// once, every request already inside serve completes with a 200, none of
// the load gets a 5xx, and the process exits 0. The upstream is held by a
// gate, not by a delay: the test releases it once serve says it is
// draining, so every step waits on an event, each bounded by a deadline.
func TestServeSignalDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	t.Parallel()
	var codes []string // cold codes, one held upstream call each
	for _, s := range sim.New(1).Universe() {
		if s.IsCommonStock() && s.Code != "005930" && len(codes) < 6 {
			codes = append(codes, s.Code)
		}
	}
	for _, tt := range []struct {
		name string
		sig  os.Signal
	}{
		{"SIGTERM", syscall.SIGTERM},
		{"SIGINT", os.Interrupt},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testServeSignal(t, tt.sig, codes)
		})
	}
}

func testServeSignal(t *testing.T, sig os.Signal, codes []string) {
	// Every wait below is bounded by this deadline: a hung drain fails
	// the test instead of hanging it.
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}

	emu, err := emulator.New(emulator.WithServerKind("mock"), emulator.WithRate(0), emulator.WithTokenIssueInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	gate := &upstreamGate{arrived: make(chan string, 64), release: make(chan struct{})}
	upstream := httptest.NewServer(gate.wrap(emu))
	t.Cleanup(upstream.Close)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(gate.release) }) }
	t.Cleanup(release) // before upstream.Close (cleanups run last first)

	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeSignalChild$", "--",
		"serve", "--addr", "127.0.0.1:0", "--access-log=false", "--shutdown-timeout", "30s")
	cmd.Dir = dir // no ./kisfeed.db, no ./.env
	cmd.Env = []string{
		signalChildEnv + "=1", "HOME=" + dir, "PATH=" + os.Getenv("PATH"),
		"ENABLE_KIS_API=true", "KIS_APP_KEY=signal-key", "KIS_APP_SECRET=signal-secret",
		"KIS_BASE_URL=" + upstream.URL, "KIS_MASTER_URL=" + upstream.URL, "KIS_RATE_LIMIT=1000",
		"KIS_TOKEN_FILE=" + dir + "/tokens.json", "LOG_LEVEL=info",
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		// Wait after the pipes are read to the end (lineWaiter drains
		// them), as os/exec asks.
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	firstLine := make(chan string, 1)
	go lineWaiter(stdout, "", nil, firstLine)
	draining := make(chan struct{})
	go lineWaiter(stderr, "draining in-flight requests", draining, nil)

	var base string
	select {
	case line := <-firstLine:
		var ok bool
		if base, ok = strings.CutPrefix(strings.TrimSpace(line), "listening on "); !ok {
			t.Fatalf("first line %q, want listening on http://ADDR", line)
		}
	case <-exited:
		t.Fatalf("serve exited before listening: %v", waitErr)
	case <-deadline.C:
		t.Fatal("timed out waiting for the listening line")
	}
	client := &http.Client{Timeout: 45 * time.Second}
	get := func(code string) (int, string, error) {
		resp, err := client.Get(base + "/v1/stocks/" + code + "/quote")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// A warm code for the background load: answered from the cache.
	if st, body, err := get("005930"); err != nil || st != http.StatusOK {
		t.Fatalf("warm-up: %d %s %v", st, body, err)
	}
	gate.armed.Store(true)

	// Background load on the warm code until serve stops answering.
	var (
		loadMu    sync.Mutex // guards statuses
		statuses  = map[int]int{}
		loadWG    sync.WaitGroup
		stopLoad  = make(chan struct{})
		loadRound atomic.Int64
	)
	for range 4 {
		loadWG.Go(func() {
			lc := &http.Client{Timeout: 45 * time.Second}
			for i := 0; i < 100_000; i++ { // bounded
				select {
				case <-stopLoad:
					return
				default:
				}
				resp, err := lc.Get(base + "/v1/stocks/005930/quote")
				if err != nil {
					return // the listener is closed: no more answers
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				loadMu.Lock()
				statuses[resp.StatusCode]++
				loadMu.Unlock()
				loadRound.Add(1)
			}
		})
	}

	// The in-flight requests: cold codes, each held at the upstream.
	type answer struct {
		code, body string
		status     int
		err        error
	}
	answers := make(chan answer, len(codes))
	for _, code := range codes {
		go func() {
			st, body, err := get(code)
			answers <- answer{code, body, st, err}
		}()
	}
	held := map[string]bool{}
	for len(held) < len(codes) {
		select {
		case q := <-gate.arrived:
			held[q] = true
		case a := <-answers:
			t.Fatalf("request for %s answered (%d %s %v) while its upstream call should be held", a.code, a.status, a.body, a.err)
		case <-deadline.C:
			t.Fatalf("timed out: %d of %d requests reached the upstream", len(held), len(codes))
		}
	}

	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	wait("serve to start draining", draining)
	// The listener is closed before the drain starts: a new connection
	// is refused, not answered with a 5xx.
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("a new connection was accepted after %v", sig)
	}
	select {
	case <-exited:
		t.Fatalf("serve exited (%v) with %d requests in flight", waitErr, len(codes))
	default:
	}
	release()
	for range codes {
		select {
		case a := <-answers:
			if a.err != nil || a.status != http.StatusOK || !strings.Contains(a.body, `"`+a.code+`"`) {
				t.Errorf("in-flight %s: got %d %q %v; want 200 with its quote", a.code, a.status, a.body, a.err)
			}
		case <-deadline.C:
			t.Fatal("timed out waiting for the in-flight answers")
		}
	}
	wait("serve to exit", exited)
	if waitErr != nil {
		t.Errorf("serve exit: %v; want 0 after the drain", waitErr)
	}
	close(stopLoad)
	loadWG.Wait()
	loadMu.Lock()
	defer loadMu.Unlock()
	var fives []string
	for st, n := range statuses {
		if st >= 500 {
			fives = append(fives, fmt.Sprintf("%d×%d", n, st))
		}
	}
	if len(fives) > 0 || statuses[http.StatusOK] == 0 {
		t.Errorf("background load statuses %v: want 200s only (5xx: %v)", statuses, fives)
	}
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		t.Logf("exit code %d", exitErr.ExitCode())
	}
	t.Logf("%v: %d requests drained, %d background answers", sig, len(codes), loadRound.Load())
}
