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
	"strings"
	"syscall"
	"time"
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

// EnsureInstalled makes sure the private Postgres and Redis servers can
// start: when their binaries are found (PostgresBinDir honours PG_BIN, and
// redis-server on PATH) nothing is installed, whatever packaged them;
// otherwise the "servers" set of TestPackages is installed.
func EnsureInstalled() error {
	_, pgErr := PostgresBinDir()
	_, redisErr := exec.LookPath("redis-server")
	if pgErr == nil && redisErr == nil {
		return nil
	}
	return Install(TestPackages["servers"]...)
}

// InstallLock is the one lock every installer in the project takes, across
// processes: parallel test binaries, devenv, the bench harness. Two apt-get
// runs at once fail on dpkg's own lock (issue 12), so nobody calls apt-get
// but Install. It lives in /run, which only root can write (a lock in a
// world-writable folder could be held by anyone).
const InstallLock = "/run/gatehouse-install.lock"

// Seams for the tests; production code never changes them.
var (
	geteuid      = os.Geteuid
	lockPath     = InstallLock
	policyRCPath = "/usr/sbin/policy-rc.d"
)

// Install makes sure every named Debian package is installed. Packages that
// dpkg already reports installed cost nothing; the rest are installed with
// one apt-get run under InstallLock (and apt's own lock timeout, for an
// apt-get started by something else), without starting their services.
// Without root it names what to install and fails.
func Install(pkgs ...string) error {
	missing := missingPackages(pkgs)
	if len(missing) == 0 {
		return nil
	}
	if geteuid() != 0 {
		return fmt.Errorf("missing Debian packages: install them with `apt-get install %s`, or run as root", strings.Join(missing, " "))
	}
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("install lock: %w", err)
	}
	// Whoever held the lock before us may have installed them.
	if missing = missingPackages(pkgs); len(missing) == 0 {
		return nil
	}
	return aptInstall(missing)
}

// missingPackages returns the packages dpkg does not report as installed.
func missingPackages(pkgs []string) []string {
	var missing []string
	for _, p := range pkgs {
		out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", p).Output()
		if err != nil || strings.TrimSpace(string(out)) != "installed" {
			missing = append(missing, p)
		}
	}
	return missing
}

// aptInstall runs apt-get update and installs pkgs without starting their
// services (a policy-rc.d that denies service starts is in place for the
// duration), so nothing ends up listening on a default port. Callers hold
// InstallLock.
func aptInstall(pkgs []string) error {
	policy := policyRCPath
	if _, err := os.Stat(policy); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err == nil {
			defer os.Remove(policy)
		}
	}
	fmt.Fprintf(os.Stderr, "devenv: installing %v with apt-get\n", pkgs)
	// Another apt-get (not ours: unattended-upgrades, a person) may hold
	// dpkg's lock; wait for it rather than fail.
	lockWait := []string{"-o", "DPkg::Lock::Timeout=600"}
	// The lists lock of apt-get update may not honour that timeout on
	// every apt version: a few tries, a few seconds apart.
	var err error
	for try := range 5 {
		if try > 0 {
			time.Sleep(3 * time.Second)
		}
		update := exec.Command("apt-get", append(lockWait, "update", "-qq")...)
		update.Stdout, update.Stderr = os.Stderr, os.Stderr
		if err = update.Run(); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	args := append(lockWait, "install", "-y", "-qq", "--no-install-recommends")
	install := exec.Command("apt-get", append(args, pkgs...)...)
	install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	install.Stdout, install.Stderr = os.Stderr, os.Stderr
	if err := install.Run(); err != nil {
		return fmt.Errorf("apt-get install %v: %w", pkgs, err)
	}
	return nil
}
