package fanout

import (
	"context"
	"net"
)

// connKey is the context key under which [ConnContext] stores a request's
// connection.
type connKey struct{}

// ConnContext is an http.Server.ConnContext that remembers each
// connection in its requests' contexts, so the stream handlers can bound
// the kernel's send buffer of the connection they stream on (see
// HandlerOptions.SendBuffer). Without it the handlers leave the socket
// alone.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// writeBufferSetter is what *net.TCPConn and *net.UnixConn offer.
type writeBufferSetter interface{ SetWriteBuffer(bytes int) error }

// limitSendBuffer sets the send buffer of the request's connection (as
// stored by ConnContext; through a TLS wrapper too) to n bytes. Why: with
// autotuning, Linux grows a socket's send buffer up to tcp_wmem's maximum
// (4 MiB by default), and a consumer that reads nothing then parks
// minutes of its events in the kernel while every write "succeeds", so
// neither the write deadline nor the queue bound sees it. A fixed buffer
// (Linux doubles n for bookkeeping) makes writes block once about 2n
// bytes plus the client's receive window are in flight, and the write
// deadline fires. It reports whether the buffer was set.
func limitSendBuffer(ctx context.Context, n int) bool {
	if n <= 0 {
		return false
	}
	c, _ := ctx.Value(connKey{}).(net.Conn)
	for c != nil {
		if s, ok := c.(writeBufferSetter); ok {
			return s.SetWriteBuffer(n) == nil
		}
		u, ok := c.(interface{ NetConn() net.Conn }) // *tls.Conn
		if !ok {
			return false
		}
		c = u.NetConn()
	}
	return false
}
