// Command kisfeed is the KIS market-data gateway: lookups, the daily
// ingestion job, the HTTP API and a KIS emulator, in one binary. It owns
// the command line (flags, exit codes, what is printed) and what goes into
// the wiring: the configuration, the metrics observers, and whether the
// built-in emulator runs (upstream.go, one line).
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

	"github.com/kisfeed/kisfeed"
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
	// usage marks bad command-line usage: the error is followed by a
	// pointer to the command's --help.
	usage bool
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
	return &exitError{code: 2, err: fmt.Errorf(format, a...), usage: true}
}

// withExit attaches an exit code to err.
func withExit(code int, err error) error { return &exitError{code: code, err: err} }

// run is the whole program with its dependencies injected, so tests drive
// it end to end. It returns the process exit code.
func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{environ: environ, stdin: stdin, stdout: stdout, stderr: stderr, clock: kisfeed.NewClock(time.Now, nil)}
	return a.exec(ctx, args)
}

// exec runs one command line and returns its exit code: 0 success, 1
// failure, 2 bad usage or configuration, or the code a command chose. The
// error goes to stderr as "kisfeed: ..."; bad usage adds where to read
// about the command.
func (a *app) exec(ctx context.Context, args []string) int {
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	code, usage, msg := 1, false, err.Error()
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code, usage, msg = ee.code, ee.usage, ""
		if ee.err != nil {
			msg = ee.err.Error()
		}
	case strings.HasPrefix(msg, "unknown command "):
		// cobra's own answer to "kisfeed bogus" (with suggestions); every
		// other usage error is turned into a usageError by newRootCmd.
		code, usage = 2, true
	}
	if msg != "" {
		fmt.Fprintln(a.stderr, "kisfeed:", msg)
	}
	if usage && cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// cmdName is a command's path without the program name ("calendar list"),
// or "" for the root.
func cmdName(c *cobra.Command) string {
	_, name, _ := strings.Cut(c.CommandPath(), " ")
	return name
}

// strictUsage makes every usage mistake under c an exit-2 usageError that
// names the command: flag errors, wrong argument counts, and unknown
// subcommands of command groups (which cobra otherwise answers with the
// group's help and exit 0, so "kisfeed calendar is-tradingday" passed in a
// script).
func strictUsage(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictUsage(sub)
	}
	if c.HasParent() && c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if cmd.SuggestionsMinimumDistance <= 0 {
				cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only for the root
			}
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usageError("%s", msg)
		}
	}
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			switch {
			case err == nil:
				return nil
			case len(args) > 0 && !cmd.HasSubCommands() && strings.HasPrefix(err.Error(), "unknown command "):
				// cobra.NoArgs words it as an unknown command.
				return usageError("%s takes no arguments, got %q (usage: %s)", cmdName(cmd), args[0], cmd.UseLine())
			default:
				return usageError("%s: %v (usage: %s)", cmdName(cmd), err, cmd.UseLine())
			}
		}
	}
}

// app is what every command shares: the injected process environment.
type app struct {
	environ []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	// clock is the app's one clock, built once in run: the wall clock
	// for commands, and for the factory (wiring.Deps.Now), which builds
	// the stack's market clock from it.
	clock kisfeed.Clock

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
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if name := cmdName(c); name != "" {
			return usageError("%s: %v", name, err)
		}
		return usageError("%v", err)
	})
	strictUsage(root)
	return root
}
