// Command kisfeed is the KIS market-data gateway: lookups, the daily
// ingestion job, the HTTP API and a KIS emulator, in one binary.
//
// Run "kisfeed --help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kisfeed/kisfeed/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// usageError marks bad command-line usage (exit 2).
func usageError(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

// withExit attaches an exit code to err.
func withExit(code int, err error) error { return &exitError{code: code, err: err} }

// run is the whole program with its dependencies injected, so tests drive
// it end to end. It returns the process exit code.
func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &app{environ: environ, stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	root := newRootCmd(app)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "kisfeed:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "kisfeed:", err)
	if isFlagError(err) {
		return 2
	}
	return 1
}

func isFlagError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "unknown flag") || strings.Contains(s, "unknown command") ||
		strings.Contains(s, "flag needs an argument") || strings.Contains(s, "invalid argument") ||
		strings.Contains(s, "accepts ") || strings.Contains(s, "requires at least")
}

// app is what every command shares: the injected process environment.
type app struct {
	environ []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	now     func() time.Time

	// newUpstream, when set (tests), replaces the data-source factory.
	newUpstream func(ctx context.Context, cfg config.Config, log *slog.Logger) (*upstream, error)
}

// getenv looks a variable up in the injected environment.
func (a *app) getenv(key string) string {
	for i := len(a.environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(a.environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// config loads and validates the settings (environment, then ./.env).
func (a *app) config() (config.Config, error) {
	cfg, err := config.Load(a.environ, ".env")
	if err != nil {
		return cfg, withExit(2, err)
	}
	return cfg, nil
}

// logger builds the process logger on stderr.
func (a *app) logger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(a.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts))
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "kisfeed",
		Short: "A market-data gateway for the Korea Investment & Securities (KIS) Open API",
		Long: `kisfeed turns the KIS Open API into a dependable market-data feed: current
prices, 10-level order books, daily and minute candles and stock info for every
KRX-listed stock — rate-limited, cached, resilient, and ingested daily into a
database.

With no configuration at all, every command runs against a built-in KIS
emulator over a deterministic synthetic market, so you can try everything
offline. Set KIS_APP_KEY and KIS_APP_SECRET (in the environment or ./.env) to
talk to KIS; see .env.example for every setting.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(commands(a)...)
	return root
}
