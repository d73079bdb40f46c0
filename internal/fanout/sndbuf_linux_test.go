//go:build linux

package fanout

import (
	"context"
	"crypto/tls"
	"net"
	"syscall"
	"testing"
)

// TestLimitSendBuffer checks that the stream handlers' send-buffer bound
// reaches the socket: through ConnContext's context, through a TLS
// wrapper, and not at all without ConnContext or with a non-positive size.
func TestLimitSendBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer server.Close()
	tcp := server.(*net.TCPConn)

	const n = 8 << 10
	tests := []struct {
		name string
		ctx  context.Context
		size int
		want bool
	}{
		{"no ConnContext", context.Background(), n, false},
		{"size 0 leaves autotuning", ConnContext(context.Background(), server), 0, false},
		{"negative leaves autotuning", ConnContext(context.Background(), server), -1, false},
		{"plain TCP", ConnContext(context.Background(), server), n, true},
		{"through TLS", ConnContext(context.Background(), tls.Server(server, &tls.Config{})), n, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := limitSendBuffer(tt.ctx, tt.size); got != tt.want {
				t.Fatalf("limitSendBuffer = %v, want %v", got, tt.want)
			}
			if !tt.want {
				return
			}
			raw, err := tcp.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			var gerr error
			if err := raw.Control(func(fd uintptr) {
				got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
			}); err != nil || gerr != nil {
				t.Fatal(err, gerr)
			}
			// Linux doubles the request for its bookkeeping.
			if got != 2*n {
				t.Fatalf("SO_SNDBUF = %d, want %d", got, 2*n)
			}
		})
	}
}
