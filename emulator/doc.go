// Package emulator is a KIS Open API wire-compatible HTTP server over the
// deterministic synthetic market of internal/sim. It owns the server side
// of the KIS wire: the quotation, OAuth and master-file endpoints with
// wire types of its own, the gateway rules (auth, rate limit, tr_id, mock
// refusal) and injected faults.
//
// Tests and offline runs talk to it exactly as they would to KIS: same
// paths, tr_ids, headers, envelopes, field names and order, string-typed
// values, error codes and HTTP statuses (REFERENCE.md and its fixtures are
// the spec; the golden tests compare every endpoint against the fixtures).
//
// Served:
//
//   - OAuth: POST /oauth2/tokenP (24 h tokens, the same token within 6 h,
//     HTTP 403 EGW00133 for a second call within 60 s), /oauth2/revokeP,
//     /oauth2/Approval, POST /uapi/hashkey.
//   - Quotations under /uapi/domestic-stock/v1/quotations/: inquire-price,
//     inquire-asking-price-exp-ccn, inquire-daily-itemchartprice,
//     inquire-time-itemchartprice, inquire-time-dailychartprice,
//     inquire-daily-price, search-stock-info, search-info,
//     intstock-multprice, chk-holiday. A "mock" server refuses the
//     real-only ones with HTTP 500 EGW00213.
//   - Master files: GET /common/master/{kospi,kosdaq,konex}_code.mst.zip.
//   - Admin (never faulted, limited or authenticated): GET /_emulator/stats,
//     POST|DELETE /_emulator/faults, POST /_emulator/outage?for=30s,
//     POST /_emulator/expire-tokens, GET /_emulator/health.
//
// Gateway order for a data call: app key/secret headers, Bearer token,
// custtype → injected error faults → per-app-key rate limit (sliding
// 1-second window over accepted requests; HTTP 500 EGW00201) → tr_id →
// mock refusal → parameters (OPSQ errors, HTTP 200 rt_cd "2") → data.
//
// The emulator never imports package kis: its wire types are its own, so
// one misreading of the spec cannot hide on both sides. Values come from
// sim at the market clock ([WithMarketClock]); numbers KIS reports that
// the synthetic market does not model (PER, foreign ownership, pivots…)
// are deterministic functions of the stock code and day.
//
// Files: quotations.go routes a quotation call through the gateway to its
// endpoint, and each endpoint has its own file (price.go, orderbook.go,
// charts.go, minutes.go, dailyprice.go, info.go, multprice.go,
// holiday.go); params.go reads and checks query parameters, market.go
// holds what their outputs share (the snapshot of one stock, made-up
// fundamentals, range extremes), wire.go the envelope. A new endpoint is
// a file with its handler plus one line in the endpoints table.
//
// Package emulatortest starts one on an httptest server for other
// packages' tests.
package emulator
