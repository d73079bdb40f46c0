// Package live runs the KIS real-time stream inside serve and owns the
// demand for streamed codes: reference-counted acquisitions that register a
// code with KIS on first use and unregister it after a linger. It also
// owns the delivery of the stream's events to consumers, the first of
// which writes trades and books through into the cache and re-reads them
// from REST after a reconnect.
//
// The KIS client (kis/stream) holds the sessions; live decides what they
// carry. Consumers register a [Handler] per code ([Live.Listen]) or for
// every code ([Live.ListenAll]); handlers run on the session's reader and
// must not block, so a consumer that does more (a network write, a
// cache write) hands the event to its own queue, as the write-through
// does (writer.go).
//
// Growing into a gateway (SSE/WebSocket consumers, replicas over NATS):
// a consumer is an [Live.Acquire] (demand, which may be refused with the
// client's typed limit error) plus a [Live.Listen] handler that copies
// events into that consumer's own bounded queue; a relay to other
// replicas is one [Live.ListenAll] handler. Live itself never queues per
// consumer and never drops for one.
//
// # Files
//
//	live.go    Config, New, Start/Close, Acquire and the linger, Stats
//	listen.go  Listen/ListenAll and the dispatch on the KIS reader
//	writer.go  the write-through: a latest-wins slot per code, workers
//	gaps.go    one log line per reconnect: codes, window, resync outcome
package live
