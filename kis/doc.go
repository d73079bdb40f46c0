// Package kis is a typed client for the Korea Investment & Securities (KIS)
// Open API REST endpoints kisfeed needs: current price, order book, daily
// and minute candles, stock info, multi-stock quotes, the market calendar
// and the stock master files. It owns the client side of the KIS wire
// (requests, pacing, tokens, retries, decoding and typed errors), and
// [Source] adapts it to [kisfeed.Source].
//
// One [Client] per app key carries everything that keeps an app key out
// of trouble with KIS:
//
//   - pacing: requests leave evenly spaced (burst 1) at a little under the
//     configured rate (18/s real, 1/s mock by default), shared by every
//     goroutine, with a bounded queue ([ErrQueueFull]); on KIS's rate-limit
//     answer (EGW00201) the rate drops and then creeps back, so a limit
//     KIS lowers without notice costs seconds, not an outage;
//   - tokens: obtained lazily, renewed before expiry by one goroutine while
//     the others wait, persisted in a [TokenStore] (a file by default) so
//     restarts reuse them, never issued twice within a minute for one app
//     key, refreshed once and replayed on an expired-token answer;
//   - retries with exponential backoff and jitter on EGW00201, HTTP 5xx,
//     timeouts and connection resets, never on business errors;
//   - errors as [*APIError] matching sentinels ([ErrRateLimited],
//     [ErrTokenExpired], [ErrUnknownStock], ...) with errors.Is; an
//     unreadable value (a non-numeric number, a JSON type KIS never sends)
//     is a [*MalformedError] matching [ErrMalformed] that names the field,
//     the value, the code and the raw row instead of turning into a zero,
//     and in a batch (intstock-multprice) it fails only its own code; the
//     app secret and tokens never appear in errors or logs;
//   - fallbacks on the mock server, which lacks several TRs.
//
// [Source] adapts a Client to [kisfeed.Source].
package kis
