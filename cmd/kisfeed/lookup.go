package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/text/width"

	"github.com/kisfeed/kisfeed"
	"github.com/kisfeed/kisfeed/internal/jsonview"
	"github.com/kisfeed/kisfeed/kis"
)

// The lookup commands: quote, orderbook, candles, info and token. Each
// validates its arguments first (bad usage exits 2 naming the flag and
// the expected format), reads through the configured upstream's Source,
// and prints a table or, with --json, the HTTP API's JSON representation
// of the value (package jsonview: snake_case, RFC 3339 times in +09:00).

// withUpstream builds the upstream, runs fn and closes it.
func (a *app) withUpstream(ctx context.Context, fn func(up *upstream) error) error {
	cfg, err := a.config()
	if err != nil {
		return err
	}
	up, err := a.upstream(ctx, cfg, a.logger(cfg))
	if err != nil {
		return withExit(1, err)
	}
	defer func() {
		if up.Close != nil {
			_ = up.Close()
		}
	}()
	return fn(up)
}

// lookupError gives upstream failures exit code 1 with a clear message;
// bad input and credentials KIS refuses are configuration or usage
// problems (exit 2) that no retry will fix.
func lookupError(err error) error {
	switch {
	case errors.Is(err, kis.ErrInvalidCredentials):
		return withExit(2, fmt.Errorf("%w; check KIS_APP_KEY and KIS_APP_SECRET", err))
	case errors.Is(err, kisfeed.ErrInvalid):
		return withExit(2, err)
	}
	return withExit(1, err)
}

// lookupExit is the exit-status paragraph of every lookup command's help.
const lookupExit = `

Exit status: 0 success; 1 lookup failed (unknown code, KIS unavailable or
erring); 2 bad usage or configuration, credentials KIS refuses included.`

// parseCodes parses every argument before any request: the one check of
// a code given on the command line.
func parseCodes(args []string) ([]kisfeed.Code, error) {
	codes := make([]kisfeed.Code, len(args))
	for i, s := range args {
		c, err := kisfeed.ParseCode(s)
		if err != nil {
			return nil, usageError("%v", err)
		}
		codes[i] = c
	}
	return codes, nil
}

