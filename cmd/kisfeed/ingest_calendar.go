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
market holiday). Exit 2 on bad usage. Schedulers use it to skip holidays.`,
		Example: `  kisfeed calendar is-trading-day
  kisfeed calendar is-trading-day 2025-10-06 || echo closed`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			day := kisfeed.Day(a.now())
			if len(args) == 1 {
				d, err := parseDay("DATE", args[0])
				if err != nil {
					return err
				}
				day = d
			}
			open := krx.IsTradingDay(day)
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
		Use:     "list",
		Short:   "List the trading days in a window (default: the current month)",
		Example: `  kisfeed calendar list --from 2025-09-29 --to 2025-10-10`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			today := kisfeed.Day(a.now())
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
			if end.Sub(start) > 366*24*time.Hour*10 {
				return usageError("window %s..%s: want at most 10 years", start.Format(time.DateOnly), end.Format(time.DateOnly))
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
