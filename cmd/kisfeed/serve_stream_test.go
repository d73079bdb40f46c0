package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/kisfeed/kisfeed"
)

// TestServeStreamBadInput is the "bad input" bar end to end, on serve in
// embedded mode (the built-in emulator) at a fixed market time: bad
// /v1/stream requests get a 400 problem naming what is wrong (an unlisted
// code too: KIS would take the registration and stream nothing), and on
// /v1/ws malformed messages get invalid error events, an unlisted code an
// unknown_code one, and 10,000 subscribe/unsubscribe flips are refused as
// rate_limited past the per-socket burst, so KIS sees at most one
// registration per code and kind however the client flips.
func TestServeStreamBadInput(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	a := &app{
		environ: []string{"LOG_LEVEL=error", "KISFEED_MARKET_TIME=2026-11-25 10:00",
			"KIS_TOKEN_FILE=" + t.TempDir() + "/tokens.json"},
		stdin: strings.NewReader(""), stderr: &stderr, clock: kisfeed.NewClock(nil, nil),
	}
	base, _ := startServe(t, a, "--access-log=false")

	var many []string
	for i := 1; i <= 101; i++ {
		many = append(many, fmt.Sprintf("%06d", i))
	}
	sse := []struct {
		name, query, want string
	}{
		{"malformed code", "codes=ABC", `stock code \"ABC\"`},
		{"unlisted code", "codes=005930,999999", "999999 is not a listed code"},
		{"more than 100 codes", "codes=" + strings.Join(many, ","), "more than 100 codes"},
		{"unknown kind", "codes=005930&kinds=quote", `kind \"quote\"`},
		{"no codes", "kinds=trade", "codes"},
		{"unknown parameter", "codes=005930&since=1", "since: unknown parameter"},
	}
	for _, tt := range sse {
		code, body := httpGet(t, base+"/v1/stream?"+tt.query)
		if code != http.StatusBadRequest || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d %s, want 400 naming %s", tt.name, code, body, tt.want)
		}
	}

	conn, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	// Each bad message and the error event it must bring back.
	bad := []struct{ msg, reason, want string }{
		{`not json`, "invalid", "not a JSON object"},
		{`{"op":"dance","codes":["005930"]}`, "invalid", `op \"dance\"`},
		{`{"op":"subscribe","codes":["ABC"]}`, "invalid", `stock code \"ABC\"`},
		{`{"op":"subscribe","codes":["005930"],"kinds":["quote"]}`, "invalid", `kind \"quote\"`},
		{`{"op":"subscribe","codes":["999999"]}`, "unknown_code", "999999 is not a listed code"},
	}
	for _, b := range bad {
		if err := conn.Write(t.Context(), websocket.MessageText, []byte(b.msg)); err != nil {
			t.Fatal(err)
		}
		env := readError(t, conn)
		if env.Reason != b.reason || !strings.Contains(env.Detail, strings.ReplaceAll(b.want, `\"`, `"`)) {
			t.Errorf("%s: error event %+v, want reason %s naming %s", b.msg, env, b.reason, b.want)
		}
	}

	// The answers are read while flipping: 10,000 error events unread
	// would fill the socket's queue (1,024) and end it as slow_consumer.
	type tally struct{ limited, acks int }
	counted := make(chan tally, 1)
	go func() {
		var n tally
		defer func() { counted <- n }()
		for {
			_, data, err := conn.Read(t.Context())
			if err != nil {
				t.Errorf("reading the flips' answers: %v", err)
				return
			}
			var env struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			}
			_ = json.Unmarshal(data, &env)
			if env.Type == "subscribed" || env.Type == "unsubscribed" {
				n.acks++
				continue
			}
			var e streamError
			_ = json.Unmarshal(env.Data, &e)
			if e.Reason == "rate_limited" {
				// "N subscription changes refused: ..." (one event
				// waits at a time and counts those refused since).
				var k int
				_, _ = fmt.Sscanf(e.Detail, "%d", &k)
				n.limited += k
			}
			if strings.Contains(e.Detail, "end-mark") {
				return
			}
		}
	}()
	const flips = 10_000
	for i := range flips {
		msg := `{"op":"subscribe","codes":["005930"],"kinds":["trade"]}`
		if i%2 == 1 {
			msg = `{"op":"unsubscribe","codes":["005930"]}`
		}
		if err := conn.Write(t.Context(), websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("flip %d: %v", i, err)
		}
	}
	// An end mark: the events before its error event answer the flips.
	if err := conn.Write(t.Context(), websocket.MessageText, []byte(`{"op":"end-mark"}`)); err != nil {
		t.Fatal(err)
	}
	n := <-counted
	limited, acks := n.limited, n.acks
	t.Logf("%d flips: %d refused as rate_limited, %d acknowledged", flips, limited, acks)
	// The burst (100) passes, then 20 per second for as long as the
	// flips took; everything else is refused before it reaches KIS.
	// (acks may hold one more: the refused 999999's empty "subscribed".)
	if limited < flips/2 || limited+acks < flips || limited+acks > flips+1 {
		t.Errorf("%d rate_limited and %d acknowledged of %d flips, want most refused and every flip answered", limited, acks, flips)
	}
	// KIS holds at most the one registration the consumer may have left.
	_, metrics := httpGet(t, base+"/metrics")
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, `kisfeed_stream_registrations{key="key1"} `); ok && v != "0" && v != "1" {
			t.Errorf("registrations after the flips: %s, want at most 1", v)
		}
	}
}

// streamError is an error event's data.
type streamError struct {
	Code, Reason, Detail string
}

// readError reads messages until an error event and returns its data.
func readError(t *testing.T, conn *websocket.Conn) streamError {
	t.Helper()
	for {
		_, data, err := conn.Read(t.Context())
		if err != nil {
			t.Fatalf("reading an error event: %v", err)
		}
		var env struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatalf("message %s: %v", data, err)
		}
		if env.Type != "error" {
			continue
		}
		var e streamError
		_ = json.Unmarshal(env.Data, &e)
		return e
	}
}
