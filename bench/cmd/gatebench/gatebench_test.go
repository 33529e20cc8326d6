package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the harness end to end in -quick mode for the rows that
// need no service binaries (direct, bare, nginx): real wrk, real nginx, the
// real upstream and bare proxy. Missing tools are installed when we are
// root; otherwise the test fails saying what to install — it never skips.
func TestQuickRun(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, []string{"-quick", "-d", "1s", "-rows", "direct,bare,nginx,idle-bare", "-idle-conns", "300", "-out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("gatebench -quick: %v\nstderr:\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("latest.json: %v", err)
	}
	if len(rep.Rows) != 4 {
		t.Fatalf("rows = %d, want 4 (direct, bare, nginx, idle-bare)", len(rep.Rows))
	}
	idle := rep.Rows[3]
	if idle.IdleConns != 300 || idle.IdleKiB.N != 1 || idle.IdleKiB.Median <= 0 || idle.RSSAfter.Median <= idle.RSSBefore.Median || idle.Failed > 0 {
		t.Errorf("idle-bare: %d connections, %+v KiB each, RSS %+v → %+v MiB, %d failed: want one run measuring memory that grew",
			idle.IdleConns, idle.IdleKiB, idle.RSSBefore, idle.RSSAfter, idle.Failed)
	}
	for _, r := range rep.Rows[:3] {
		if r.RPS.N != 1 || r.RPS.Median <= 0 || r.P99ms.Median <= 0 || r.Failed > 0 || r.Errors > 0 {
			t.Errorf("row %s: rps %+v p99 %+v failed %d errors %d, want one clean run", r.ID, r.RPS, r.P99ms, r.Failed, r.Errors)
		}
		if r.PeakRSSMiB <= 0 || r.ProxyCPU.Median <= 0 {
			t.Errorf("row %s: peak RSS %.1f MiB, proxy CPU %.1f µs/req: want both measured", r.ID, r.PeakRSSMiB, r.ProxyCPU.Median)
		}
	}
	want := map[string]bool{"bare / direct": false, "nginx / bare": false}
	for _, x := range rep.Ratios {
		if _, ok := want[x.Name]; ok && x.RPS.N == 1 && x.RPS.Median > 0 {
			want[x.Name] = true
		}
	}
	for name, ok := range want {
		if !ok {
			t.Errorf("ratio %q missing from %+v", name, rep.Ratios)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "latest.md"))
	if err != nil || !bytes.Equal(md, stdout.Bytes()) {
		t.Errorf("latest.md differs from the printed table (err %v)", err)
	}
}

func TestSummarize(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []float64
		want stat
	}{
		{"empty has N 0", nil, stat{}},
		{"odd count takes the middle", []float64{3, 1, 2}, stat{Median: 2, Min: 1, Max: 3, N: 3}},
		{"even count averages the middle two", []float64{4, 1, 2, 3}, stat{Median: 2.5, Min: 1, Max: 4, N: 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.in); got != tt.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != os.Getppid() {
		t.Errorf("ppid = %d, want %d", st.ppid, os.Getppid())
	}
	if rss, err := peakRSS([]int{os.Getpid()}); err != nil || rss <= 0 {
		t.Errorf("peakRSS(self) = %d, %v; want > 0", rss, err)
	}
}

func TestFetchProfile(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "p", "cpu.pprof")
	if err := fetchProfile(context.Background(), srv.URL, time.Second, path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("profile %s: %v, want a non-empty file", path, err)
	}
	if err := fetchProfile(context.Background(), srv.URL+"/nothing", time.Second, path); err == nil ||
		!strings.Contains(err.Error(), "PPROF=1") {
		t.Errorf("404 from the proxy: err = %v, want one naming PPROF=1", err)
	}
}

// The experiment flags keep every KEY=VALUE in order and refuse one
// without a key or an '='.
func TestEnvFlags(t *testing.T) {
	c, err := parseFlags([]string{"-proxy-env", "GOGC=50", "-backend-env", "DB_MAX_CONNS=4", "-proxy-env", "A=b=c"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.ProxyEnv, " ") != "GOGC=50 A=b=c" || strings.Join(c.BackendEnv, " ") != "DB_MAX_CONNS=4" {
		t.Errorf("proxy env %q, backend env %q", c.ProxyEnv, c.BackendEnv)
	}
	for _, bad := range [][]string{{"-proxy-env", "GOGC"}, {"-backend-env", "=4"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil || !strings.Contains(err.Error(), "want KEY=VALUE") {
			t.Errorf("%q: error %v, want one saying KEY=VALUE", bad, err)
		}
	}
}
