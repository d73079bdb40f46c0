// Package fanout serves the real-time stream to many consumers: a [Hub]
// takes every trade, book and gap once (Publish), stamps it with an id
// "<epoch>-<seq>", keeps a bounded ring per code for Last-Event-ID resume,
// and hands it to each subscribed [Consumer]'s bounded queue, where books
// coalesce and a consumer that cannot keep up is disconnected without
// slowing the others; demand (first consumer in, last one out) drives the
// upstream registrations through the small [Demand] interface.
//
// The HTTP side is [NewSSEHandler] (GET /v1/stream, Server-Sent Events)
// and [NewWSHandler] (GET /v1/ws, WebSocket with subscribe/unsubscribe
// messages); both speak the wire contract of issue 11 (event types trade,
// book, gap and error; error reasons named by the Reason constants).
package fanout
