// Package ingest is the daily ingestion job: it fetches the daily bars of
// the whole market for a day (or a window) from a [kisfeed.Source],
// validates every bar, and writes the sound ones to a [kisfeed.PriceStore]
// exactly once; the others go to rejected_bars with the reason and the raw
// payload, never to daily_prices.
//
// # Universe
//
// The source's listing (the KIS master files) filtered to common stocks,
// [kisfeed.Stock.IsCommonStock]: the "ST" security group, that is ordinary
// and preferred shares. ETFs, ETNs, REITs and the other groups are left
// out because their tick table and price rules differ. Halted stocks are
// kept. Stocks listed after the window are dropped (the listing is
// today's, the window may be older). Options.Markets and Options.Codes
// narrow it; a requested code that is not a listed common stock is an
// error, not a silent skip.
//
// # Fetch paths
//
// [PathQuotes] — when the window is the single latest completed session
// and the next session has not opened — builds each bar from the stock's
// quote (open, high, low, price as close, volume, traded value), 30 codes
// per Quotes call (KIS intstock-multprice): ~87 calls for the market.
// [PathCandles] — older days and windows — makes one unadjusted daily
// chart call per stock; the client pages. Both store the same numbers:
// unadjusted prices are what traded, as a quote shows them. Workers are
// bounded (errgroup); the client's rate limiter sets the pace.
//
// # Validation
//
// Between fetch and store every bar must have: a well-formed code of the
// universe; a date that is a KRX trading day; open, high, low and close
// present and positive; low ≤ open, close ≤ high; volume and value ≥ 0;
// prices on the tick grid ([krx.OnTick], from 2023-01-25 when the current
// unified table took effect); and high and low within the daily limits
// ([krx.Limits]) of the previous close. On the quotes path a snapshot
// taken before the close is refused as well.
//
// The previous close is taken from the most trustworthy place at hand. On
// the quotes path: the stored (already validated) bar of the previous
// trading day, else the quote's own previous close. On the candles path:
// the chart is asked from the trading day before the window, so the
// previous bar of the same series is the reference, for free (≤100 rows a
// page); after a rejected bar, or for a stock's first listed day, there is
// no trustworthy reference and the limit rule is skipped for that bar.
// Known limit: on a day with a corporate action (split, rights) the base
// price differs from the previous close and a genuine bar can be rejected;
// it stays visible in rejected_bars.
//
// # Failures, retries, exactly once
//
// A value the upstream sent but the client could not read (a non-numeric
// price: a *kisfeed.MalformedError, kisfeed.ErrMalformed; in a batch it fails
// only its own code) is a rejected bar, not a failed fetch: it goes to
// rejected_bars with the reason "malformed upstream field <field>:
// <value>" and the raw row as payload, on the quotes path for the run's
// day, on the candles path for the row's own date. It is counted once, in
// Rejected (and Summary.Malformed), and retried like any rejected bar.
//
// A code whose fetch fails, or whose bar is rejected, does not stop the
// run; after the pass it is fetched once more (a corrupted response or a
// timeout rarely repeats), and what still fails is reported: failed codes
// and still-rejected codes make up Summary.Incomplete, the figure the
// command's --max-failure-ratio is held against.
//
// The store upserts by (code, date) and rewrites a row only when a value
// differs, so running a day twice changes nothing. Runs are resumable:
// codes that already have every bar of the window are skipped
// (Options.Force refetches them). A cancelled context stops taking work,
// flushes what was fetched, records the run as interrupted and returns
// [ErrInterrupted]; the next run fetches only the rest.
//
// A write that fails for good (the store retries connection-level errors
// itself) stops the fetches at once: nothing more could be stored, and
// every fetch spends rate budget. The run fails with the write error, and
// the summary lists the codes left unwritten (fetched, not stored) and
// pending (not fetched), which a rerun fetches.
//
// Every run is recorded in ingestion_runs (window, path, status, counts,
// requests, elapsed, codes left for a rerun). Its status is running while
// the process works, renewing a heartbeat every [Ingester.Lease]/4, then
// succeeded, failed or interrupted. A run also records its owner, the
// process that started it ([ProcessOwner]: host/pid@start). A running
// run belongs to a dead process, and is marked abandoned
// (kisfeed.RunAbandoned) when the next run starts or ends and when
// [Ingester.Verify] looks, as soon as either holds: its owner is a process
// of this host that no longer exists ([OwnerDead]: a SIGKILLed run is
// marked by the rerun right after it), or its heartbeat stopped for longer
// than the lease ([DefaultLease]: the rule for another host's runs). Verify re-fetches a random sample
// of stored bars and reports every mismatch.
package ingest
