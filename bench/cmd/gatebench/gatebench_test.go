package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// Without -before-bin a full run leaves the *-before rows out and says so;
// naming one in -rows, or pointing -before-bin at a directory without the
// services, is refused before anything starts.
func TestBeforeRows(t *testing.T) {
	var stderr bytes.Buffer
	all := selectRows(config{}, &stderr)
	for _, r := range all {
		if r.Before {
			t.Errorf("row %s selected without -before-bin", r.ID)
		}
	}
	if !strings.Contains(stderr.String(), "list50-before left out") || !strings.Contains(stderr.String(), "create-before left out") {
		t.Errorf("stderr %q does not say the before rows were left out", stderr.String())
	}
	if got := selectRows(config{BeforeBin: "x"}, io.Discard); len(got) != len(rows) {
		t.Errorf("with -before-bin, %d of %d rows selected", len(got), len(rows))
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-rows", "list50-before"}, "need -before-bin"},
		{[]string{"-rows", "create-before", "-before-bin", t.TempDir()}, "proxy: stat"},
	} {
		err := run(context.Background(), append(tt.args, "-out", ""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}

// The full-stack targets are judged against the *-before rows of the same
// run, repetition by repetition, and name the commit those ran.
func TestBeforeTargets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "REV"), []byte("abc1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every run's proxy costs 100 µs: the CPU ratio must count the rest too.
	res := func(rps, cpu float64) runResult {
		return runResult{RPS: rps, ProxyCPUus: 100, OtherCPUus: cpu - 100, Wrk: wrkResult{Requests: 1}}
	}
	var sel []row
	for _, id := range []string{"list50", "create", "list50-before", "create-before"} {
		r, _ := rowByID(id)
		sel = append(sel, r)
	}
	results := map[string][]runResult{
		// list50: 2.6× and 2.4× in the two repetitions, 3.0× the third: median 2.6, PASS.
		"list50":        {res(2600, 300), res(2400, 300), res(3000, 300)},
		"list50-before": {res(1000, 600), res(1000, 600), res(1000, 600)},
		// create: 2.0×, 1.9× and 1.5× by repetition (median 1.9, MISS),
		// though the ratio of the medians, 2000 over 1000, would pass.
		"create":        {res(2000, 400), res(1900, 400), res(3000, 400)},
		"create-before": {res(1000, 500), res(1000, 500), res(2000, 500)},
	}
	rep := buildReport(config{BeforeBin: dir}, sel, results, nil)
	got := map[string]target{}
	for _, tg := range rep.Targets {
		if f := strings.Fields(tg.Name); len(f) > 1 && f[1] == "≥" {
			got[f[0]] = tg
		}
	}
	if tg := got["list50"]; tg.Verdict != "PASS" || tg.Value != 2.6 || !strings.Contains(tg.Name, "abc1234") || !strings.Contains(tg.Measured, "CPU per request 0.50×") {
		t.Errorf("list50 target %+v: want PASS at 2.6×, CPU 0.50×, naming abc1234", tg)
	}
	if tg := got["create"]; tg.Verdict != "MISS" || math.Abs(tg.Value-1.9) > 1e-9 {
		t.Errorf("create target %+v: want MISS at 1.9× (the median of per-repetition ratios)", tg)
	}
}

// Two children with one name: childByComm finds each once the other is
// excluded (the *-before rows' Postgres is not the first stack's).
func TestChildByCommExcludes(t *testing.T) {
	var pids []int
	for range 2 {
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		pids = append(pids, cmd.Process.Pid)
	}
	first, err := childByComm("sleep")
	if err != nil || !slices.Contains(pids, first) {
		t.Fatalf("childByComm(sleep) = %d, %v; want one of %v", first, err, pids)
	}
	second, err := childByComm("sleep", first)
	if err != nil || second == first || !slices.Contains(pids, second) {
		t.Fatalf("childByComm(sleep, %d) = %d, %v; want the other of %v", first, second, err, pids)
	}
	if _, err := childByComm("sleep", pids...); err == nil {
		t.Errorf("childByComm(sleep, both) found a third")
	}
}

// The floor line adds hs256's proxy and upstream CPU to list50's Postgres
// share, and is left out when either row did not run.
func TestFloorLine(t *testing.T) {
	hs := rowSummary{ID: "hs256", RPS: stat{N: 1}, ProxyCPU: stat{Median: 100, N: 1}, OtherCPU: stat{Median: 50, N: 1}}
	list := rowSummary{ID: "list50", RPS: stat{N: 1}, Parts: map[string]stat{"postgres": {Median: 110, N: 1}}}
	got := floorLine([]rowSummary{hs, list})
	if !strings.Contains(got, "costs 150 µs of CPU (proxy 100, upstream 50)") || !strings.Contains(got, "(110 µs) that is 260 µs") {
		t.Errorf("floorLine = %q", got)
	}
	if got := floorLine([]rowSummary{list}); got != "" {
		t.Errorf("without hs256: %q, want nothing", got)
	}
}

// Odd repetitions run each *-before row just before its row; even ones
// keep table order; rows without a before twin never move.
func TestOrderFor(t *testing.T) {
	var sel []row
	for _, id := range []string{"bare", "list50", "list50-before", "fastapi-seed", "create", "create-before", "signin"} {
		r, ok := rowByID(id)
		if !ok {
			t.Fatalf("no row %s", id)
		}
		sel = append(sel, r)
	}
	ids := func(rs []row) string {
		var s []string
		for _, r := range rs {
			s = append(s, r.ID)
		}
		return strings.Join(s, ",")
	}
	if got := ids(orderFor(sel, 0)); got != "bare,list50,list50-before,fastapi-seed,create,create-before,signin" {
		t.Errorf("rep 0: %s", got)
	}
	if got := ids(orderFor(sel, 1)); got != "bare,list50-before,list50,fastapi-seed,create-before,create,signin" {
		t.Errorf("rep 1: %s", got)
	}
	if got := ids(sel); got != "bare,list50,list50-before,fastapi-seed,create,create-before,signin" {
		t.Errorf("orderFor changed its argument: %s", got)
	}
}

// A *-before row's proxy, token and binaries come from the before stack.
func TestBeforeRowsUseTheBeforeStack(t *testing.T) {
	e := &env{stack: &stack{bin: "now", listToken: "now-list", writerToken: "now-writer"},
		before: &stack{bin: "then", listToken: "then-list", writerToken: "then-writer"}}
	for _, tt := range []struct {
		id, bin, auth string
	}{
		{"list50", "now", "Bearer now-list"},
		{"list50-before", "then", "Bearer then-list"},
		{"create", "now", "Bearer now-writer"},
		{"create-before", "then", "Bearer then-writer"},
	} {
		r, _ := rowByID(tt.id)
		if got := e.stackFor(r).bin; got != tt.bin {
			t.Errorf("%s runs on the %q stack, want %q", tt.id, got, tt.bin)
		}
		if got := r.load(e, r).Headers["Authorization"]; got != tt.auth {
			t.Errorf("%s sends %q, want %q", tt.id, got, tt.auth)
		}
	}
}
