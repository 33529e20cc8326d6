package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// idleResult is one run of an idle-connection row: n keep-alive
// connections, each having completed one request, then left open.
type idleResult struct {
	Conns       int   `json:"conns"`
	RSSBefore   int64 `json:"rss_before_bytes"` // VmRSS of the proxy after one request on one connection
	RSSAfter    int64 `json:"rss_after_bytes"`  // VmRSS with all n connections open and idle
	BytesPerCon int64 `json:"rss_bytes_per_conn"`
}

// runIdle opens n connections to base, sends one request of l on each (at
// most 64 at a time, so the upstream side stays a handful of pooled
// connections, as it would for clients that come and go), reads the whole
// response, and keeps every connection open. The proxy's resident memory
// with all of them idle, less what it had before, over n, is its memory per
// idle keep-alive connection: what 10,000 quiet browsers or a busy ingress
// cost it.
func runIdle(ctx context.Context, base string, l load, n int, pids []int) (idleResult, error) {
	res := idleResult{Conns: n}
	u, err := url.Parse(base)
	if err != nil {
		return res, err
	}
	raw := rawRequest(u.Host, l)
	// The first request warms the process (pools, the token cache) so
	// "before" is the server ready to serve, not a cold binary.
	first, err := dialAndRequest(ctx, u.Host, raw)
	if err != nil {
		return res, fmt.Errorf("idle: first connection: %w", err)
	}
	conns := []net.Conn{first}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	if res.RSSBefore, err = rss(pids); err != nil {
		return res, err
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 64)
	)
	for i := 1; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := dialAndRequest(ctx, u.Host, raw)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return res, fmt.Errorf("idle: %d of %d connections failed, first: %w", len(errs), n, errs[0])
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	// Let the server settle (every connection back in its read loop).
	time.Sleep(2 * time.Second)
	if res.RSSAfter, err = rss(pids); err != nil {
		return res, err
	}
	res.BytesPerCon = (res.RSSAfter - res.RSSBefore) / int64(n-1)
	return res, nil
}

// rawRequest is l as HTTP/1.1 bytes on a keep-alive connection.
func rawRequest(host string, l load) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", l.Method, l.Path, host)
	for k, v := range l.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if l.Body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(l.Body))
	}
	b.WriteString("\r\n" + l.Body)
	return []byte(b.String())
}

func dialAndRequest(ctx context.Context, host string, raw []byte) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(raw); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// rss is the sum of VmRSS (resident now, not the peak) over pids.
func rss(pids []int) (int64, error) { return statusSum(pids, "VmRSS:") }

// statusSum adds up one "Name:   123 kB" field of /proc/<pid>/status over
// pids, in bytes.
func statusSum(pids []int, field string) (int64, error) {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			return 0, err
		}
		v, ok := statusField(string(b), field)
		if !ok {
			return 0, fmt.Errorf("%s missing from /proc/%d/status", strings.TrimSuffix(field, ":"), pid)
		}
		total += v
	}
	return total, nil
}

// statusField reads a "Name:   123 kB" line of /proc/<pid>/status, in bytes.
func statusField(status, name string) (int64, bool) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
