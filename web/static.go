package main

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"
)

//go:embed static
var staticFS embed.FS

// asset is one embedded file, read once at start-up, with its validator.
type asset struct {
	name        string // file name under static/, for ServeContent and logs
	contentType string
	body        []byte
	etag        string // strong: a hash of body
}

// site is the fixed set of files web serves, by URL path pattern.
type site struct{ assets map[string]*asset }

// files maps each served URL pattern to its file and type. Types are set
// here, not sniffed or guessed from the extension by the OS's mime tables, so
// nosniff never meets a surprise (a text/plain script is refused by browsers).
var files = []struct{ pattern, file, contentType string }{
	{"/{$}", "index.html", "text/html; charset=utf-8"},
	{"/app.js", "app.js", "text/javascript; charset=utf-8"},
	{"/app.css", "app.css", "text/css; charset=utf-8"},
	{"/favicon.svg", "favicon.svg", "image/svg+xml"},
}

// loadSite reads every file in files from the embedded tree.
func loadSite() (*site, error) {
	s := &site{assets: make(map[string]*asset, len(files))}
	for _, f := range files {
		b, err := staticFS.ReadFile("static/" + f.file)
		if err != nil {
			return nil, fmt.Errorf("embedded site: %w", err)
		}
		sum := sha256.Sum256(b)
		s.assets[f.pattern] = &asset{
			name:        f.file,
			contentType: f.contentType,
			body:        b,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`,
		}
	}
	return s, nil
}

// routes returns the assets by URL pattern.
func (s *site) routes() map[string]*asset { return s.assets }

// handleAsset serves one embedded file. Assets are not fingerprinted, so
// every response is Cache-Control: no-cache: the browser may keep a copy but
// revalidates it with If-None-Match, and a deploy is picked up on the next
// load. ServeContent answers HEAD, conditional and range requests.
func handleAsset(a *asset) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
	})
}
