// Package batch is a [kisfeed.Source] decorator that coalesces concurrent
// single-code Quote calls into batch Quotes calls to the source it wraps.
// It owns the collection window, the per-code deduplication of calls
// pending or in flight, and the goroutines that run each batch (stopped
// by [Source.Close]).
//
// Why: on KIS's real server one intstock-multprice call answers up to 30
// codes for the price of one rate slot, so a cold cache hit by misses for
// many codes fills in 1/30 of the calls — 2,600 codes in ~87 calls (~5 s
// at 18 req/s) instead of 2,600 (~144 s). Use it only over a source whose
// Quotes is one upstream call per 30 codes; over KIS's mock server (whose
// client falls back to one call per code) it would only add the window.
//
// A batch is sent when it holds [DefaultMaxBatch] codes, or when its
// collection window has passed, fewer than the in-flight limit of batches
// are running ([WithMaxInFlight]) and the partial-batch rate allows
// ([WithPartialRate]). While the rate limiter below is the bottleneck,
// batches already in flight wait there, so a partial batch keeps
// collecting codes instead of queueing behind them half empty: under a
// flood the batches leave full, and with no load a lone miss waits only
// the window.
//
// Each caller waits for its own code's answer or its own context, whichever
// comes first; leaving does not cancel the batch for the others. The
// batch runs on a context detached from its callers (so one caller's
// cancellation cannot fail the others), bounded by the latest deadline
// among them (past it nobody is left to take the answer) or, when some
// caller has no deadline, by the flight timeout ([WithFlightTimeout]), and
// cancelled by Close. A caller that joins a batch already sent takes its
// answer as it comes: a sent batch's deadline cannot move.
package batch
