package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// web holds the market page served at / and its assets under /ui/: plain
// HTML, CSS and ES modules with no build step, and TradingView's
// lightweight-charts vendored unmodified (web/vendor/lightweight-charts,
// see scripts/update-lightweight-charts.sh). Everything is in the binary,
// so the page works on a machine with no internet.
//
//go:embed web
var web embed.FS

// assetsPrefix is where the page's files are served.
const assetsPrefix = "/ui/"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// pageAssets maps a path under /ui/ ("app.js", "vendor/...") to its file;
// index.html is served at / only.
var pageAssets = func() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(web, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := web.ReadFile(p)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			// LICENSE, NOTICE and the version file.
			ctype = "text/plain; charset=utf-8"
		}
		sum := sha256.Sum256(body)
		out[strings.TrimPrefix(p, "web/")] = asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("httpapi: reading the embedded page: " + err.Error())
	}
	return out
}()

// pageCSP keeps the page to its own origin: scripts, styles, fetches and
// the event stream all come from kisfeed itself. Inline styles are allowed
// because lightweight-charts sizes its canvases with style attributes.
const pageCSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// handlePage serves the market page. Its state (code, interval) lives in
// the query string, read by the page's script, so any query is accepted.
func handlePage(w http.ResponseWriter, r *http.Request) {
	serveAsset(w, r, pageAssets["index.html"])
}

// assets serves the page's files under /ui/; anything else there is a 404.
var assets = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	a, ok := pageAssets[strings.TrimPrefix(r.URL.Path, assetsPrefix)]
	if !ok || strings.TrimPrefix(r.URL.Path, assetsPrefix) == "index.html" {
		http.NotFound(w, r)
		return
	}
	serveAsset(w, r, a)
})

// serveAsset writes one embedded file. The ETag (a hash of the content)
// lets a browser revalidate cheaply with no-cache: a new binary with a
// changed page is seen at once, an unchanged one costs a 304.
func serveAsset(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(a.ctype, "text/html") {
		h.Set("Content-Security-Policy", pageCSP)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
