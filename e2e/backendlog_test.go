package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

// SeenRequest is one request exactly as it arrived at the backend's socket.
type SeenRequest struct {
	Method, URI string
	Header      http.Header // every line, every value (keys canonicalised by ReadRequest)
	RawHeader   []string    // header lines as sent, in order, for spellings
}

// Recorder is a byte-for-byte TCP relay in front of the backend that parses
// (a copy of) every request the proxy sends, so a test can assert what the
// backend saw — not what the proxy claims it sent. Anything the proxy
// forwards, however malformed, is relayed unchanged.
type Recorder struct {
	Addr string
	ln   net.Listener

	mu   sync.Mutex
	reqs []SeenRequest
}

func startRecorder(t testing.TB, target string) *Recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Recorder{Addr: ln.Addr().String(), ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); r.relay(c, target) }()
		}
	}()
	return r
}

func (r *Recorder) relay(client net.Conn, target string) {
	defer client.Close()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		_, _ = io.Copy(client, up)
		client.Close()
	}()
	// Each request head is recorded before it is written to the backend, so
	// by the time the client has an answer the record exists.
	br := bufio.NewReaderSize(client, 128<<10)
	for {
		raw, err := readHead(br)
		if err != nil {
			_, _ = io.WriteString(up, raw)
			break
		}
		req, perr := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		seen := SeenRequest{RawHeader: strings.Split(strings.TrimRight(raw, "\r\n"), "\r\n")}
		if perr == nil {
			seen.Method, seen.URI, seen.Header = req.Method, req.RequestURI, req.Header
		} else {
			seen.Method, seen.URI, seen.Header = "UNPARSABLE", seen.RawHeader[0], http.Header{}
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, seen)
		r.mu.Unlock()
		if _, err := io.WriteString(up, raw); err != nil || perr != nil {
			break
		}
		// The body, relayed with the framing the backend will use.
		switch {
		case slices.Contains(req.TransferEncoding, "chunked"):
			_, err = io.Copy(io.Discard, httputil.NewChunkedReader(io.TeeReader(br, up)))
		case req.ContentLength > 0:
			_, err = io.CopyN(up, br, req.ContentLength)
		}
		if err != nil {
			break
		}
	}
	_, _ = io.Copy(up, br) // whatever is left, unparsed
}

// readHead reads up to and including the blank line that ends a request head.
func readHead(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" || line == "\n" {
			if b.Len() == len(line) { // stray CRLF between requests
				b.Reset()
				continue
			}
			return b.String(), nil
		}
		if b.Len() > 1<<20 {
			return b.String(), errors.New("request head over 1 MiB")
		}
	}
}

// Requests returns a copy of everything the backend received so far, the
// proxy's own /healthz probes excepted.
func (r *Recorder) Requests() []SeenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SeenRequest, 0, len(r.reqs))
	for _, q := range r.reqs {
		if q.URI != "/healthz" {
			out = append(out, q)
		}
	}
	return out
}

// Find returns the requests whose X-Request-Id is rid or whose request
// target contains marker (either may be empty).
func (r *Recorder) Find(rid, marker string) []SeenRequest {
	var out []SeenRequest
	for _, q := range r.Requests() {
		if (rid != "" && slices.Contains(q.Header.Values("X-Request-Id"), rid)) ||
			(marker != "" && strings.Contains(q.URI, marker)) {
			out = append(out, q)
		}
	}
	return out
}

// AssertUnseen fails the test if the backend received the request answered
// by resp (its X-Request-Id) or any request carrying marker.
func (r *Recorder) AssertUnseen(t testing.TB, what string, resp Resp, marker string) {
	t.Helper()
	if got := r.Find(resp.Header.Get("X-Request-Id"), marker); len(got) > 0 {
		t.Errorf("%s: the backend received it (answer %d): %s %s %v", what, resp.Status, got[0].Method, got[0].URI, got[0].RawHeader)
	}
}

// StartProxy starts one more proxy for the same authsvc, backend and Redis
// (as a second replica of the proxy would run) and stops it when the test
// ends.
func (s *Stack) StartProxy(t testing.TB, extraEnv ...string) *Proc {
	t.Helper()
	addr := testenv.FreeAddr(t)
	env := append(slices.Clone(s.Proxy.env), "PROXY_ADDR="+addr) // exec: the last value of a key wins
	p := &Proc{Name: "proxy@" + addr, Addr: addr, bin: s.Proxy.bin, env: append(env, extraEnv...)}
	p.start(t)
	t.Cleanup(func() {
		if err := p.Stop(t); err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", p.Name, err)
		}
		if t.Failed() {
			t.Logf("---- %s logs ----\n%s", p.Name, p.Logs())
		}
	})
	p.WaitReady(t)
	return p
}