// newLookupCmd completes c as the lookup of one code (its one argument)
// with a --json flag: it checks the code before any request, asks the
// data source with fetch and prints the answer with print.
func newLookupCmd[T any](a *app, c *cobra.Command, fetch func(kisfeed.Source, context.Context, kisfeed.Code) (T, error),
	print func(v T, asJSON bool) error) *cobra.Command {
	var asJSON bool
	c.Args = cobra.ExactArgs(1)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		codes, err := parseCodes(args)
		if err != nil {
			return err
		}
		return a.withUpstream(cmd.Context(), func(up *upstream) error {
			v, err := fetch(up.Source, cmd.Context(), codes[0])
			if err != nil {
				return lookupError(err)
			}
			return print(v, asJSON)
		})
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func kst(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(kisfeed.KST).Format(time.RFC3339)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newQuoteCmd(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "quote CODE...",
		Short: "Print current prices",
		Long: `Print the current price snapshot of one or more stocks (6-character KRX codes
like 005930). With several codes they are fetched together (intstock-multprice,
30 a call); a code that fails on its own is reported on stderr and the others
are still printed (exit 1).` + lookupExit,
		Example: "  kisfeed quote 005930\n  kisfeed quote 005930 000660 --json",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			codes, err := parseCodes(args)
			if err != nil {
				return err
			}
			return a.withUpstream(cmd.Context(), func(up *upstream) error {
				return a.quote(cmd.Context(), up.Source, codes, asJSON)
			})
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (one object for one code, an array for several)")
	return c
}

func (a *app) quote(ctx context.Context, src kisfeed.Source, codes []kisfeed.Code, asJSON bool) error {
	var qs []*kisfeed.Quote
	var failed map[string]error
	if len(codes) == 1 {
		q, err := src.Quote(ctx, codes[0])
		if err != nil {
			return lookupError(err)
		}
		qs = []*kisfeed.Quote{q}
	} else {
		var err error
		qs, err = src.Quotes(ctx, codes)
		var be *kisfeed.BatchError
		switch {
		case errors.As(err, &be):
			failed = be.Errs
		case err != nil:
			return lookupError(err)
		}
	}
	if err := a.printQuotes(qs, len(codes) == 1, asJSON); err != nil {
		return err
	}
	if len(failed) > 0 {
		keys := make([]string, 0, len(failed))
		for k := range failed {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		msgs := make([]string, len(keys))
		for i, k := range keys {
			msgs[i] = failed[k].Error()
		}
		return withExit(1, fmt.Errorf("%d of %d codes failed: %s", len(failed), len(codes), strings.Join(msgs, "; ")))
	}
	return nil
}

func (a *app) printQuotes(qs []*kisfeed.Quote, single, asJSON bool) error {
	if asJSON {
		if single {
			return writeJSON(a.stdout, jsonview.NewQuote(qs[0]))
		}
		out := make([]jsonview.Quote, 0, len(qs))
		for _, q := range qs {
			if q != nil {
				out = append(out, jsonview.NewQuote(q))
			}
		}
		return writeJSON(a.stdout, out)
	}
	rows := [][]string{{"CODE", "NAME", "PRICE", "CHANGE", "RATE%", "OPEN", "HIGH", "LOW", "VOLUME", "VALUE", "AS OF", "SOURCE"}}
	for _, q := range qs {
		if q == nil {
			continue
		}
		src := q.Meta.Source
		if q.Meta.Stale {
			src += " (stale)"
		}
		rows = append(rows, []string{q.Code, q.Name, fmt.Sprint(q.Price), fmt.Sprintf("%+d", q.Change),
			fmt.Sprintf("%+.2f", q.ChangeRate), fmt.Sprint(q.Open), fmt.Sprint(q.High), fmt.Sprint(q.Low),
			fmt.Sprint(q.Volume), fmt.Sprint(q.TradingValue), q.Meta.AsOf.In(kisfeed.KST).Format("2006-01-02 15:04:05"), src})
	}
	return writeTable(a.stdout, rows, map[int]bool{0: true, 1: true, 11: true})
}

// displayWidth is the number of terminal columns s takes: Hangul and the
// other East Asian wide characters take two.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// writeTable writes rows as columns two spaces apart, padded by display
// width: text/tabwriter counts runes, so a Korean name (4 runes, 8
// columns) pushed the rest of its row out of line. Columns in left align
// left, the others right.
func writeTable(w io.Writer, rows [][]string, left map[int]bool) error {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], displayWidth(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-displayWidth(cell))
			if i > 0 {
				b.WriteString("  ")
			}
			if left[i] {
				b.WriteString(cell)
				if i < len(row)-1 {
					b.WriteString(pad)
				}
			} else {
				b.WriteString(pad + cell)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newOrderBookCmd(a *app) *cobra.Command {
	return newLookupCmd(a, &cobra.Command{
		Use:   "orderbook CODE",
		Short: "Print the 10-level order book",
		Long: `Print the 10 best asks and bids of a stock (6-character KRX code like
005930) with their quantities, the totals and, during an auction, the
expected price.` + lookupExit,
		Example: "  kisfeed orderbook 005930 --json",
	}, kisfeed.Source.OrderBook, a.printOrderBook)
}

func (a *app) printOrderBook(b *kisfeed.OrderBook, asJSON bool) error {
	if asJSON {
		return writeJSON(a.stdout, jsonview.NewOrderBook(b))
	}
	fmt.Fprintf(a.stdout, "%s  as of %s  (%s)\n", b.Code, b.Meta.AsOf.In(kisfeed.KST).Format("2006-01-02 15:04:05"), b.Meta.Source)
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tASK QTY\tPRICE\tBID QTY\t")
	for i := kisfeed.BookDepth - 1; i >= 0; i-- {
		fmt.Fprintf(tw, "ask %d\t%d\t%d\t\t\n", i+1, b.Asks[i].Quantity, b.Asks[i].Price)
	}
	for i := range kisfeed.BookDepth {
		fmt.Fprintf(tw, "bid %d\t\t%d\t%d\t\n", i+1, b.Bids[i].Price, b.Bids[i].Quantity)
	}
	fmt.Fprintf(tw, "total\t%d\t\t%d\t\n", b.TotalAskQty, b.TotalBidQty)
	if err := tw.Flush(); err != nil {
		return err
	}
	if b.ExpectedPrice > 0 {
		fmt.Fprintf(a.stdout, "expected price %d\n", b.ExpectedPrice)
	}
	return nil
}

// parseDayFlag parses a --from/--to flag value: YYYY-MM-DD, or YYYYMMDD
// as ingest also accepts.
func parseDayFlag(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.DateOnly, "20060102"} {
		if t, err := time.ParseInLocation(layout, v, kisfeed.KST); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usageError("--%s %q: want a date YYYY-MM-DD", flag, v)
}

func newCandlesCmd(a *app) *cobra.Command {
	var (
		interval, from, to string
		unadjusted, asJSON bool
	)
	c := &cobra.Command{
		Use:   "candles CODE",
		Short: "Print daily, weekly, monthly or minute candles",
		Long: `Print a candle series, oldest first. Day, week and month candles cover
--from..--to (inclusive; --to defaults to today, --from to 3 months, 1 year and
5 years back); minute candles cover the single day --from (default today).
Dates are YYYY-MM-DD (or YYYYMMDD) in KST; --from may not be after today.` + lookupExit,
		Example: "  kisfeed candles 005930 --interval day --from 2020-01-01\n  kisfeed candles 005930 --interval minute --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			codes, err := parseCodes(args)
			if err != nil {
				return err
			}
			iv, err := kisfeed.ParseInterval(interval)
			if err != nil {
				return usageError("--interval %q: want day, week, month or minute", interval)
			}
			f, err := parseDayFlag("from", from)
			if err != nil {
				return err
			}
			t, err := parseDayFlag("to", to)
			if err != nil {
				return err
			}
			if !f.IsZero() && !t.IsZero() && t.Before(f) {
				return usageError("--from %s is after --to %s: want from <= to", from, to)
			}
			if today := kisfeed.Day(a.clock.Now()); f.After(today) {
				return usageError("--from %s is after today (%s KST): want a past day", from, today.Format(time.DateOnly))
			}
			if iv == kisfeed.IntervalMinute && to != "" {
				return usageError("--to %s: minute candles cover one day; give it with --from", to)
			}
			q := kisfeed.CandleQuery{Code: codes[0], Interval: iv, From: f, To: t, Unadjusted: unadjusted}
			return a.withUpstream(cmd.Context(), func(up *upstream) error {
				cs, err := up.Source.Candles(cmd.Context(), q)
				if err != nil {
					return lookupError(err)
				}
				return a.printCandles(cs, q, asJSON)
			})
		},
	}
	c.Flags().StringVar(&interval, "interval", "day", "day, week, month or minute")
	c.Flags().StringVar(&from, "from", "", "first day YYYY-MM-DD (minute: the day)")
	c.Flags().StringVar(&to, "to", "", "last day YYYY-MM-DD (default today)")
	c.Flags().BoolVar(&unadjusted, "unadjusted", false, "original prices instead of split-adjusted ones")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// printCandles prints cs, the answer to q.
func (a *app) printCandles(cs *kisfeed.Candles, q kisfeed.CandleQuery, asJSON bool) error {
	if asJSON {
		return writeJSON(a.stdout, jsonview.NewCandles(cs, q))
	}
	layout := "2006-01-02"
	if cs.Interval == kisfeed.IntervalMinute {
		layout = "2006-01-02 15:04"
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TIME\tOPEN\tHIGH\tLOW\tCLOSE\tVOLUME\tVALUE\t")
	for _, b := range cs.Bars {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", b.Time.In(kisfeed.KST).Format(layout), b.Open, b.High, b.Low, b.Close, b.Volume, b.Value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%d %s candles of %s (%s)\n", len(cs.Bars), cs.Interval, cs.Code, cs.Meta.Source)
	return nil
}

func newInfoCmd(a *app) *cobra.Command {
	return newLookupCmd(a, &cobra.Command{
		Use:   "info CODE",
		Short: "Print descriptive data about a stock",
		Long: `Print a stock's descriptive data: names, ISIN, market, security group,
sector, listed shares, par value, capital, listing date and its halted,
administrative and NXT flags.` + lookupExit,
		Example: "  kisfeed info 005930 --json",
	}, kisfeed.Source.StockInfo, a.printInfo)
}

// printInfo prints a stock's descriptive data: a table of name and value,
// or the HTTP API's JSON.
func (a *app) printInfo(info *kisfeed.StockInfo, asJSON bool) error {
	if asJSON {
		return writeJSON(a.stdout, jsonview.NewStockInfo(info))
	}
	listed := ""
	if !info.ListingDate.IsZero() {
		listed = info.ListingDate.In(kisfeed.KST).Format("2006-01-02")
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	for _, row := range [][2]string{
		{"code", info.Code}, {"isin", info.ISIN}, {"name", info.Name}, {"full name", info.FullName},
		{"english name", info.EnglishName}, {"market", string(info.Market)}, {"group", info.Group},
		{"sector", info.Sector}, {"listed shares", fmt.Sprint(info.ListedShares)},
		{"par value", fmt.Sprint(info.ParValue)}, {"capital", fmt.Sprint(info.Capital)},
		{"listing date", listed}, {"halted", fmt.Sprint(info.Halted)},
		{"administrative", fmt.Sprint(info.Administrative)}, {"nxt tradable", fmt.Sprint(info.NXTTradable)},
		{"source", info.Meta.Source},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

// tokenJSON describes a token without its value.
type tokenJSON struct {
	Server   string `json:"server"`
	BaseURL  string `json:"base_url"`
	Type     string `json:"type,omitempty"`
	Expires  string `json:"expires,omitempty"`
	IssuedAt string `json:"issued_at,omitempty"`
	Revoked  bool   `json:"revoked"`
	// NoToken: --revoke found no token stored, so nothing was revoked.
	NoToken bool `json:"no_token,omitempty"`
}

func newTokenCmd(a *app) *cobra.Command {
	var revoke, asJSON bool
	c := &cobra.Command{
		Use:   "token",
		Short: "Show (obtaining if needed) or revoke the KIS access token",
		Long: `Show the access token of each configured app key — its type, expiry and
issuance time, never its value — obtaining one if none is stored (KIS sends the
account holder a notification per issuance, so a stored valid token is reused).
With --revoke, revoke the stored tokens instead; with none stored there is
nothing to revoke, and it says so.

The token store is KIS_TOKEN_FILE (default: the user cache directory), or
Redis with REDIS_URL.` + lookupExit,
		Example: "  kisfeed token --json\n  kisfeed token --revoke",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withUpstream(cmd.Context(), func(up *upstream) error {
				clients := up.Clients
				if len(clients) == 0 {
					return usageError("token: no KIS client in this mode (ENABLE_KIS_API=false serves the in-process mock market)")
				}
				var out []tokenJSON
				for _, c := range clients {
					t := tokenJSON{Server: c.Server().String(), BaseURL: c.BaseURL()}
					if revoke {
						cur, err := c.CurrentToken(cmd.Context())
						if err != nil {
							return withExit(1, err)
						}
						if cur == nil {
							// Revoke is a no-op then; do not claim a revocation.
							t.NoToken = true
						} else {
							if err := c.Revoke(cmd.Context()); err != nil {
								return lookupError(err)
							}
							t.Revoked = true
						}
					} else {
						tok, err := c.Token(cmd.Context())
						if err != nil {
							return lookupError(err)
						}
						t.Type, t.Expires, t.IssuedAt = tok.Type, kst(tok.Expires), kst(tok.IssuedAt)
					}
					out = append(out, t)
				}
				if asJSON {
					if len(out) == 1 {
						return writeJSON(a.stdout, out[0])
					}
					return writeJSON(a.stdout, out)
				}
				for _, t := range out {
					if t.Revoked {
						fmt.Fprintf(a.stdout, "%s %s: token revoked\n", t.Server, t.BaseURL)
						continue
					}
					if t.NoToken {
						fmt.Fprintf(a.stdout, "%s %s: no token stored, nothing to revoke\n", t.Server, t.BaseURL)
						continue
					}
					fmt.Fprintf(a.stdout, "%s %s: %s token, expires %s (issued %s)\n", t.Server, t.BaseURL, t.Type, t.Expires, t.IssuedAt)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVar(&revoke, "revoke", false, "revoke the token instead of showing it")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
