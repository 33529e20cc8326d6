package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// counted is an upstream that counts the connections it accepted.
func counted(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// fallback records what it was handed and refuses it.
type fallback struct{ got []string }

var errFallback = errors.New("fallback")

func (f *fallback) RoundTrip(r *http.Request) (*http.Response, error) {
	f.got = append(f.got, r.Method+" "+r.URL.String())
	return nil, errFallback
}

func newTransport(t *testing.T) *Transport {
	tr := &Transport{Fallback: &fallback{}}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// idle counts the pool's kept-alive connections.
func idle(tr *Transport) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, cs := range tr.idle {
		n += len(cs)
	}
	return n
}

func get(t *testing.T, tr http.RoundTripper, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

func TestReusesOneConnection(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("part one, "))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("hello"))
		}
	})
	tr := newTransport(t)
	for i := 0; i < 10; i++ {
		if code, b := get(t, tr, "GET", srv.URL+"/"); code != 200 || b != "hello" {
			t.Fatalf("GET /: %d %q", code, b)
		}
		if code, b := get(t, tr, "GET", srv.URL+"/chunked"); code != 200 || b != "part one, part two" {
			t.Fatalf("GET /chunked: %d %q", code, b)
		}
		if code, b := get(t, tr, "HEAD", srv.URL+"/"); code != 200 || b != "" {
			t.Fatalf("HEAD /: %d %q", code, b)
		}
		if code, b := get(t, tr, "GET", srv.URL+"/empty"); code != 204 || b != "" {
			t.Fatalf("GET /empty: %d %q", code, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("40 requests one after another opened %d connections, want 1", n)
	}
}

// Many requests at once on a small pool, some bodies abandoned half read:
// every answer reaches the request it belongs to.
func TestConcurrentAnswersNeverCross(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := strings.Repeat(id+";", n)
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		io.WriteString(w, body)
	})
	tr := newTransport(t)
	tr.MaxIdleConns = 4
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				n := 1 + (g*31+i*17)%2000
				chunked := ""
				if i%3 == 0 {
					chunked = "&chunked=1"
				}
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/?id=%s&n=%d%s", srv.URL, id, n, chunked), nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				var b []byte
				if i%5 == 4 {
					b = make([]byte, 3)
					_, err = io.ReadFull(resp.Body, b) // abandon the rest
				} else {
					b, err = io.ReadAll(resp.Body)
				}
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				if want := strings.Repeat(id+";", n); !strings.HasPrefix(want, string(b)) || (i%5 != 4 && len(b) != len(want)) {
					errs <- fmt.Errorf("request %s got %.40q…", id, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("3200 requests on %d connections", conns.Load())
}

// rawUpstream answers each request on a connection with the next of
// answers (written as given), then leaves the connection open.
func rawUpstream(t *testing.T, answer func(i int, c net.Conn)) (url string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int64{}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		var open []net.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open = append(open, c)
			n := int(conns.Add(1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				br := bufio.NewReader(c)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					answer(n, c)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), conns
}

// An upstream that sends more than its answer declared, in the same
// packet or later while the connection is idle, does not get those bytes
// read as the answer to the next request.
func TestUnaskedBytesAreNeverAnAnswer(t *testing.T) {
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen"
	// Answers that must have no body, sent with one.
	for name, answer := range map[string]struct{ method, text string }{
		"HEAD": {"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 44\r\n\r\n" + smuggled},
		"204":  {"GET", "HTTP/1.1 204 No Content\r\n\r\n" + smuggled},
		"304":  {"GET", "HTTP/1.1 304 Not Modified\r\n\r\n" + smuggled},
	} {
		t.Run(name, func(t *testing.T) {
			url, conns := rawUpstream(t, func(n int, c net.Conn) {
				if n == 1 {
					io.WriteString(c, answer.text)
				} else {
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn%d", n)
				}
			})
			tr := newTransport(t)
			get(t, tr, answer.method, url)
			time.Sleep(50 * time.Millisecond)
			if _, b := get(t, tr, "GET", url); b != "conn2" {
				t.Fatalf("second request read %q, want a new connection's answer conn2", b)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections, want 2", n)
			}
		})
	}
	for _, later := range []bool{false, true} {
		t.Run(fmt.Sprintf("later=%v", later), func(t *testing.T) {
			url, conns := rawUpstream(t, func(n int, c net.Conn) {
				answer := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn%d", n)
				if later {
					io.WriteString(c, answer)
					time.Sleep(50 * time.Millisecond)
					io.WriteString(c, smuggled)
				} else {
					io.WriteString(c, answer+smuggled)
				}
			})
			tr := newTransport(t)
			if _, b := get(t, tr, "GET", url); b != "conn1" {
				t.Fatalf("first answer %q", b)
			}
			time.Sleep(100 * time.Millisecond)
			if _, b := get(t, tr, "GET", url); b != "conn2" {
				t.Fatalf("second request read %q, want a new connection's answer conn2", b)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections, want 2", n)
			}
		})
	}
}

// hidden hides the socket, so the pool cannot peek at it.
type hidden struct{ net.Conn }

// blinded shows the pool's peek a socket that stays open and silent
// instead of its own: the peek finds nothing wrong, as when the upstream
// closes just after it.
type blinded struct {
	net.Conn
	decoy syscall.Conn
}

func (b blinded) SyscallConn() (syscall.RawConn, error) { return b.decoy.SyscallConn() }

// blindDial dials connections the pool keeps but cannot see into.
func blindDial(t *testing.T) func(ctx context.Context, network, addr string) (net.Conn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	decoy, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { decoy.Close() })
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return blinded{c, decoy.(syscall.Conn)}, nil
	}
}

