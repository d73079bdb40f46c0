package emulatortest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed/emulator"
)

func TestStart(t *testing.T) {
	s, base := Start(t, emulator.WithRate(0))
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("base URL: got %q, want http://127.0.0.1:PORT", base)
	}
	resp, err := http.Get(base + "/_emulator/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || s.Rate() != 0 {
		t.Errorf("health: got HTTP %d rate %v, want 200 0", resp.StatusCode, s.Rate())
	}
}
