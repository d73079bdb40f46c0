// Package emulatortest starts a KIS emulator for tests of other packages.
package emulatortest

import (
	"net/http/httptest"
	"testing"

	"github.com/kisfeed/kisfeed/emulator"
)

// Start runs an emulator built with opts on an httptest server at
// 127.0.0.1 and returns it with its base URL (no trailing slash). The
// server is closed by tb.Cleanup. A bad option fails the test.
func Start(tb testing.TB, opts ...emulator.Option) (*emulator.Server, string) {
	tb.Helper()
	s, err := emulator.New(opts...)
	if err != nil {
		tb.Fatalf("emulatortest: %v", err)
	}
	ts := httptest.NewServer(s)
	tb.Cleanup(func() {
		_ = s.Close() // WebSocket sessions first: httptest does not track them
		ts.Close()
	})
	return s, ts.URL
}
