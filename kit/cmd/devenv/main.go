// Command devenv runs throwaway infrastructure for Gatehouse's tests and its
// one-host stack.
//
//	devenv test -- go test ./...   private Postgres and Redis for one command
//	devenv run [-state .run]      the whole stack on http://localhost:8080
//	devenv install [SET...]       the Debian packages the tests need (all sets by default)
//
// Servers listen on free loopback ports only and are stopped (and, for test,
// removed) when the command ends, also on Ctrl-C or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "test":
		var code int
		code, err = runTest(os.Args[2:])
		if err == nil {
			testenv.StopAll()
			os.Exit(code)
		}
	case "run":
		err = runStack(os.Args[2:])
	case "install":
		err = install(os.Args[2:])
	default:
		usage()
	}
	testenv.StopAll()
	if err != nil {
		fmt.Fprintf(os.Stderr, "devenv: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: devenv test -- CMD [ARGS...] | devenv run [-state DIR] [-bin DIR] | devenv install [SET...]")
	os.Exit(2)
}

// install installs the named sets of devenv.TestPackages (every set when
// none is named) in one apt-get run: make test calls it before go test, so
// parallel test binaries never race for dpkg's lock.
func install(sets []string) error {
	if len(sets) == 0 {
		return devenv.Install(devenv.AllTestPackages()...)
	}
	var pkgs []string
	for _, s := range sets {
		p, ok := devenv.TestPackages[s]
		if !ok {
			return fmt.Errorf("install: unknown set %q (known: %v)", s, devenv.TestPackageSets())
		}
		pkgs = append(pkgs, p...)
	}
	return devenv.Install(pkgs...)
}

// removeTemp removes the command's temp folder, naming what the tests left
// behind in it so the leak can be found.
func removeTemp(dir string) {
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		if e.Name() != "owner.pid" {
			left = append(left, e.Name())
		}
	}
	if len(left) > 0 {
		if len(left) > 5 {
			left = append(left[:5], fmt.Sprintf("and %d more", len(left)-5))
		}
		fmt.Fprintf(os.Stderr, "devenv: removing what the tests left in their temp folder: %v\n", left)
	}
	_ = os.RemoveAll(dir)
}

// runTest starts one Postgres and one Redis, runs the command with their
// addresses in the environment and returns its exit code.
func runTest(args []string) (int, error) {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		usage()
	}
	fs := flag.NewFlagSet("test", flag.ExitOnError)
	_ = fs.Parse(nil)
	pg, stopPG, err := testenv.StartPostgres()
	if err != nil {
		return 0, err
	}
	defer stopPG()
	rd, stopRedis, err := testenv.StartRedis()
	if err != nil {
		return 0, err
	}
	defer stopRedis()
	fmt.Fprintf(os.Stderr, "devenv: postgres on 127.0.0.1:%d, redis on %s\n", pg.Port(), rd.Addr())

	// The command gets a private temp folder, removed afterwards whatever
	// the tests left in it (go test's builds, browsers' profiles), and swept
	// by the next run if this process is killed: a CI machine must not fill
	// up run after run (issue 12).
	tmp, err := testenv.TempDir("run")
	if err != nil {
		return 0, err
	}
	defer removeTemp(tmp)
	// Tests start servers as unprivileged users under it: they must be
	// able to reach their own folders.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return 0, err
	}

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp,
		testenv.EnvPostgresURL+"="+pg.URL("postgres"),
		testenv.EnvRedisAddr+"="+rd.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The terminal already sent SIGINT to the whole group; make sure a
		// SIGTERM reaches the child too, then wait for it before cleaning up.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err = <-done
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return max(ee.ExitCode(), 1), nil
	}
	return 0, err
}
