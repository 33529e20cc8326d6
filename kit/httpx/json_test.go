package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Every JSON answer has a Content-Length, short or long, so it is never
// chunked and a proxy in front never flushes it write by write.
func TestWriteRawJSONHasContentLength(t *testing.T) {
	for _, n := range []int{2, autoContentLength - 1, autoContentLength, 64 << 10} {
		body := []byte(`"` + strings.Repeat("x", n-2) + `"`)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteRawJSON(w, http.StatusOK, body)
		}))
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.ContentLength != int64(n) || len(resp.TransferEncoding) > 0 || len(got) != n {
			t.Errorf("%d-byte body: Content-Length %d, Transfer-Encoding %v, read %d bytes", n, resp.ContentLength, resp.TransferEncoding, len(got))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%d-byte body: Content-Type %q, nosniff %q", n, ct, resp.Header.Get("X-Content-Type-Options"))
		}
	}
}
