package fanout

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

type wsEnvelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

func dialWS(t *testing.T, h *Hub, o HandlerOptions) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(NewWSHandler(h, o))
	t.Cleanup(srv.Close)
	conn, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

func readEnv(t *testing.T, conn *websocket.Conn) wsEnvelope {
	t.Helper()
	_, data, err := conn.Read(t.Context())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var env wsEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("envelope %s: %v", data, err)
	}
	return env
}

// TestWSMalformed: each malformed message is answered with an error
// event naming the problem, and the socket stays open.
func TestWSMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, msg, detail string
		binary            bool
	}{
		{"not JSON", `subscribe 005930`, "not a JSON object", false},
		{"binary", `{"op":"subscribe","codes":["005930"]}`, "binary message", true},
		{"unknown op", `{"op":"sub","codes":["005930"]}`, `op "sub"`, false},
		{"unknown field", `{"op":"subscribe","code":["005930"]}`, `unknown field "code"`, false},
		{"no codes", `{"op":"subscribe","codes":[]}`, "codes: want 1 to 100", false},
		{"bad code", `{"op":"subscribe","codes":["5930"]}`, `stock code "5930"`, false},
		{"unknown kind", `{"op":"subscribe","codes":["005930"],"kinds":["quote"]}`, `kind "quote"`, false},
		{"kinds on unsubscribe", `{"op":"unsubscribe","codes":["005930"],"kinds":["book"]}`, "codes only", false},
		{"101 codes", `{"op":"subscribe","codes":["` + strings.Repeat(`000000","`, 0) + manyCodes(101) + `"]}`, "more than 100", false},
	}
	h, _ := testHub(t, Config{})
	conn := dialWS(t, h, HandlerOptions{InvalidBurst: 100})
	for _, tt := range tests {
		typ := websocket.MessageText
		if tt.binary {
			typ = websocket.MessageBinary
		}
		if err := conn.Write(t.Context(), typ, []byte(tt.msg)); err != nil {
			t.Fatalf("%s: write: %v", tt.name, err)
		}
		env := readEnv(t, conn)
		var e errorData
		_ = json.Unmarshal(env.Data, &e)
		if env.Type != TypeError || e.Reason != ReasonInvalid || !strings.Contains(e.Detail, tt.detail) {
			t.Errorf("%s: got %s %s, want an invalid error naming %q", tt.name, env.Type, env.Data, tt.detail)
		}
	}
	// Still open: a valid subscribe works.
	_ = conn.Write(t.Context(), websocket.MessageText, []byte(`{"op":"subscribe","codes":["005930"],"kinds":["trade"]}`))
	if env := readEnv(t, conn); env.Type != TypeSubscribed || string(env.Data) != `{"codes":["005930"],"kinds":["trade"]}` {
		t.Errorf("after malformed messages: %s %s, want subscribed", env.Type, env.Data)
	}
}

func manyCodes(n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = "1" + strings.Repeat("0", 2) + string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
	}
	return strings.Join(out, `","`)
}

// TestWSStream: subscribe, events in the envelope, unsubscribe.
func TestWSStream(t *testing.T) {
	t.Parallel()
	h, _ := testHub(t, Config{})
	subscribed := watchSubscribes(h)
	conn := dialWS(t, h, HandlerOptions{})
	_ = conn.Write(t.Context(), websocket.MessageText, []byte(`{"op":"subscribe","codes":["005930","000660"]}`))
	<-subscribed
	if env := readEnv(t, conn); env.Type != TypeSubscribed || string(env.Data) != `{"codes":["000660","005930"],"kinds":["trade","book"]}` {
		t.Fatalf("got %s %s, want subscribed", env.Type, env.Data)
	}
	h.Publish(trade("005930", 71000, t0))
	env := readEnv(t, conn)
	if env.Type != TypeTrade || env.ID != "e1-1" || !strings.Contains(string(env.Data), `"id":"e1-1"`) || !strings.Contains(string(env.Data), `"price":71000`) {
		t.Errorf("got %s %s %s, want the trade e1-1", env.Type, env.ID, env.Data)
	}
	_ = conn.Write(t.Context(), websocket.MessageText, []byte(`{"op":"unsubscribe","codes":["005930"]}`))
	if env := readEnv(t, conn); env.Type != TypeUnsubscribed || string(env.Data) != `{"codes":["005930"]}` {
		t.Errorf("got %s %s, want unsubscribed", env.Type, env.Data)
	}
}

