package wiring_test

import (
	"strings"
	"testing"

	"github.com/kisfeed/kisfeed/emulator/emulatortest"
	"github.com/kisfeed/kisfeed/internal/config"
	"github.com/kisfeed/kisfeed/internal/wiring"
	"github.com/kisfeed/kisfeed/kis"
)

// TestMasterURL: the master files come from KIS_MASTER_URL; without it
// from KIS's own download host, so a remote proxy at KIS_BASE_URL is not
// asked for them, unless KIS_BASE_URL is a loopback address (a local
// emulator serves them). (Before KIS_MASTER_URL, any KIS_BASE_URL was
// taken for the master host too.)
func TestMasterURL(t *testing.T) {
	t.Parallel()
	if got := config.Default().MasterHost(); got != "" {
		t.Errorf("default master host %q, want \"\" (kis.DefaultMasterURL)", got)
	}
	_, base := emulatortest.Start(t)
	tests := []struct {
		name    string
		environ []string
		want    string
	}{
		{"loopback base url only", []string{"KIS_BASE_URL=" + base}, base},
		{"remote base url only", []string{"KIS_BASE_URL=https://kis-proxy.example.com:9443"}, kis.DefaultMasterURL},
		{"base url and master url", []string{"KIS_BASE_URL=" + base, "KIS_MASTER_URL=" + base + "/"}, base},
		{"master url only", []string{"KIS_MASTER_URL=http://127.0.0.1:1/files"}, "http://127.0.0.1:1/files"},
		{"neither", nil, kis.DefaultMasterURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			environ := append([]string{"ENABLE_KIS_API=true", "KIS_APP_KEY=master-key-" + tt.name, "KIS_APP_SECRET=s",
				"KIS_TOKEN_FILE=" + t.TempDir() + "/tokens.json"}, tt.environ...)
			cfg, err := config.Load(environ, "")
			if err != nil {
				t.Fatal(err)
			}
			u := newUpstream(t, cfg, wiring.Deps{})
			if len(u.Clients) != 1 {
				t.Fatalf("%d clients, want 1", len(u.Clients))
			}
			if got := u.Clients[0].MasterURL(); got != tt.want {
				t.Errorf("master url %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := config.Load([]string{"KIS_MASTER_URL=ftp://host"}, ""); err == nil {
		t.Error("KIS_MASTER_URL=ftp://host: got no error, want one naming the variable")
	} else if want := "KIS_MASTER_URL"; !strings.Contains(err.Error(), want) {
		t.Errorf("KIS_MASTER_URL=ftp://host: got %v, want an error naming %s", err, want)
	}
}
