// Package devenv starts private Postgres and Redis servers on free loopback
// ports for tests and for `make run`, installing the Debian packages they need
// when missing. It never touches the default ports and never reuses a server
// it did not start.
package devenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
)

// PostgresBinDir returns the directory holding postgres, initdb and
// pg_isready: $PG_BIN when set, else the newest /usr/lib/postgresql/*/bin.
func PostgresBinDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries found under /usr/lib/postgresql/*/bin (set PG_BIN)")
}

func versionOf(dir string) int {
	var v int
	fmt.Sscanf(filepath.Base(filepath.Dir(dir)), "%d", &v)
	return v
}

// EnsureInstalled installs redis-server and PostgreSQL with apt-get when they
// are missing and we are root; otherwise it reports what is missing. A file
// lock serialises concurrent callers (test binaries run in parallel).
func EnsureInstalled() error {
	var pkgs []string
	if _, err := PostgresBinDir(); err != nil {
		pkgs = append(pkgs, "postgresql")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		pkgs = append(pkgs, "redis-server")
	}
	if len(pkgs) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing packages %v: install them (apt-get install %v) or run as root", pkgs, pkgs)
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "gatehouse-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	return AptInstall(pkgs...)
}

// AptInstall runs apt-get update once and installs pkgs without starting
// their services (a policy-rc.d that denies service starts is in place for
// the duration), so nothing ends up listening on a default port.
func AptInstall(pkgs ...string) error {
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err == nil {
			defer os.Remove(policy)
		}
	}
	fmt.Fprintf(os.Stderr, "devenv: installing %v with apt-get\n", pkgs)
	update := exec.Command("apt-get", "update", "-qq")
	update.Stdout, update.Stderr = os.Stderr, os.Stderr
	if err := update.Run(); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	args := append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)
	install := exec.Command("apt-get", args...)
	install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	install.Stdout, install.Stderr = os.Stderr, os.Stderr
	if err := install.Run(); err != nil {
		return fmt.Errorf("apt-get install %v: %w", pkgs, err)
	}
	return nil
}
