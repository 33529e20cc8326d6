package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Slowloris: 500 connections sending a request head one byte at a time must
// not stop a normal client from being served. Bounded to ~12 s.
func TestAttackSlowloris(t *testing.T) {
	t.Parallel()
	s := StartStack(t, Options{RecordBackend: true})
	u := s.NewUser(t)
	u.SignUp("patient@example.com", pw)
	u.Bearer = u.Token()
	addr := hostOf(s.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Second)
	defer cancel()
	const conns = 500
	var opened, closedByServer atomic.Int64
	var wg sync.WaitGroup
	head := fmt.Sprintf("GET /api/v1/todos?slowloris HTTP/1.1\r\nHost: %s\r\nX-Pad: ", addr)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 2 * time.Second}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			opened.Add(1)
			go func() { <-ctx.Done(); c.Close() }()
			for j := 0; ctx.Err() == nil; j++ {
				b := head[j%len(head)]
				if j >= len(head) {
					b = 'a'
				}
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Write([]byte{b}); err != nil {
					if ctx.Err() == nil {
						closedByServer.Add(1)
					}
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}
	// Let the slow connections pile up, then be a normal client.
	time.Sleep(2 * time.Second)
	client := &http.Client{Timeout: 3 * time.Second}
	for i := 0; i < 3; i++ {
		start := time.Now()
		req, _ := http.NewRequest("GET", s.URL+"/api/v1/todos", nil)
		req.Header.Set("Authorization", "Bearer "+u.Bearer)
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("normal request %d during the slowloris (%d connections open): %v", i+1, opened.Load(), err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("normal request %d during the slowloris: %d", i+1, resp.StatusCode)
			}
			t.Logf("normal request %d with %d slow connections: %d in %v", i+1, opened.Load(), resp.StatusCode, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(time.Second)
	}
	cancel()
	wg.Wait()
	if opened.Load() < conns*9/10 {
		t.Errorf("only %d of %d slow connections opened", opened.Load(), conns)
	}
	t.Logf("%d slow connections opened, %d closed by the server before the test ended (ReadHeaderTimeout)", opened.Load(), closedByServer.Load())
	if got := s.Seen.Find("", "slowloris"); len(got) > 0 {
		t.Errorf("an incomplete request head reached the backend: %v", got[0].RawHeader)
	}
}
