package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseHandler sends n events, one every gap, flushing each.
func sseHandler(n int, gap time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for i := range n {
			if _, err := fmt.Fprintf(w, "data: event %d\n\n", i); err != nil {
				return
			}
			_ = rc.Flush()
			select {
			case <-time.After(gap):
			case <-r.Context().Done():
				return
			}
		}
	}
}

// readEvents reads data lines until the stream ends, noting when each
// arrived.
func readEvents(t *testing.T, h *harness, path, tok string) (events []string, at []time.Duration, err error) {
	t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data: ") {
			events = append(events, strings.TrimPrefix(line, "data: "))
			at = append(at, time.Since(start))
		}
	}
	return events, at, sc.Err()
}

// TestEventStreamOutlivesWriteTimeout: on a route with a long timeout, an
// event stream runs past the server's WriteTimeout (1 s here, standing in
// for the 90 s default) and each event arrives when it is sent, not
// buffered; an ordinary route on the same server is still cut at 1 s.
func TestEventStreamOutlivesWriteTimeout(t *testing.T) {
	t.Parallel() // seconds of waiting on a timer, not CPU
	h := newHarness(t, harnessOpt{routes: routesYAML(""), writeTimeout: time.Second})
	const n, gap = 8, 300 * time.Millisecond // 2.4 s of events
	h.backend.setHandler(sseHandler(n, gap))
	tok := h.token("EdDSA", "u-sse")

	events, at, err := readEvents(t, h, "/events/stream", tok)
	if err != nil {
		t.Fatalf("stream broke after %d events: %v", len(events), err)
	}
	if len(events) != n {
		t.Fatalf("got %d events, want %d", len(events), n)
	}
	if last := at[n-1]; last < 2*time.Second {
		t.Errorf("last event at %v: the stream should have lasted about %v", last, time.Duration(n-1)*gap)
	}
	// One by one, not buffered to the end: the events spread over most of
	// the stream's life, and most arrive apart (a busy machine may bunch a
	// few, so not all are required to).
	if spread := at[n-1] - at[0]; spread < time.Duration(n-1)*gap/2 {
		t.Errorf("events arrived within %v of each other: buffered, want spread over about %v", spread, time.Duration(n-1)*gap)
	}
	apart := 0
	for i := 1; i < n; i++ {
		if at[i]-at[i-1] >= gap/3 {
			apart++
		}
	}
	if apart < (n-1)/2 {
		t.Errorf("only %d of %d events arrived apart from the previous one; arrivals %v", apart, n-1, at)
	}

	// Control: the same stream on an ordinary route is cut by the 1 s
	// WriteTimeout, which is what the long route is spared from.
	events, _, err = readEvents(t, h, "/api/stream", tok)
	if err == nil && len(events) == n {
		t.Errorf("ordinary route streamed all %d events past the 1 s WriteTimeout; the test proves nothing", n)
	}
}

// TestLargeUploadStreams: a request body reaches the upstream while the
// client is still sending it (the proxy does not buffer it), on a long
// route whose deadlines outlast the server's ReadTimeout.
func TestLargeUploadStreams(t *testing.T) {
	h := newHarness(t, harnessOpt{routes: routesYAML("")})
	const chunk = 1 << 20
	firstMiB := make(chan struct{})
	h.backend.setHandler(func(w http.ResponseWriter, r *http.Request) {
		var total int64
		buf := make([]byte, 64<<10)
		signalled := false
		for {
			n, err := r.Body.Read(buf)
			total += int64(n)
			if !signalled && total >= chunk {
				close(firstMiB)
				signalled = true
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "%d", total)
	})
	pr, pw := io.Pipe()
	go func() {
		block := make([]byte, chunk)
		if _, err := pw.Write(block); err != nil {
			return
		}
		select {
		case <-firstMiB: // the upstream has the first MiB while we hold the rest back
		case <-time.After(10 * time.Second):
			pw.CloseWithError(fmt.Errorf("upstream never saw the first MiB: the proxy buffers uploads"))
			return
		}
		for range 7 {
			if _, err := pw.Write(block); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.srv.URL+"/events/upload", pr)
	req.Header.Set("Authorization", "Bearer "+h.token("EdDSA", "u-up"))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != fmt.Sprint(8*chunk) {
		t.Fatalf("status %d, body %q; want 200 and %d bytes received", resp.StatusCode, b, 8*chunk)
	}
}