// TestWSCloses: repeated abuse and a slow consumer close the socket with
// 1008 and the reason; shutdown with 1001.
func TestWSCloses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		do     func(t *testing.T, h *Hub, conn *websocket.Conn)
		status websocket.StatusCode
		reason string
	}{
		{"abuse", func(t *testing.T, h *Hub, conn *websocket.Conn) {
			for range 3 {
				_ = conn.Write(t.Context(), websocket.MessageText, []byte(`nope`))
			}
		}, websocket.StatusPolicyViolation, "abuse: too many malformed messages"},
		{"slow consumer", func(t *testing.T, h *Hub, conn *websocket.Conn) {
			h.mu.Lock()
			for c := range h.consumers {
				h.dropLocked(c, ReasonSlowConsumer, "the queue of 4 events is full")
			}
			h.mu.Unlock()
		}, websocket.StatusPolicyViolation, "slow_consumer: the queue of 4 events is full"},
		{"shutdown", func(t *testing.T, h *Hub, conn *websocket.Conn) { h.Close() },
			websocket.StatusGoingAway, "shutdown: the server is shutting down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := testHub(t, Config{})
			connected := make(chan struct{}, 1)
			obs := &connectObserver{countObserver: newCountObserver(), connected: connected}
			h.obs = obs
			conn := dialWS(t, h, HandlerOptions{InvalidBurst: 2, Ping: time.Hour})
			<-connected
			tt.do(t, h, conn)
			var err error
			for err == nil {
				_, _, err = conn.Read(t.Context())
			}
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != tt.status || ce.Reason != tt.reason {
				t.Errorf("read ended with %v, want close %d %q", err, tt.status, tt.reason)
			}
		})
	}
}

// connectObserver signals each connected consumer.
type connectObserver struct {
	*countObserver
	connected chan struct{}
}

func (o *connectObserver) Connected(tr string, d int) {
	o.countObserver.Connected(tr, d)
	if d > 0 {
		o.connected <- struct{}{}
	}
}

// TestWSFlipStorm: 10,000 subscribe/unsubscribe messages on one socket
// reach Demand as at most the change burst's worth of calls (the clock
// stands still); the rest are refused with rate_limited error events
// and the socket stays usable.
func TestWSFlipStorm(t *testing.T) {
	t.Parallel()
	d := newFakeDemand()
	h, _ := testHub(t, Config{Demand: d, QueueSize: 1 << 16})
	conn := dialWS(t, h, HandlerOptions{Ping: time.Hour})
	const flips = 10_000
	limited := make(chan int)
	go func() {
		n := 0
		for {
			_, data, err := conn.Read(t.Context())
			if err != nil {
				limited <- -1
				return
			}
			var env wsEnvelope
			_ = json.Unmarshal(data, &env)
			var e errorData
			_ = json.Unmarshal(env.Data, &e)
			switch e.Reason {
			case ReasonRateLimited:
				// One event waits at a time; it counts the changes
				// refused since the last ("%d subscription changes refused").
				var k int
				if _, err := fmt.Sscanf(e.Detail, "%d", &k); err != nil || k < 1 {
					t.Errorf("rate_limited detail %q does not start with the count", e.Detail)
				}
				n += k
			case ReasonInvalid: // the end mark
				limited <- n
				return
			}
		}
	}()
	sub := []byte(`{"op":"subscribe","codes":["005930"]}`)
	unsub := []byte(`{"op":"unsubscribe","codes":["005930"]}`)
	for i := range flips {
		msg := sub
		if i%2 == 1 {
			msg = unsub
		}
		if err := conn.Write(t.Context(), websocket.MessageText, msg); err != nil {
			t.Fatalf("flip %d: %v", i, err)
		}
	}
	_ = conn.Write(t.Context(), websocket.MessageText, []byte(`{"op":"end"}`))
	n := <-limited
	a, r := d.counts()
	t.Logf("%d flips: Demand saw %d acquires, %d releases; rate_limited events count %d refused", flips, a, r, n)
	// Each subscribe registers trade and book: two Acquire calls per
	// admitted code change, two releases per admitted unsubscribe.
	if a+r > 2*100 || a == 0 {
		t.Errorf("Demand saw %d acquires and %d releases for %d flips, want between 1 and 200", a, r, flips)
	}
	if n < flips-100 {
		t.Errorf("rate_limited events count %d refused changes, want ≥ %d", n, flips-100)
	}
}
