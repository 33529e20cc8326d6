package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// runResult is one measured run of one row.
type runResult struct {
	Rep        int       `json:"rep"`
	Wrk        wrkResult `json:"wrk"`
	RPS        float64   `json:"rps"`
	ProxyCPUus float64   `json:"proxy_cpu_us_per_req"`    // proxyRoots' CPU over the measured run / requests
	OtherCPUus float64   `json:"upstream_cpu_us_per_req"` // otherRoots' likewise
	PeakRSS    int64     `json:"proxy_peak_rss_bytes"`    // VmHWM of proxyRoots' trees, summed (nginx: master + workers)
	// PartsCPUus splits OtherCPUus by process tree (full-stack rows: backend,
	// postgres, authsvc, redis), CPU µs per request each.
	PartsCPUus map[string]float64 `json:"parts_cpu_us_per_req,omitempty"`
	Idle       *idleResult        `json:"idle,omitempty"` // idle-connection rows, instead of Wrk
	Err        string             `json:"error,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	started, loadStart := time.Now(), loadavg()

	selected := selectRows(cfg, stderr)
	needNginx, needStack, needBefore := false, false, false
	var needBins []string
	for _, r := range selected {
		needNginx = needNginx || r.ID == "nginx"
		needStack = needStack || r.Stack && !r.Before
		needBefore = needBefore || r.Before
		if r.Ours {
			needBins = append(needBins, filepath.Join(cfg.Bin, "proxy"))
		}
		if r.Stack && !r.Before {
			needBins = append(needBins, filepath.Join(cfg.Bin, "authsvc"), filepath.Join(cfg.Bin, "backend"))
		}
	}
	if needBefore {
		if cfg.BeforeBin == "" {
			return fmt.Errorf("the *-before rows need -before-bin (make bench builds it with bench/build-before.sh)")
		}
		for _, b := range []string{"proxy", "authsvc", "backend"} {
			needBins = append(needBins, filepath.Join(cfg.BeforeBin, b))
		}
	}
	for _, b := range needBins {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s: %v: run `make build` first, point -bin (or -before-bin) at the binaries, or leave its rows out with -rows", b, err)
		}
	}
	if err := ensureTools(needNginx, cfg.Perf != ""); err != nil {
		return err
	}

	work, err := os.MkdirTemp("", "gatebench-")
	if err != nil {
		return err
	}
	failed := true
	defer func() {
		if cfg.KeepWorkDir || failed {
			fmt.Fprintf(stderr, "gatebench: logs and configs kept in %s\n", work)
			return
		}
		os.RemoveAll(work)
	}()
	e := &env{cfg: cfg, work: work, helpers: filepath.Join(work, "helpers"),
		reused: map[string]string{}, fresh: map[string]string{}}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "gatebench: "+format+"\n", a...) }

	logf("building upstream and bareproxy")
	if err := buildHelpers(e.helpers); err != nil {
		return err
	}
	if e.signer, err = newSigner(); err != nil {
		return err
	}
	if err := e.startUpstream(ctx); err != nil {
		return err
	}
	defer e.upstream.stop()
	for _, alg := range []string{"EdDSA", "HS256"} {
		if e.reused[alg], err = e.signer.token(alg, -1); err != nil {
			return err
		}
	}
	for _, r := range selected {
		if r.Fresh != "" && e.fresh[r.Fresh] == "" {
			logf("signing %d fresh %s tokens", cfg.Tokens, r.Fresh)
			prefix := filepath.Join(work, "tokens-"+r.Fresh)
			if err := e.signer.writeTokens(prefix, r.Fresh, cfg.Tokens, cfg.Threads); err != nil {
				return err
			}
			e.fresh[r.Fresh] = prefix
		}
	}
	if needStack {
		logf("starting Postgres, Redis, authsvc and backend")
		e.stack, err = startStack(ctx, e, cfg.Bin)
		if e.stack != nil {
			defer e.stack.stop()
		}
		if err != nil {
			return fmt.Errorf("full stack: %w", err)
		}
	}
	if needBefore {
		logf("starting a second Postgres, Redis, authsvc and backend from %s", cfg.BeforeBin)
		e.before, err = startStack(ctx, e, cfg.BeforeBin)
		if e.before != nil {
			defer e.before.stop()
		}
		if err != nil {
			return fmt.Errorf("full stack before issue 18: %w", err)
		}
	}

	// Repetitions are interleaved (row 1..n, then again), so slow drift
	// on a shared machine lands on every row alike and pairs stay fair.
	results := map[string][]runResult{}
	var runErrs []error
	for rep := range cfg.Reps {
		for _, r := range orderFor(selected, rep) {
			if err := ctx.Err(); err != nil {
				return err
			}
			res, err := e.runOnce(ctx, r, rep)
			if err != nil {
				res.Err = err.Error()
				runErrs = append(runErrs, fmt.Errorf("%s rep %d: %w", r.ID, rep+1, err))
				logf("%-12s rep %d/%d: FAILED: %v", r.ID, rep+1, cfg.Reps, err)
			} else if res.Idle != nil {
				logf("%-12s rep %d/%d: %d idle connections: RSS %.1f → %.1f MiB, %.1f KiB per connection",
					r.ID, rep+1, cfg.Reps, res.Idle.Conns, float64(res.Idle.RSSBefore)/(1<<20), float64(res.Idle.RSSAfter)/(1<<20), float64(res.Idle.BytesPerCon)/1024)
			} else {
				logf("%-12s rep %d/%d: %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  proxy %6.1f µs/req  errors %d",
					r.ID, rep+1, cfg.Reps, res.RPS, res.Wrk.P50US/1000, res.Wrk.P99US/1000, res.ProxyCPUus, res.Wrk.errors())
			}
			results[r.ID] = append(results[r.ID], res)
		}
	}

	rep := buildReport(cfg, selected, results, meta(cfg, started, loadStart))
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if cfg.Out != "" {
		if err := rep.write(cfg.Out, md); err != nil {
			return err
		}
		logf("wrote %s and %s", filepath.Join(cfg.Out, "latest.md"), filepath.Join(cfg.Out, "latest.json"))
	}
	if len(runErrs) > 0 {
		return errors.Join(runErrs...)
	}
	failed = false
	return nil
}

// selectRows is -rows in table order, or every row; without -before-bin,
// "every row" leaves the *-before rows out (saying so), while naming one in
// -rows is an error later, when its binaries are looked for.
func selectRows(cfg config, stderr io.Writer) []row {
	selected := make([]row, 0, len(rows))
	for _, r := range rows {
		if len(cfg.Rows) == 0 && r.Before && cfg.BeforeBin == "" {
			fmt.Fprintf(stderr, "gatebench: no -before-bin: %s left out (make bench builds and passes it)\n", r.ID)
			continue
		}
		if len(cfg.Rows) == 0 || contains(cfg.Rows, r.ID) {
			selected = append(selected, r)
		}
	}
	return selected
}

// orderFor is the order of repetition rep: table order, except that on odd
// repetitions each *-before row runs just before its row instead of just
// after, so neither side of a pair always runs after the same neighbour.
func orderFor(selected []row, rep int) []row {
	order := append([]row(nil), selected...)
	if rep%2 == 0 {
		return order
	}
	for i := 0; i+1 < len(order); i++ {
		if order[i+1].Before && order[i+1].ID == order[i].ID+"-before" {
			order[i], order[i+1] = order[i+1], order[i]
			i++
		}
	}
	return order
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// startUpstream runs the fixed-JSON upstream, which also serves the JWKS.
func (e *env) startUpstream(ctx context.Context) error {
	jwksPath := filepath.Join(e.work, "jwks.json")
	if err := os.WriteFile(jwksPath, e.signer.jwks(), 0o644); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := startProc("upstream", e.work, filepath.Join(e.helpers, "upstream"), []string{"-addr", addr, "-jwks", jwksPath}, nil)
	if err != nil {
		return err
	}
	e.upstream, e.upURL = p, "http://"+addr
	return p.waitHTTP(ctx, e.upURL+benchPath, http.StatusOK, 10*time.Second)
}

// runOnce starts the row's front, checks one request gets the expected
// status (so we never benchmark 401s), warms up, measures, and stops it.
func (e *env) runOnce(ctx context.Context, r row, rep int) (runResult, error) {
	res := runResult{Rep: rep + 1}
	f, err := r.start(ctx, e, r)
	if f != nil {
		defer func() {
			for _, p := range f.procs {
				p.stop()
			}
		}()
	}
	if err != nil {
		return res, err
	}
	l := r.load(e, r)
	if err := e.check(ctx, f.url, r, l); err != nil {
		return res, err
	}
	if r.Idle {
		var pids []int
		for _, root := range f.proxyRoots {
			pids = append(pids, treePIDs(root)...)
		}
		idle, err := runIdle(ctx, f.url, l, e.cfg.IdleConns, pids)
		if err != nil {
			return res, err
		}
		res.Idle = &idle
		return res, nil
	}
	script, err := l.script(e.work, r.ID)
	if err != nil {
		return res, err
	}
	o := wrkOpts{Threads: e.cfg.Threads, Conns: e.conns(r), Timeout: e.cfg.Timeout}
	// Fresh tokens: the warm-up and the measured run have their own, so no
	// token is verified twice in one proxy's life (unless a run wraps).
	if _, err := runWrk(ctx, o, script, f.url+l.Path, e.cfg.Warmup, l, "warm"); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	var profErr chan error
	if f.pprofURL != "" {
		profErr = make(chan error, 1)
		path := filepath.Join(e.cfg.PprofOut, fmt.Sprintf("%s-rep%d.cpu.pprof", r.ID, rep+1))
		go func() { profErr <- fetchProfile(ctx, f.pprofURL, e.cfg.Duration, path) }()
	}
	var perfErr chan error
	if e.cfg.Perf == r.ID {
		perfErr = make(chan error, 1)
		path := filepath.Join(e.cfg.PprofOut, fmt.Sprintf("%s-rep%d.perf.data", r.ID, rep+1))
		go func() { perfErr <- recordPerf(ctx, f.proxyRoots[0], e.cfg.Duration, path) }()
	}
	proxyBefore, otherBefore := sampleTrees(f.proxyRoots), sampleTrees(f.otherRoots)
	partsBefore := make([]cpuSample, len(f.parts))
	for i, pt := range f.parts {
		partsBefore[i] = sampleTrees([]int{pt.Root})
	}
	w, err := runWrk(ctx, o, script, f.url+l.Path, e.cfg.Duration, l, "run")
	for _, c := range []chan error{profErr, perfErr} {
		if c == nil {
			continue
		}
		if perr := <-c; perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return res, err
	}
	// A warm-up may complete nothing (sign-in under a full argon2id queue
	// takes longer than the warm-up); the measured run must.
	if w.Requests == 0 {
		return res, fmt.Errorf("wrk completed no requests in %s against %s", e.cfg.Duration, f.url+l.Path)
	}
	proxyCPU := cpuDelta(proxyBefore, sampleTrees(f.proxyRoots))
	otherCPU := cpuDelta(otherBefore, sampleTrees(f.otherRoots))
	res.Wrk, res.RPS = w, w.rps()
	res.ProxyCPUus = proxyCPU * 1e6 / float64(w.Requests)
	res.OtherCPUus = otherCPU * 1e6 / float64(w.Requests)
	for i, pt := range f.parts {
		if res.PartsCPUus == nil {
			res.PartsCPUus = map[string]float64{}
		}
		res.PartsCPUus[pt.Name] = cpuDelta(partsBefore[i], sampleTrees([]int{pt.Root})) * 1e6 / float64(w.Requests)
	}
	var pids []int
	for _, root := range f.proxyRoots {
		pids = append(pids, treePIDs(root)...)
	}
	if res.PeakRSS, err = peakRSS(pids); err != nil {
		return res, err
	}
	for _, p := range f.procs {
		select {
		case <-p.done:
			return res, fmt.Errorf("%s exited during the run (%v):\n%s", p.name, p.err, p.logTail())
		default:
		}
	}
	if n := w.errors(); n*100 > w.Requests {
		return res, fmt.Errorf("%d of %d requests failed (non-2xx %d, timeouts %d, connect %d, read %d, write %d)",
			n, w.Requests, w.Status, w.Timeout, w.Connect, w.Read, w.Write)
	}
	return res, nil
}

// fetchProfile saves a CPU profile of the proxy over d (the measured run)
// to path.
func fetchProfile(ctx context.Context, base string, d time.Duration, path string) error {
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(d/time.Second))
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: d + 30*time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("pprof: GET %s: %s: %s (bin/proxy must serve net/http/pprof on PROXY_METRICS_ADDR when PPROF=1; see bench/README.md)", url, resp.Status, bytes.TrimSpace(b))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// recordPerf samples pid's stacks with Linux perf for d (Go keeps frame
// pointers, so -g gives whole Go stacks): `perf report -i path`.
func recordPerf(ctx context.Context, pid int, d time.Duration, path string) error {
	bin, err := lookTool("perf")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "record", "-q", "-F", "499", "-g", "-p", fmt.Sprint(pid), "-o", path,
		"--", "sleep", fmt.Sprint(int(d/time.Second)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("perf record: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// check sends one request like the row's and wants r.Want.
func (e *env) check(ctx context.Context, base string, r row, l load) error {
	req, err := http.NewRequestWithContext(ctx, l.Method, base+l.Path, strings.NewReader(l.Body))
	if err != nil {
		return err
	}
	for k, v := range l.Headers {
		req.Header.Set(k, v)
	}
	if l.TokenPrefix != "" {
		req.Header.Set("Authorization", "Bearer "+e.reused[r.Fresh])
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("check request: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
	if resp.StatusCode != r.Want {
		return fmt.Errorf("check request %s %s: %s, want %d: %s", l.Method, l.Path, resp.Status, r.Want, b)
	}
	return nil
}

// meta describes the machine and tools, so a table is never read without
// knowing what produced it.
func meta(cfg config, started time.Time, loadStart string) map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		"date":        started.UTC().Format(time.RFC3339),
		"host":        host,
		"cpus":        fmt.Sprint(runtime.NumCPU()),
		"loadavg":     loadStart,
		"loadavg_end": loadavg(),
		"go":          runtime.Version(),
		"wrk":         toolVersion("wrk", "-v"),
		"nginx":       toolVersion("nginx", "-v"),
		"load":        fmt.Sprintf("wrk -t%d -c%d -d%s (warm-up %s) --timeout %s --latency", cfg.Threads, cfg.Conns, secs(cfg.Duration), secs(cfg.Warmup), secs(cfg.Timeout)),
		"reps":        fmt.Sprint(cfg.Reps),
		"log_level":   cfg.LogLevel,
		"prod_argon":  fmt.Sprint(cfg.ProdArgon),
		"duration":    time.Since(started).Round(time.Second).String(),
	}
}

// loadavg is the 1, 5 and 15 minute load averages: on a shared machine,
// how busy the neighbours were.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
