package emulator

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Short PINGPONG settings: a ping every 15 ms, dropped after 300 ms of
// silence (generous, so a loaded CI machine answering late is no
// failure). The tests wait on messages, never on the clock.
var fastPing = []Option{WithPingInterval(15 * time.Millisecond), WithPingTimeout(300 * time.Millisecond)}

// pingRounds spans about twice the timeout: a session that survives them
// was kept by its answers.
const pingRounds = 40

func TestWSPingTextEcho(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t, fastPing...)
	c := h.dial("/tryitout")
	for range pingRounds {
		m := c.read()
		if !strings.Contains(m, `"tr_id":"PINGPONG"`) || !strings.Contains(m, `"datetime":"20251024`) {
			t.Fatalf("got %q, want a PINGPONG with the market's datetime", m)
		}
		c.send(m)
	}
	st := h.s.Stats().WebSocket
	if st.SessionsDroppedByReason[DropSilent] != 0 || st.PingEchoesReceived < pingRounds-1 {
		t.Errorf("stats: silent drops %d, echoes %d; want 0, >= %d", st.SessionsDroppedByReason[DropSilent], st.PingEchoesReceived, pingRounds-1)
	}
}

func TestWSPingProtocolPong(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t, fastPing...)
	c := dialRaw(t, h.url)
	for range pingRounds {
		op, payload := c.readFrame()
		if op != 0x1 || !strings.Contains(string(payload), "PINGPONG") {
			t.Fatalf("got opcode %d %q, want a PINGPONG text frame", op, payload)
		}
		c.writeFrame(0xA, payload) // pong with the same payload, as ws.pong(raw)
	}
	st := h.s.Stats().WebSocket
	if st.SessionsDroppedByReason[DropSilent] != 0 || st.PongsReceived < pingRounds-1 {
		t.Errorf("stats: silent drops %d, pongs %d; want 0, >= %d", st.SessionsDroppedByReason[DropSilent], st.PongsReceived, pingRounds-1)
	}
}

func TestWSPingSilenceDrops(t *testing.T) {
	t.Parallel()
	h := newWSHarness(t, fastPing...)
	c := h.dial("/")
	var err error
	for err == nil {
		_, _, err = c.c.Read(t.Context()) // pings, never answered
	}
	if websocket.CloseStatus(err) != -1 {
		t.Errorf("read error %v: want an abnormal close (no close frame)", err)
	}
	// The server counts a drop before it closes the connection.
	if n := h.s.Stats().WebSocket.SessionsDroppedByReason[DropSilent]; n != 1 {
		t.Errorf("silent drops: got %d, want 1", n)
	}
}

// rawConn is a minimal WebSocket client that can send an unsolicited pong
// (which no Go library exposes).
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, base string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	req := "GET /tryitout HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(nonce[:]) + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return &rawConn{t: t, c: c, br: br}
}

func (r *rawConn) readFrame() (op byte, payload []byte) {
	r.t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		r.t.Fatalf("read frame: %v", err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(r.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(r.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, payload); err != nil {
		r.t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, payload
}

// writeFrame writes one final, masked frame (payload < 126 bytes).
func (r *rawConn) writeFrame(op byte, payload []byte) {
	r.t.Helper()
	if len(payload) >= 126 {
		r.t.Fatal(errors.New("rawConn: payload too long"))
	}
	mask := [4]byte{1, 2, 3, 4}
	b := []byte{0x80 | op, 0x80 | byte(len(payload))}
	b = append(b, mask[:]...)
	for i, x := range payload {
		b = append(b, x^mask[i%4])
	}
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write frame: %v", err)
	}
}
