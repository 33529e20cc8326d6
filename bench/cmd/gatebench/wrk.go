package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// load describes the requests of one row. Every row goes through the same
// wrk invocation (threads, connections, duration, timeout); only the Lua
// script differs.
type load struct {
	Method  string
	Path    string
	Headers map[string]string
	Body    string
	// TokenPrefix, when set, names the fresh-token files (see writeTokens);
	// each request takes the next token of its thread's file (a per-request
	// Lua function, which costs wrk CPU that the static rows do not pay).
	TokenPrefix string
	TokenCookie bool // send the token as the access cookie instead of a bearer
}

// wrkResult is one wrk run, as reported by the script's done().
type wrkResult struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Connect    int64   `json:"connect_errors"`
	Read       int64   `json:"read_errors"`
	Write      int64   `json:"write_errors"`
	Status     int64   `json:"non_2xx_3xx"`
	Timeout    int64   `json:"timeouts"`
	P50US      float64 `json:"p50_us"`
	P90US      float64 `json:"p90_us"`
	P99US      float64 `json:"p99_us"`
	MaxUS      float64 `json:"max_us"`
	Wrapped    int64   `json:"tokens_wrapped"` // threads that ran out of fresh tokens and restarted their slice
	WrkCPU     float64 `json:"wrk_cpu_s"`      // the load generator's own CPU: it shares the cores
}

func (r wrkResult) rps() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

func (r wrkResult) errors() int64 { return r.Connect + r.Read + r.Write + r.Status + r.Timeout }

// luaDone prints the summary as one JSON line, so we never parse wrk's
// human-readable units ("1.23ms", "12.5k").
const luaDone = `
threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local wrapped = 0
  for _, t in ipairs(threads) do wrapped = wrapped + (t:get("wrapped") or 0) end
  local e = summary.errors
  io.write(string.format('GATEBENCH {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"non_2xx_3xx":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"tokens_wrapped":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, wrapped))
end
`

// luaTokens reads the thread's own token file for the phase (warm or run)
// and sends the next token on every request.
const luaTokens = `
wrapped = 0
function init(args)
  local path = args[1] .. "-" .. args[2] .. "-" .. tid .. ".txt"
  tokens = {}
  for line in io.lines(path) do tokens[#tokens + 1] = line end
  if #tokens == 0 then error("no tokens in " .. path) end
  i = 0
end
function request()
  i = i + 1
  if i > #tokens then i = 1; wrapped = wrapped + 1 end
  %s
end
`

// script writes the Lua for l and returns its path.
func (l load) script(dir, name string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "wrk.method = %q\n", l.Method)
	if l.Body != "" {
		fmt.Fprintf(&b, "wrk.body = %q\n", l.Body)
	}
	keys := make([]string, 0, len(l.Headers))
	for k := range l.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "wrk.headers[%q] = %q\n", k, l.Headers[k])
	}
	b.WriteString(luaDone)
	if l.TokenPrefix != "" {
		send := `return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. tokens[i]})`
		if l.TokenCookie {
			send = `return wrk.format(nil, nil, {["Cookie"] = "better-auth.access_token=" .. tokens[i]})`
		}
		if len(l.Headers) > 0 {
			return "", fmt.Errorf("row %s: per-request tokens replace wrk.headers; extra headers are not supported", name)
		}
		fmt.Fprintf(&b, luaTokens, send)
	}
	path := filepath.Join(dir, name+".lua")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// wrkOpts are the load generator settings shared by every row.
type wrkOpts struct {
	Threads, Conns int
	Timeout        time.Duration
}

// runWrk runs wrk for d against url. For fresh-token rows, phase ("warm" or
// "run") picks the token files.
func runWrk(ctx context.Context, o wrkOpts, script, url string, d time.Duration, l load, phase string) (wrkResult, error) {
	args := []string{
		"-t" + strconv.Itoa(o.Threads), "-c" + strconv.Itoa(o.Conns),
		"-d" + secs(d), "--timeout", secs(o.Timeout), "--latency",
		"-s", script, url,
	}
	if l.TokenPrefix != "" {
		args = append(args, "--", l.TokenPrefix, phase)
	}
	// wrk stops itself after d; the context bound is for a wedged run.
	ctx, cancel := context.WithTimeout(ctx, d+o.Timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	var res wrkResult
	sc := bufio.NewScanner(&stdout)
	found := false
	for sc.Scan() {
		if js, ok := strings.CutPrefix(sc.Text(), "GATEBENCH "); ok {
			if err := json.Unmarshal([]byte(js), &res); err != nil {
				return wrkResult{}, fmt.Errorf("wrk summary %q: %w", js, err)
			}
			found = true
		}
	}
	if !found {
		return wrkResult{}, fmt.Errorf("wrk printed no summary:\n%s%s", stdout.String(), stderr.String())
	}
	if ps := cmd.ProcessState; ps != nil {
		res.WrkCPU = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	return res, nil
}

// secs formats d for wrk, whose parser takes an integer with a unit
// ("500ms" is a usage error), so d is rounded up to whole seconds.
func secs(d time.Duration) string {
	n := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(n, 1), 10) + "s"
}
