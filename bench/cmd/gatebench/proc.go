package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one server process the benchmark started. Its output goes straight
// to a file (not through a pipe we copy), so logging costs the process what
// it would cost in production and nothing on our side.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // exit status, valid after done is closed
}

// startProc runs bin with exactly env (plus PATH), in its own process group
// so that a terminal's Ctrl-C reaches us first and we stop things in order,
// and killed by the kernel if we die (Pdeathsig).
func startProc(name, logDir, bin string, args, env []string) (*proc, error) {
	logPath := filepath.Join(logDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); lf.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits; after 10s it kills the whole process group
// (nginx workers included). Stopping a stopped process is a no-op.
func (p *proc) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// logTail returns the end of the process's output, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return strings.TrimSpace(string(b))
}

// waitHTTP polls url until it answers want, the process exits, or timeout.
func (p *proc) waitHTTP(ctx context.Context, url string, want int, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up (%v):\n%s", p.name, p.err, p.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s did not answer %d within %v (last: %s):\n%s", p.name, url, want, timeout, last, p.logTail())
}

// procStat is what we read from /proc/<pid>/stat.
type procStat struct {
	ppid int
	comm string
	// ticks is utime+stime+cutime+cstime: the process's own CPU and that of
	// children it has reaped (postgres backends, nginx workers that exited).
	ticks int64
}

// clockTicks is USER_HZ, which is 100 on every Linux architecture Go
// supports; /proc reports CPU times in these units.
const clockTicks = 100

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	// comm may contain spaces and parentheses: it ends at the last ')'.
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[end+1:])
	// After comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	st := procStat{comm: s[open+1 : end]}
	st.ppid, _ = strconv.Atoi(f[1])
	for _, i := range []int{11, 12, 13, 14} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		st.ticks += v
	}
	return st, nil
}

// allStats reads every process's stat once.
func allStats() map[int]procStat {
	ents, _ := os.ReadDir("/proc")
	out := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			out[pid] = st
		}
	}
	return out
}

// cpuSample maps each pid of the measured process trees to its ticks.
type cpuSample map[int]int64

// sampleTrees returns the ticks of roots and all their descendants.
func sampleTrees(roots []int) cpuSample {
	all := allStats()
	children := map[int][]int{}
	for pid, st := range all {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	s := cpuSample{}
	var walk func(int)
	walk = func(pid int) {
		st, ok := all[pid]
		if !ok {
			return
		}
		s[pid] = st.ticks
		for _, c := range children[pid] {
			walk(c)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return s
}

// cpuDelta is the CPU time, in seconds, the trees used between two samples.
// A process born in between counts in full (it did all its work then); one
// that died in between is counted by its parent's cutime once reaped.
func cpuDelta(before, after cpuSample) float64 {
	var ticks int64
	for pid, t := range after {
		ticks += t - before[pid]
	}
	return float64(ticks) / clockTicks
}

// peakRSS returns the sum of VmHWM (peak resident set) over pids, in bytes.
func peakRSS(pids []int) (int64, error) { return statusSum(pids, "VmHWM:") }

// treePIDs returns root and its descendants.
func treePIDs(root int) []int {
	s := sampleTrees([]int{root})
	pids := make([]int, 0, len(s))
	for pid := range s {
		pids = append(pids, pid)
	}
	return pids
}

// childByComm finds a direct child of ours named comm (the postmaster and
// redis-server that kit/devenv starts), whose pid devenv does not expose.
func childByComm(comm string, not ...int) (int, error) {
	me := os.Getpid()
	for pid, st := range allStats() {
		if st.ppid == me && st.comm == comm && !slices.Contains(not, pid) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child process named %q (other than %v)", comm, not)
}
