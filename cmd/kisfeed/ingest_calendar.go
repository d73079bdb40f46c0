package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/krx"
)

func newCalendarCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "calendar",
		Short: "KRX trading calendar: is a day a trading day, which days trade",
		Long: `calendar answers from the built-in KRX calendar (weekends and market holidays
2020–2027), offline and without credentials; --source asks the configured data
source instead (KIS chk-holiday, which KIS wants called about once a day).`,
	}
	c.AddCommand(newCalendarIsTradingDayCmd(a), newCalendarListCmd(a))
	return c
}

func newCalendarIsTradingDayCmd(a *app) *cobra.Command {
	var fromSource bool
	c := &cobra.Command{
		Use:   "is-trading-day [DATE]",
		Short: "Print yes and exit 0 if KRX trades on DATE (default: today, KST), else print no and exit 1",
		Long: `is-trading-day prints "yes" and exits 0 when KRX trades on DATE (YYYY-MM-DD,
default today in KST), or prints "no" and exits 1 when it does not (weekend or
market holiday). Schedulers use it to skip holidays.

The built-in calendar covers 2020–2027. For a date outside it, or when
--source cannot answer, it exits 3: "could not tell" must not read as
"closed" (nor as "open", since holidays there are unknown). --source asks the
data source, which knows any date KIS does.

Exit status: 0 trading day; 1 closed; 2 bad usage; 3 could not tell.`,
		Example: `  kisfeed calendar is-trading-day
  kisfeed calendar is-trading-day 2025-10-06 || echo closed`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			day := kisfeed.Day(a.clock.Now())
			if len(args) == 1 {
				d, err := parseDay("DATE", args[0])
				if err != nil {
					return err
				}
				day = d
			}
			open := krx.IsTradingDay(day)
			if !fromSource && !inCalendar(day) {
				return withExit(3, fmt.Errorf("is-trading-day %s: outside the built-in KRX calendar (%d–%d), whose holidays are unknown there; ask the data source with --source",
					day.Format(time.DateOnly), krx.FirstYear, krx.LastYear))
			}
			if fromSource {
				cfg, err := a.config()
				if err != nil {
					return err
				}
				up, err := a.upstream(cmd.Context(), cfg, a.logger(cfg))
				if err != nil {
					return withExit(3, fmt.Errorf("data source: %w", err))
				}
				defer up.Close()
				if open, err = up.Source.IsTradingDay(cmd.Context(), day); err != nil {
					// Exit 3, not 1: "could not tell" must not read as "closed".
					return withExit(3, fmt.Errorf("is-trading-day %s: %w", day.Format(time.DateOnly), err))
				}
			}
			if open {
				fmt.Fprintln(a.stdout, "yes")
				return nil
			}
			fmt.Fprintln(a.stdout, "no")
			return withExit(1, nil)
		},
	}
	c.Flags().BoolVar(&fromSource, "source", false, "ask the data source (KIS chk-holiday) instead of the built-in calendar")
	return c
}

func newCalendarListCmd(a *app) *cobra.Command {
	var from, to string
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List the trading days in a window (default: the current month)",
		Long: `list prints the trading days from --from to --to, one a line, and the market
holidays among them with their names (--json: every day, trading true/false).
The window must lie within the built-in calendar, 2020–2027.`,
		Example: `  kisfeed calendar list --from 2025-09-29 --to 2025-10-10`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			today := kisfeed.Day(a.clock.Now())
			start := kisfeed.Date(today.Year(), today.Month(), 1)
			end := start.AddDate(0, 1, -1)
			var err error
			if from != "" {
				if start, err = parseDay("--from", from); err != nil {
					return err
				}
				if to == "" {
					end = start
				}
			}
			if to != "" {
				if end, err = parseDay("--to", to); err != nil {
					return err
				}
			}
			if end.Before(start) {
				return usageError("--to %s is before --from %s", end.Format(time.DateOnly), start.Format(time.DateOnly))
			}
			if !inCalendar(start) || !inCalendar(end) {
				return usageError("window %s..%s: want days within the built-in KRX calendar, %d-01-01 to %d-12-31 (holidays outside it are unknown)",
					start.Format(time.DateOnly), end.Format(time.DateOnly), krx.FirstYear, krx.LastYear)
			}
			type dayJSON struct {
				Date    string `json:"date"`
				Trading bool   `json:"trading"`
				Holiday string `json:"holiday,omitempty"`
			}
			var days []dayJSON
			for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
				days = append(days, dayJSON{Date: d.Format(time.DateOnly), Trading: krx.IsTradingDay(d), Holiday: krx.HolidayName(d)})
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(days)
			}
			for _, d := range days {
				switch {
				case d.Trading:
					fmt.Fprintln(a.stdout, d.Date)
				case d.Holiday != "":
					fmt.Fprintf(a.stdout, "%s closed (%s)\n", d.Date, d.Holiday)
				}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&from, "from", "", "first day YYYY-MM-DD (default: the first of this month)")
	f.StringVar(&to, "to", "", "last day YYYY-MM-DD (default: --from, or the end of this month)")
	f.BoolVar(&asJSON, "json", false, "print every day with trading true/false as JSON")
	return c
}

// inCalendar reports whether day falls within the built-in holiday table;
// outside it krx judges by weekday alone and would call a holiday open.
func inCalendar(day time.Time) bool {
	y := day.In(kisfeed.KST).Year()
	return y >= krx.FirstYear && y <= krx.LastYear
}
