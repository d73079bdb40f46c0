// Package shared holds what the replicas of kisfeed share through Redis so
// that together they use one KIS app key as a single process would: its
// token and its rate budget. It is named for what it provides, not for the
// database (which would also clash with go-redis, imported as goredis).
//
//   - [TokenStore], a kis.TokenStore for T = kis.Token: one token issuance
//     per app key across every replica. Issuance is serialised by a lock
//     (SET NX PX with a random token, renewed while held, released by a
//     compare-and-delete Lua script), and the token is stored as JSON with
//     a TTL that ends when its owner's retainUntil says.
//   - [Limiter], a kis.Limiter: a GCRA rate limit in Redis
//     (github.com/go-redis/redis_rate/v10) keyed per app key, so N
//     replicas together stay within the key's per-second budget.
//   - [Lease], a fenced lease: which replica holds an app key's KIS
//     stream session. SET NX PX and a fence from INCR in one Lua script,
//     compare-and-pexpire renewals every ttl/3, and [Lease.Run], which
//     stops a tenure by the local clock (ttl − margin after the last
//     renewal) before Redis can let another replica in.
//   - [Open], which connects with timeouts short enough that a Redis
//     outage degrades requests instead of stalling them.
//
// Both degrade when Redis fails, logging once per state change: the token
// store falls back to a local store (a process then issues on its own, as
// without Redis), and the limiter lets the request through to the client's
// own per-process pacing. Availability wins over the shared budget during
// a Redis outage, which is also what a lost lock would cost.
//
// The package never imports kis (architecture_test.go holds it to that):
// a token is an opaque record of type T, and the wiring hands in the
// kis-side knowledge (kis.Token.RetainUntil, the JSON form of kis.Token).
//
// Keys (after the configurable prefix, "kisfeed:" by default):
//
//	kis:token:{id}       JSON token; id is the kis client's hashed store id
//	kis:token:{id}:lock  issuance lock
//	lease:stream:{id}    "{replica}:{fence}", PX ttl; id is [AppKeyID]
//	lease:fence:{id}     the fence counter (INCR, no expiry)
//	rate:kis:rate:{hash} GCRA state (redis_rate adds "rate:"); hash is a
//	                     SHA-256 prefix of the app key, never the key itself
package shared
