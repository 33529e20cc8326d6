package e2e

// Helpers for the reliability and soak tests: raw process control, metrics
// and /proc readings, a load generator whose every acknowledged write is
// remembered, and the check that those writes are all still there.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Pid is the running process's id, or 0.
func (p *Proc) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Alive reports whether the process has not exited (without consuming the
// exit status that Stop waits for).
func (p *Proc) Alive() bool { return p.cmd != nil && len(p.done) == 0 }

// Terminate sends SIGTERM and returns at once.
func (p *Proc) Terminate() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }

// WaitExit waits up to d for the process to exit and returns its exit error
// (nil for status 0). The process counts as stopped afterwards, so Restart
// may start it again.
func (p *Proc) WaitExit(d time.Duration) (err error, exited bool) {
	select {
	case err = <-p.done:
		p.cmd = nil
		return err, true
	case <-time.After(d):
		return nil, false
	}
}

// httpClient is a bounded client: no test request may hang past timeout.
func httpClient(timeout time.Duration, conns int) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns,
			IdleConnTimeout: 30 * time.Second, DisableCompression: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// call sends one request and reads the whole answer; err is a transport error.
func call(c *http.Client, method, url, bearer, body string, headers ...string) (Resp, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return Resp{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return Resp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Resp{resp.StatusCode, resp.Header, b}, err
}

// signedUpBearer signs a new user up through the proxy and returns a JWT
// for it.
func signedUpBearer(t testing.TB, s *Stack, email string) string {
	t.Helper()
	u := s.NewUser(t)
	u.SignUp(email, pw)
	return u.Token()
}

// scrape reads a Prometheus text endpoint into "name{labels}" → value.
func scrape(addr string) (map[string]float64, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: status %d", addr, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// metric scrapes one series, failing the test when it cannot.
func metric(t testing.TB, addr, series string) float64 {
	t.Helper()
	m, err := scrape(addr)
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	v, ok := m[series]
	if !ok {
		t.Fatalf("metrics at %s have no series %s", addr, series)
	}
	return v
}

// fdCount is the number of open file descriptors of pid (sockets, files,
// pipes), from /proc/<pid>/fd.
func fdCount(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// socketCount is the number of open sockets of pid.
func socketCount(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// rssKiB is VmRSS of pid from /proc/<pid>/status, in KiB.
func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

// pollUntil calls ok every interval until it returns true or max passes,
// and returns how long that took and whether it succeeded.
func pollUntil(max, interval time.Duration, ok func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if ok() {
			return time.Since(start), true
		}
		if time.Since(start) > max {
			return time.Since(start), false
		}
		time.Sleep(interval)
	}
}

// writeLoad creates todos through the proxy from a few goroutines, each with
// a unique title, and remembers every one acknowledged with 201.
type writeLoad struct {
	url, bearer string
	client      *http.Client

	mu       sync.Mutex
	acked    map[string]int64 // title → id
	statuses map[int]int      // status → count; 0 is a transport error
	codes    map[string]int   // "status CODE" → count, for the report
	slowest  map[int]time.Duration
	lastErr  map[int]string
	seq      atomic.Int64

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func startWriteLoad(url, bearer string, writers int, pause time.Duration) *writeLoad {
	w := &writeLoad{
		url: url, bearer: bearer, client: httpClient(15*time.Second, writers),
		acked: map[string]int64{}, statuses: map[int]int{}, codes: map[string]int{},
		slowest: map[int]time.Duration{}, lastErr: map[int]string{}, stop: make(chan struct{}),
	}
	for g := 0; g < writers; g++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for i := 0; i < 100_000; i++ { // bounded; stop ends it long before
				select {
				case <-w.stop:
					return
				default:
				}
				w.one()
				time.Sleep(pause)
			}
		}()
	}
	return w
}

func (w *writeLoad) one() {
	title := fmt.Sprintf("w-%d", w.seq.Add(1))
	start := time.Now()
	r, err := call(w.client, "POST", w.url+"/api/v1/todos", w.bearer, fmt.Sprintf(`{"title":%q}`, title))
	d := time.Since(start)
	w.mu.Lock()
	defer w.mu.Unlock()
	st := r.Status
	if err != nil {
		st = 0
		w.lastErr[0] = err.Error()
	}
	w.statuses[st]++
	w.codes[fmt.Sprintf("%d %s", st, r.Code())]++
	w.slowest[st] = max(w.slowest[st], d)
	if st == http.StatusCreated {
		var td Todo
		if json.Unmarshal(r.Body, &td) != nil || td.ID == 0 {
			w.lastErr[st] = "201 without a todo: " + string(r.Body)
			return
		}
		w.acked[title] = td.ID
	} else if st != 0 {
		w.lastErr[st] = string(r.Body)
	}
}

// Stop ends the load and waits for the writers.
func (w *writeLoad) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

// count returns how many answers had status st so far.
func (w *writeLoad) count(st int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.statuses[st]
}

func (w *writeLoad) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []string
	for k := range w.codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		st, _ := strconv.Atoi(strings.Fields(k)[0])
		fmt.Fprintf(&b, "[%s: %d, slowest %v] ", k, w.codes[k], w.slowest[st].Round(time.Millisecond))
	}
	return b.String()
}

// allTodos pages through every todo of bearer's user.
func allTodos(t testing.TB, url, bearer string) []Todo {
	t.Helper()
	c := httpClient(15*time.Second, 1)
	var all []Todo
	after := int64(0)
	for page := 0; page < 10_000; page++ {
		r, err := call(c, "GET", fmt.Sprintf("%s/api/v1/todos?limit=100&after=%d", url, after), bearer, "")
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("list todos after %d: %v %s", after, err, r)
		}
		var list []Todo
		r.JSON(t, &list)
		all = append(all, list...)
		if len(list) < 100 || r.Header.Get("Link") == "" {
			return all
		}
		after = list[len(list)-1].ID
	}
	t.Fatalf("more than a million todos?")
	return nil
}

// checkAcked verifies that every acknowledged write is stored exactly once
// under its id, and that no title (acknowledged or not) is stored twice.
// It returns acked, lost and duplicated counts.
func (w *writeLoad) checkAcked(t testing.TB) (acked, lost, dup int) {
	t.Helper()
	all := allTodos(t, w.url, w.bearer)
	byTitle := map[string][]int64{}
	for _, td := range all {
		byTitle[td.Title] = append(byTitle[td.Title], td.ID)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for title, id := range w.acked {
		ids := byTitle[title]
		if len(ids) == 0 || ids[0] != id {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged todo %q (id %d) missing; stored ids %v", title, id, ids)
			}
		}
	}
	for title, ids := range byTitle {
		if len(ids) > 1 {
			dup++
			if dup <= 5 {
				t.Errorf("todo %q stored %d times: %v", title, len(ids), ids)
			}
		}
	}
	return len(w.acked), lost, dup
}

// ctxT is a context that ends with the test's deadline or after d.
func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
