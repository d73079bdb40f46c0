package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const chartDir = "vendor/lightweight-charts/"

// TestVendoredChartLibrary checks the embedded lightweight-charts against
// the version and checksum scripts/update-lightweight-charts.sh recorded,
// and that its licence and the attribution the licence asks for ship and
// are shown on the page.
func TestVendoredChartLibrary(t *testing.T) {
	t.Parallel()
	rec, ok := pageAssets[chartDir+"lightweight-charts.version"]
	if !ok {
		t.Fatal("web/" + chartDir + "lightweight-charts.version: missing (run scripts/update-lightweight-charts.sh VERSION)")
	}
	version := regexp.MustCompile(`(?m)^version (\S+)$`).FindSubmatch(rec.body)
	sum := regexp.MustCompile(`(?m)^sha256 ([0-9a-f]{64})  (\S+)$`).FindSubmatch(rec.body)
	if version == nil || sum == nil {
		t.Fatalf("lightweight-charts.version: got %q, want lines \"version X.Y.Z\" and \"sha256 HEX  FILE\"", rec.body)
	}
	lib, ok := pageAssets[chartDir+string(sum[2])]
	if !ok {
		t.Fatalf("%s: not embedded", sum[2])
	}
	got := sha256.Sum256(lib.body)
	if hex.EncodeToString(got[:]) != string(sum[1]) {
		t.Errorf("%s: sha256 %x, want the recorded %s (re-vendor with scripts/update-lightweight-charts.sh, never edit it)", sum[2], got, sum[1])
	}
	if banner := fmt.Sprintf("Lightweight Charts™ v%s", version[1]); !bytes.Contains(lib.body[:min(400, len(lib.body))], []byte(banner)) {
		t.Errorf("%s: its banner does not say %q", sum[2], banner)
	}
	for file, want := range map[string]string{"LICENSE": "Apache License", "NOTICE": "TradingView, Inc. https://www.tradingview.com/"} {
		if a, ok := pageAssets[chartDir+file]; !ok || !bytes.Contains(a.body, []byte(want)) {
			t.Errorf("%s%s: want it embedded and saying %q", chartDir, file, want)
		}
	}
	page := string(pageAssets["index.html"].body)
	for _, want := range []string{`href="https://www.tradingview.com/"`, `href="/ui/` + chartDir + `NOTICE"`, `href="/ui/` + chartDir + `LICENSE"`,
		`src="/ui/` + chartDir + string(sum[2]) + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html: missing %s", want)
		}
	}
}

// TestPageRoutes serves the page and its files, and nothing else under
// /ui/.
func TestPageRoutes(t *testing.T) {
	t.Parallel()
	srv := New(Options{Source: fakeSource(nil), Gatherer: prometheus.NewRegistry()})
	tests := []struct {
		path   string
		status int
		ctype  string
	}{
		{"/", 200, "text/html; charset=utf-8"},
		{"/?code=005930&interval=day", 200, "text/html; charset=utf-8"},
		{"/ui/app.js", 200, "text/javascript; charset=utf-8"},
		{"/ui/live.js", 200, "text/javascript; charset=utf-8"},
		{"/ui/app.css", 200, "text/css; charset=utf-8"},
		{"/ui/" + chartDir + "lightweight-charts.standalone.production.js", 200, "text/javascript; charset=utf-8"},
		{"/ui/" + chartDir + "NOTICE", 200, "text/plain; charset=utf-8"},
		{"/ui/", 404, ""},
		{"/ui/index.html", 404, ""},
		{"/ui/nope.js", 404, ""},
		{"/index.html", 404, "application/problem+json"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, tt.path, nil))
			if rec.Code != tt.status || (tt.ctype != "" && rec.Header().Get("Content-Type") != tt.ctype) {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Content-Type"), tt.status, tt.ctype)
			}
			if tt.status != 200 {
				return
			}
			etag := rec.Header().Get("ETag")
			if rec.Header().Get("Cache-Control") != "no-cache" || etag == "" {
				t.Errorf("headers %v: want Cache-Control no-cache and an ETag", rec.Header())
			}
			again := httptest.NewRequestWithContext(t.Context(), http.MethodGet, tt.path, nil)
			again.Header.Set("If-None-Match", etag)
			rec2 := httptest.NewRecorder()
			srv.ServeHTTP(rec2, again)
			if rec2.Code != http.StatusNotModified {
				t.Errorf("revalidation with its ETag: got %d, want 304", rec2.Code)
			}
		})
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil))
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("page CSP: got %q, want default-src 'self' (no CDN)", csp)
	}
	for _, r := range srv.Routes() {
		if strings.HasPrefix(r, "GET /ui") || r == "GET /{$}" {
			t.Errorf("Routes lists %s: the page is not an API route", r)
		}
	}
}

// TestPageReferences: every /ui/ file the page and its modules name is
// embedded, so a renamed file cannot leave the page half loaded.
func TestPageReferences(t *testing.T) {
	t.Parallel()
	ref := regexp.MustCompile(`(?:"/ui/([^"]+)"|from '\./([^']+)'|import\('/ui/([^']+)'\))`)
	for _, file := range []string{"index.html", "app.js", "live.js"} {
		for _, m := range ref.FindAllStringSubmatch(string(pageAssets[file].body), -1) {
			name := m[1] + m[2] + m[3]
			if _, ok := pageAssets[name]; !ok {
				t.Errorf("%s names /ui/%s: not embedded", file, name)
			}
		}
	}
}

// TestPageWeight reports the page's own weight (HTML, JS and CSS, not the
// vendored chart library), raw and gzipped, and keeps it small.
func TestPageWeight(t *testing.T) {
	t.Parallel()
	var raw, zipped int
	for _, f := range []string{"index.html", "app.js", "live.js", "app.css"} {
		a, ok := pageAssets[f]
		if !ok {
			t.Fatalf("%s: not embedded", f)
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(a.body)
		_ = zw.Close()
		raw, zipped = raw+len(a.body), zipped+buf.Len()
		t.Logf("%-10s %6d bytes, %5d gzipped", f, len(a.body), buf.Len())
	}
	t.Logf("page's own weight: %d bytes, %d gzipped (each file on its own; lightweight-charts not counted)", raw, zipped)
	const budget = 40 << 10
	if raw > budget {
		t.Errorf("page's own weight %d bytes: over the %d-byte budget", raw, budget)
	}
}
