package devenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FreePort asks the kernel for a free loopback TCP port. Another process may
// take it before we bind, so callers retry a failed start on a new port.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serviceUser returns the credentials to run a server under when we are root
// (Postgres refuses to run as root): the user named first that exists.
func serviceUser(names ...string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, n := range names {
		u, err := user.Lookup(n)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, fmt.Errorf("running as root and none of the users %v exists to run the server", names)
}

// chownTree gives dir and everything below it to cred (no-op when nil).
func chownTree(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	})
}

// checkTraversable reports a clear error when cred cannot reach dir (a checkout
// under /root, say), instead of a cryptic initdb failure.
func checkTraversable(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	abs, _ := filepath.Abs(dir)
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm()&0o001 == 0 && st.Uid != cred.Uid {
			return fmt.Errorf("%s is not searchable by uid %d, which runs the database; put the checkout elsewhere or chmod o+x %s", p, cred.Uid, p)
		}
		if p == "/" {
			return nil
		}
	}
}

// command builds a server process: its own process group (so a terminal's
// Ctrl-C reaches us first and we stop it in order), killed if we die.
func command(cred *syscall.Credential, logFile *os.File, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	return cmd
}

// waitFor polls ok every 50ms until it returns true, the process exits, or
// timeout passes.
func waitFor(timeout time.Duration, exited <-chan struct{}, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, 2)
	}
	b := make([]byte, n)
	m, _ := f.Read(b)
	return strings.TrimSpace(string(b[:m]))
}

// SweepStale removes throwaway directories matching pattern whose owner
// process is gone, killing any server still running from them.
func SweepStale(pattern string) {
	dirs, _ := filepath.Glob(pattern)
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 0 && syscall.Kill(pid, 0) == nil {
			continue // owner alive
		}
		for _, pf := range []string{"data/postmaster.pid", "redis.pid"} {
			if b, err := os.ReadFile(filepath.Join(d, pf)); err == nil {
				line, _, _ := strings.Cut(string(b), "\n")
				if spid, _ := strconv.Atoi(strings.TrimSpace(line)); spid > 0 {
					_ = syscall.Kill(spid, syscall.SIGKILL)
				}
			}
		}
		_ = os.RemoveAll(d)
	}
}