// A kept-alive connection the upstream closed is replaced: found by the
// peek, or, where the pool cannot peek, by retrying the GET once.
func TestClosedIdleConnectionIsReplaced(t *testing.T) {
	for _, peek := range []bool{true, false} {
		t.Run(fmt.Sprintf("peek=%v", peek), func(t *testing.T) {
			url, _ := rawUpstream(t, func(n int, c net.Conn) {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn%d", n)
				c.Close() // without saying Connection: close
			})
			tr := newTransport(t)
			if !peek {
				tr.Dial = blindDial(t) // kept, written to, found closed: retried
			}
			for i := 1; i <= 3; i++ {
				time.Sleep(50 * time.Millisecond) // the close arrives
				if _, b := get(t, tr, "GET", url); b != fmt.Sprintf("conn%d", i) {
					t.Fatalf("request %d: %q", i, b)
				}
			}
		})
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	url, _ := rawUpstream(t, func(int, net.Conn) {}) // never answers
	tr := newTransport(t)
	tr.ResponseHeaderTimeout = 100 * time.Millisecond
	req, _ := http.NewRequest("GET", url, nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timed out after %v", d)
	}
}

// The header timeout ends with the header: a slow body is not cut.
func TestHeaderTimeoutSparesTheBody(t *testing.T) {
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first "))
		w.(http.Flusher).Flush()
		time.Sleep(1500 * time.Millisecond)
		w.Write([]byte("second"))
	})
	tr := newTransport(t)
	tr.ResponseHeaderTimeout = 500 * time.Millisecond // the header comes at once, even on a loaded machine
	if _, b := get(t, tr, "GET", srv.URL); b != "first second" {
		t.Fatalf("body %q", b)
	}
}

func TestCanceledRequestEndsAndDropsItsConnection(t *testing.T) {
	release := make(chan struct{})
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/stream":
			w.Write([]byte("start"))
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			w.Write([]byte("ok"))
		}
	})
	defer close(release)
	tr := newTransport(t)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/hang", nil)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting for the header: got %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	if b, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading the body after cancel: %q, %v; want context.Canceled", b, err)
	}
	resp.Body.Close()

	get(t, tr, "GET", srv.URL+"/")
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3: a canceled request's connection is not kept", n)
	}
}

func TestAbandonedBodyDropsItsConnection(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 10000)))
	})
	tr := newTransport(t)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 10))
	resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close succeeded")
	}
	get(t, tr, "GET", srv.URL)
	get(t, tr, "GET", srv.URL)
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestConnectionCloseIsHonoured(t *testing.T) {
	for name, answer := range map[string]string{
		"close":     "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
		"http1.0":   "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"no length": "HTTP/1.1 200 OK\r\n\r\nok",
	} {
		t.Run(name, func(t *testing.T) {
			url, conns := rawUpstream(t, func(_ int, c net.Conn) {
				io.WriteString(c, answer)
				c.Close()
			})
			tr := newTransport(t)
			tr.Dial = blindDial(t) // the peek sees nothing: only the answer's own words keep it out of the pool
			for i := 0; i < 3; i++ {
				if _, b := get(t, tr, "GET", url); b != "ok" {
					t.Fatalf("body %q", b)
				}
				if n := idle(tr); n != 0 {
					t.Fatalf("%d connections kept after an answer that ends its connection", n)
				}
			}
			if n := conns.Load(); n != 3 {
				t.Fatalf("%d connections, want 3", n)
			}
		})
	}
}

