// Command gatebench measures, in one run and with one load generator, what
// the Gatehouse proxy costs: a fixed JSON upstream hit directly, through a
// bare httputil.ReverseProxy, through nginx, and through our proxy with
// several token kinds; then the full stack (list, create, sign-in). Rows are
// repeated and interleaved so machine drift hits every row alike, ratios are
// taken pair by pair within a repetition, and the table is written as
// Markdown and JSON. See bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "gatebench: %v\n", err)
		os.Exit(1)
	}
}

// config is the command line, checked once.
type config struct {
	Bin         string        // directory with the built services (bin/proxy, …)
	BeforeBin   string        // the same services built from before issue 18; "" leaves the *-before rows out
	Out         string        // results directory; "" writes nothing
	Rows        []string      // row ids to run, in table order; empty = all
	Reps        int           // repetitions of every row
	Duration    time.Duration // measured part of each wrk run
	Warmup      time.Duration // discarded wrk run before it, same settings
	Threads     int           // wrk -t
	Conns       int           // wrk -c
	IdleConns   int           // connections the idle-* rows open
	Timeout     time.Duration // wrk --timeout: slower responses count as errors
	Tokens      int           // fresh tokens per algorithm
	LogLevel    string        // LOG_LEVEL of every service under test
	ProdArgon   bool          // sign-in row with authsvc's default (OWASP) argon2id cost
	Pprof       string        // row whose proxy serves /debug/pprof; its measured runs are profiled
	Perf        string        // row whose proxy is sampled with Linux perf during its measured runs
	PprofOut    string        // where the CPU profiles go (pprof and perf)
	ProxyEnv    []string      // extra KEY=VALUE for every run of our proxy (experiments)
	BackendEnv  []string      // extra KEY=VALUE for the full stack's backend (experiments)
	Quick       bool
	KeepWorkDir bool
}

// envFlag appends each KEY=VALUE given to a repeatable flag to dst.
func envFlag(dst *[]string) func(string) error {
	return func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		*dst = append(*dst, v)
		return nil
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("gatebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var rows string
	fs.StringVar(&c.Bin, "bin", "../bin", "directory holding the built services (make build)")
	fs.StringVar(&c.BeforeBin, "before-bin", "", "directory holding proxy, backend and authsvc built from the commit before issue 18 (make bench builds it: bench/build-before.sh); the *-before rows run them, and without it they are left out")
	fs.StringVar(&c.Out, "out", "results", "write latest.md and latest.json here; empty writes nothing")
	fs.StringVar(&rows, "rows", "", "comma-separated row ids to run (default all): "+strings.Join(rowIDs(), ","))
	fs.IntVar(&c.Reps, "reps", 3, "repetitions of every row, interleaved")
	fs.DurationVar(&c.Duration, "d", 7*time.Second, "measured duration of each run (whole seconds: wrk's unit)")
	fs.DurationVar(&c.Warmup, "warmup", 1*time.Second, "discarded warm-up run before each measured run")
	fs.IntVar(&c.Threads, "t", 2, "wrk threads")
	fs.IntVar(&c.Conns, "c", 32, "wrk connections")
	fs.IntVar(&c.IdleConns, "idle-conns", 10_000, "keep-alive connections the idle-* rows open and leave idle")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "wrk --timeout")
	fs.IntVar(&c.Tokens, "tokens", 200_000, "fresh tokens generated per algorithm")
	fs.StringVar(&c.LogLevel, "log-level", "warn", "LOG_LEVEL of the services under test (warn: no per-request access log)")
	fs.BoolVar(&c.ProdArgon, "prod-argon", true, "sign-in row uses authsvc's default argon2id cost (m=19 MiB, t=2); false uses the cheapest allowed")
	fs.StringVar(&c.Pprof, "pprof", "", "row id of one of our proxy's rows: run its proxy with PPROF=1 on a metrics listener and save a CPU profile of each measured run")
	fs.StringVar(&c.Perf, "perf", "", "row id of one of our proxy's rows: record its proxy with `perf record -g` during each measured run (works without PPROF support; needs linux-perf)")
	fs.StringVar(&c.PprofOut, "pprof-out", "results/profiles", "directory for -pprof and -perf profiles (git-ignored)")
	fs.Func("proxy-env", "KEY=VALUE added to our proxy's environment, repeatable (experiments: -proxy-env GOMEMLIMIT=64MiB runs the old fixed soft limit)", envFlag(&c.ProxyEnv))
	fs.Func("backend-env", "KEY=VALUE added to the full stack's backend environment, repeatable (experiments: -backend-env GOMAXPROCS=1)", envFlag(&c.BackendEnv))
	fs.BoolVar(&c.Quick, "quick", false, "smoke run: 2s runs, 1s warm-up, 1 repetition, 20k tokens, and no files unless -out is given")
	fs.BoolVar(&c.KeepWorkDir, "keep", false, "keep the work directory (process logs, Lua scripts, configs)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["d"] {
			c.Duration = 2 * time.Second
		}
		if !set["warmup"] {
			c.Warmup = time.Second
		}
		if !set["reps"] {
			c.Reps = 1
		}
		if !set["tokens"] {
			c.Tokens = 20_000
		}
		if !set["out"] {
			c.Out = "" // a smoke run must not replace the committed results
		}
	}
	var problems []string
	if rows != "" {
		known := map[string]bool{}
		for _, id := range rowIDs() {
			known[id] = true
		}
		for _, id := range strings.Split(rows, ",") {
			id = strings.TrimSpace(id)
			if !known[id] {
				problems = append(problems, fmt.Sprintf("-rows: unknown row %q (want some of %s)", id, strings.Join(rowIDs(), ",")))
			}
			c.Rows = append(c.Rows, id)
		}
	}
	if c.Pprof != "" {
		if r, ok := rowByID(c.Pprof); !ok || !r.Ours {
			problems = append(problems, fmt.Sprintf("-pprof: %q is not one of our proxy's rows", c.Pprof))
		} else if len(c.Rows) > 0 && !contains(c.Rows, c.Pprof) {
			problems = append(problems, fmt.Sprintf("-pprof: row %q is not among -rows", c.Pprof))
		}
	}
	if c.Perf != "" {
		if r, ok := rowByID(c.Perf); !ok || !r.Ours {
			problems = append(problems, fmt.Sprintf("-perf: %q is not one of our proxy's rows", c.Perf))
		} else if len(c.Rows) > 0 && !contains(c.Rows, c.Perf) {
			problems = append(problems, fmt.Sprintf("-perf: row %q is not among -rows", c.Perf))
		}
	}
	if c.Reps < 1 {
		problems = append(problems, "-reps: want at least 1")
	}
	if c.Duration < time.Second || c.Duration%time.Second != 0 {
		problems = append(problems, "-d: want whole seconds, at least 1s (wrk's unit)")
	}
	if c.Warmup < time.Second || c.Warmup%time.Second != 0 {
		problems = append(problems, "-warmup: want whole seconds, at least 1s (wrk's unit)")
	}
	if c.Threads < 1 || c.Conns < c.Threads {
		problems = append(problems, "-t, -c: want at least 1 thread and at least one connection per thread")
	}
	if c.IdleConns < 2 {
		problems = append(problems, "-idle-conns: want at least 2")
	}
	if c.Tokens < 10*c.Threads {
		problems = append(problems, "-tokens: want at least 10 per wrk thread")
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return c, nil
}
