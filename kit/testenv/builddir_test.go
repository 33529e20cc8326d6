package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse.dev/kit/devenv"
)

// helperBuildDir runs in a child test binary (see below): it makes a build
// directory, prints its path, then fails or waits to be killed.
func TestHelperBuildDir(t *testing.T) {
	mode := os.Getenv("GATEHOUSE_BUILDDIR_HELPER")
	if mode == "" {
		t.Skip("helper process only")
	}
	dir, err := BuildDir("helper")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "svc"), make([]byte, 1<<20), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("DIR " + dir + "\n")
	if mode == "hang" {
		time.Sleep(time.Minute)
	}
	t.Fatal("failing on purpose: the directory must go anyway")
}

func runHelper(t *testing.T, mode string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBuildDir$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GATEHOUSE_BUILDDIR_HELPER="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if dir, ok := strings.CutPrefix(sc.Text(), "DIR "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, dir
		}
	}
	_ = cmd.Wait()
	t.Fatal("helper printed no directory")
	return nil, ""
}

// A test binary's build directory is gone after the binary exits, also when
// a test failed (issue 12: every make test left ~120 MB in the temp folder).
func TestBuildDirRemovedWhenTestsFail(t *testing.T) {
	cmd, dir := runHelper(t, "fail")
	if err := cmd.Wait(); err == nil {
		t.Fatal("helper passed; it should have failed on purpose")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("build dir %s still there after the test binary exited (stat: %v)", dir, err)
		_ = os.RemoveAll(dir)
	}
}

// A killed test binary's build directory is swept by the next run.
func TestBuildDirOfKilledRunIsSwept(t *testing.T) {
	cmd, dir := runHelper(t, "hang")
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("build dir of the killed run already gone? %v", err)
	}
	devenv.SweepStale(filepath.Join(filepath.Dir(dir), "gatehouse-test-*"))
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("build dir %s of a killed run not swept (stat: %v)", dir, err)
		_ = os.RemoveAll(dir)
	}
}