func TestHeaderBudget(t *testing.T) {
	big := strings.Repeat("a", 4096)
	url, _ := rawUpstream(t, func(_ int, c net.Conn) {
		w := bufio.NewWriter(c)
		w.WriteString("HTTP/1.1 200 OK\r\n")
		for i := 0; i < 300; i++ { // 1.2 MB of header
			fmt.Fprintf(w, "X-Filler-%d: %s\r\n", i, big)
		}
		w.WriteString("Content-Length: 0\r\n\r\n")
		w.Flush()
	})
	tr := newTransport(t)
	req, _ := http.NewRequest("GET", url, nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("got %v, want errHeaderTooLarge", err)
	}
	tr.MaxResponseHeaderBytes = 2 << 20
	if code, _ := get(t, tr, "GET", url); code != 200 {
		t.Fatalf("with a 2 MiB budget: %d", code)
	}
}

func TestInformationalAnswersReachTheTrace(t *testing.T) {
	url, _ := rawUpstream(t, func(_ int, c net.Conn) {
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n"+
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	tr := newTransport(t)
	var got []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" || len(got) != 1 || got[0] != "103 </app.css>; rel=preload" {
		t.Fatalf("final %d %q, 1xx seen %q", resp.StatusCode, b, got)
	}
}

func TestUnaskedUpgradeIsAnError(t *testing.T) {
	url, _ := rawUpstream(t, func(_ int, c net.Conn) {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	})
	req, _ := http.NewRequest("GET", url, nil)
	if _, err := newTransport(t).RoundTrip(req); err == nil {
		t.Fatal("a 101 to a plain GET was accepted")
	}
}

func TestOthersGoToFallback(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {})
	tr := newTransport(t)
	fb := tr.Fallback.(*fallback)
	reqs := []*http.Request{}
	add := func(r *http.Request, err error) *http.Request {
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
		return r
	}
	add(http.NewRequest("POST", srv.URL+"/unknown-length", io.MultiReader(strings.NewReader("body"))))
	add(http.NewRequest("POST", srv.URL+"/large", strings.NewReader(strings.Repeat("x", MaxBody+1))))
	add(http.NewRequest("POST", srv.URL+"/expect", strings.NewReader("body"))).Header.Set("Expect", "100-continue")
	add(http.NewRequest("CONNECT", srv.URL+"/connect", nil))
	add(http.NewRequest("GET", strings.Replace(srv.URL, "http:", "https:", 1)+"/tls", nil))
	add(http.NewRequest("GET", srv.URL+"/upgrade", nil)).Header.Set("Upgrade", "websocket")
	add(http.NewRequest("GET", srv.URL+"/bad-value", nil)).Header["X-Bad"] = []string{"a\r\nX-Injected: 1"}
	add(http.NewRequest("GET", srv.URL+"/bad-name", nil)).Header["X Bad"] = []string{"1"}
	add(http.NewRequest("GET", srv.URL+"/close", nil)).Close = true
	for _, r := range reqs {
		if _, err := tr.RoundTrip(r); !errors.Is(err, errFallback) {
			t.Errorf("%s %s: %v, want the fallback's error", r.Method, r.URL.Path, err)
		}
	}
	if len(fb.got) != len(reqs) || conns.Load() != 0 {
		t.Fatalf("fallback got %d of %d requests; the pool opened %d connections", len(fb.got), len(reqs), conns.Load())
	}
}

func TestIdleLimits(t *testing.T) {
	release := make(chan struct{})
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-release
		}
		w.Write([]byte("ok"))
	})
	tr := newTransport(t)
	tr.MaxIdleConns = 2
	tr.IdleConnTimeout = 200 * time.Millisecond

	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); get(t, tr, "GET", srv.URL+"/wait") }()
	}
	for conns.Load() < 5 {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if kept := idle(tr); kept != 2 {
		t.Fatalf("%d idle connections kept, want MaxIdleConns 2", kept)
	}
	time.Sleep(300 * time.Millisecond)
	get(t, tr, "GET", srv.URL)
	if n := conns.Load(); n != 6 {
		t.Fatalf("%d connections, want 6: none idle past IdleConnTimeout is reused", n)
	}
}

