package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// NPMCI makes dir's node_modules match its committed package-lock.json
// (running `npm ci` only when it is missing or older than the lock file) and
// holds a shared lock on dir until the test ends, so a concurrent test binary
// can never wipe node_modules while this test's node process uses it. Node
// and npm missing is a test failure, not a skip.
func NPMCI(t testing.TB, dir string) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found on PATH: this test needs Node.js and npm (apt-get install nodejs npm)", tool)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // closing releases the lock
	flock := func(how int) {
		if err := syscall.Flock(int(lock.Fd()), how); err != nil {
			t.Fatal(err)
		}
	}
	current := func() bool {
		want, err1 := os.Stat(filepath.Join(dir, "package-lock.json"))
		got, err2 := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
		return err1 == nil && err2 == nil && !got.ModTime().Before(want.ModTime())
	}
	flock(syscall.LOCK_SH)
	if current() {
		return
	}
	flock(syscall.LOCK_UN)
	flock(syscall.LOCK_EX)
	if !current() {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	flock(syscall.LOCK_SH)
}
