// Package stream is a client of the KIS real-time WebSocket: executions
// (H0STCNT0, or H0UNCNT0 for KRX+NXT) and 10-level books (H0STASP0 /
// H0UNASP0) decoded into [kisfeed.Trade], [kisfeed.Book] and, after a
// reconnect, [kisfeed.Gap] events.
//
// It is a subpackage of kis rather than files in it because it is a
// different connection with a different life: one long-lived session per
// app key instead of pooled REST calls, and its own goroutines, options
// and stats. It imports kis only for the approval key ([kis.Approver] and
// [kis.ApprovalKeyStore], stored and shared like access tokens); it never
// imports internal/... so it stays usable outside kisfeed.
//
// What keeps an app key out of trouble with KIS (REFERENCE §h, §k.1):
//
//   - one session per app key (a second gets OPSP8996), at most 41
//     registrations on it (all TRs summed); [Client.Subscribe] spreads
//     registrations over every configured key and refuses the next one
//     with [ErrSubscriptionLimit];
//   - subscribe messages paced per session ([WithSubscribePace]), since
//     KIS warns that subscribe storms get an app key or IP blocked;
//   - reconnects with exponential backoff and full jitter (1 s … 60 s),
//     every registration restored, the approval key reused (re-issued
//     once only when KIS refuses it: OPSP0011/OPSP9994; never on OPSP8996);
//   - PINGPONG echoed verbatim and protocol pings answered; a watchdog
//     reconnects a session that went silent ([WithWatchdog]);
//   - a parser that reads every record of a multi-record frame, tolerates
//     records wider than the known layout (KIS adds fields without
//     notice), and rejects what it cannot frame with a [*FrameError]
//     without dropping the session.
//
// Events go to one handler function ([Config.Handler]) called from the
// session's reader goroutine; see [Handler].
package stream