// A small body of declared length is written here, on the kept-alive
// connection; a body that breaks off fails the request and its connection,
// and a request with a body is never sent twice.
func TestSmallBodies(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("Content-Length"), b)
	})
	tr := newTransport(t)
	// A slow upload (slowReader: 1 s) must not count against it; the
	// answers themselves come in far less on a loaded machine too.
	tr.ResponseHeaderTimeout = 500 * time.Millisecond
	roundTrip := func(method string, body io.Reader, n int64) (string, error) {
		req, err := http.NewRequest(method, srv.URL, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = n
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	full := strings.Repeat("y", MaxBody)
	for _, c := range []struct{ method, body, want string }{
		{"POST", `{"title":"a"}`, `POST 13 {"title":"a"}`},
		{"PUT", "x", "PUT 1 x"},
		{"PATCH", full, fmt.Sprintf("PATCH %d %s", MaxBody, full)},
		{"DELETE", "", "DELETE  "},
		{"POST", "", "POST 0 "},
	} {
		got, err := roundTrip(c.method, strings.NewReader(c.body), int64(len(c.body)))
		if err != nil || got != c.want {
			t.Fatalf("%s: %.40q, %v; want %.40q", c.method, got, err, c.want)
		}
	}
	// A slow upload does not count against the response header timeout.
	got, err := roundTrip("POST", slowReader{strings.NewReader("slow")}, 4)
	if err != nil || got != "POST 4 slow" {
		t.Fatalf("slow upload: %q, %v", got, err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for six requests one after another, want 1", n)
	}
	// A body that breaks off fails before any connection is used.
	if _, err := roundTrip("POST", strings.NewReader("short"), 10); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a body shorter than its Content-Length: %v, want io.ErrUnexpectedEOF", err)
	}
	if got, err := roundTrip("PUT", strings.NewReader("after"), 5); err != nil || got != "PUT 5 after" || conns.Load() != 1 {
		t.Fatalf("after a broken body: %q, %v, %d connections", got, err, conns.Load())
	}

	// The upstream closes each connection after one answer, unannounced:
	// a POST on the stale connection fails rather than being sent again.
	url, upConns := rawUpstream(t, func(n int, c net.Conn) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nconn%d", n)
		c.Close()
	})
	tr = newTransport(t)
	tr.Dial = blindDial(t) // the stale connection is kept and written to
	post := func() error {
		req, _ := http.NewRequest("POST", url, strings.NewReader("once"))
		resp, err := tr.RoundTrip(req)
		if err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		return err
	}
	if err := post(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := post(); err == nil {
		t.Fatal("a POST on a connection the upstream had closed succeeded: it was sent again")
	}
	time.Sleep(100 * time.Millisecond) // a second connection, had there been one, is accepted
	if n := upConns.Load(); n != 1 {
		t.Fatalf("the upstream saw %d connections, want 1", n)
	}
}

// slowReader takes its time over each read, like a client on a slow link.
type slowReader struct{ io.Reader }

func (r slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Second)
	return r.Reader.Read(p)
}

// An upstream may answer a request before reading its body, and close: the
// answer is passed on, not a 502 for the write that failed.
func TestEarlyAnswerToABody(t *testing.T) {
	url, _ := rawUpstream(t, func(_ int, c net.Conn) {
		io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 4\r\n\r\nnope")
		c.(*net.TCPConn).SetLinger(0) // unread body: a reset, as a busy server sends
		c.Close()
	})
	tr := newTransport(t)
	for i := 0; i < 20; i++ {
		req, _ := http.NewRequest("POST", url, strings.NewReader(strings.Repeat("z", MaxBody)))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("round %d: %v, want the upstream's 401", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || string(b) != "nope" {
			t.Fatalf("round %d: %d %q", i, resp.StatusCode, b)
		}
	}
}

func TestUnpeekableConnectionsAreNotKept(t *testing.T) {
	srv, conns := counted(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	tr := newTransport(t)
	tr.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return hidden{c}, err
	}
	get(t, tr, "GET", srv.URL)
	get(t, tr, "GET", srv.URL)
	if n, kept := conns.Load(), idle(tr); n != 2 || kept != 0 {
		t.Fatalf("%d connections, %d kept; want 2 and 0", n, kept)
	}
}

// Close may run while a Read waits: it ends that Read.
func TestCloseEndsABlockedRead(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv, _ := counted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("start"))
		w.(http.Flusher).Flush()
		<-release
	})
	tr := newTransport(t)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	resp.Body.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the blocked Read ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the blocked Read")
	}
	if n := idle(tr); n != 0 {
		t.Fatalf("%d connections kept", n)
	}
}

// Idle connections go after IdleConnTimeout even when no request comes.
func TestIdleConnectionsAreSwept(t *testing.T) {
	var closed atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tr := newTransport(t)
	tr.IdleConnTimeout = 100 * time.Millisecond
	get(t, tr, "GET", srv.URL)
	if n := idle(tr); n != 1 {
		t.Fatalf("%d kept after one request, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := idle(tr); n != 0 || closed.Load() != 1 {
		t.Fatalf("after the idle timeout: %d kept, %d closed at the upstream", n, closed.Load())
	}
}
