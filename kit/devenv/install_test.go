package devenv

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Every install in the project goes through Install (issue 12: two test
// packages ran apt-get at once and one failed on dpkg's lock). This fails
// when any tracked file but install.go runs apt-get or dpkg itself.
func TestOneInstallPath(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	root := strings.TrimSpace(string(top))
	files, err := exec.Command("git", "-C", root, "ls-files", "*.go", "*.sh", "*.mjs", "*.js", "*.py", "Makefile", "*/Makefile", ".ci/*").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	// An apt-get (or dpkg -i) inside a string or a command line: a call,
	// not a message telling a person what to install.
	call := regexp.MustCompile(`"apt-get"|"apt"|exec\.Command\("(apt|dpkg)|^\s*(sudo\s+)?apt(-get)?\s+(install|update)|sh", "-c", .*apt(-get)? |dpkg -i`)
	// install.go is the one path; this file names apt-get in its patterns
	// and stand-ins.
	self := map[string]bool{filepath.Join("kit", "devenv", "install.go"): true, filepath.Join("kit", "devenv", "install_test.go"): true}
	var offenders []string
	for _, f := range strings.Fields(string(files)) {
		if self[f] {
			continue
		}
		fh, err := os.Open(filepath.Join(root, f))
		if err != nil {
			continue // deleted in the work tree
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			if call.MatchString(sc.Text()) || strings.Contains(sc.Text(), "apt-get install -y") || strings.Contains(sc.Text(), "apt install -y") {
				offenders = append(offenders, f+":"+strconv.Itoa(n)+": "+strings.TrimSpace(sc.Text()))
			}
		}
		fh.Close()
	}
	if len(offenders) > 0 {
		t.Errorf("apt-get run outside devenv.Install (use devenv.Install or `devenv install`):\n%s", strings.Join(offenders, "\n"))
	}
}

// Install serialises across installers: with a stand-in apt-get that fails
// when another run of it is under way, four concurrent Installs of a missing
// package must all succeed, one after another.
func TestInstallIsSerialised(t *testing.T) {
	// Hermetic: a private lock file and policy-rc.d path, and Install
	// believes it is root (it would refuse otherwise) but runs only the
	// stand-ins below.
	defer func(e func() int, l, p string) { geteuid, lockPath, policyRCPath = e, l, p }(geteuid, lockPath, policyRCPath)
	geteuid = func() int { return 0 }
	lockPath = filepath.Join(t.TempDir(), "install.lock")
	policyRCPath = filepath.Join(t.TempDir(), "policy-rc.d")
	bin := t.TempDir()
	busy := filepath.Join(t.TempDir(), "busy")
	runs := filepath.Join(t.TempDir(), "runs")
	script := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script("dpkg-query", "exit 1\n") // every package is missing
	script("apt-get", `case "$*" in *install*) ;; *) exit 0;; esac
[ -e `+busy+` ] && { echo "two apt-get at once" >&2; exit 100; }
touch `+busy+`; echo run >> `+runs+`; sleep 0.2; rm `+busy+`
`)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- Install("gatehouse-test-package") }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Install: %v", err)
		}
	}
	out, _ := os.ReadFile(runs)
	if n := strings.Count(string(out), "run"); n != 4 {
		t.Errorf("apt-get install ran %d times, want 4 (one per Install, none overlapping)", n)
	}
}

// Install of packages dpkg reports installed does nothing.
func TestInstallSkipsInstalled(t *testing.T) {
	if got := missingPackages([]string{"dpkg"}); len(got) != 0 {
		t.Fatalf("missingPackages(dpkg) = %v, want dpkg reported installed", got)
	}
	if got := missingPackages([]string{"gatehouse-no-such-package"}); len(got) != 1 {
		t.Fatalf("missingPackages(no such package) = %v, want it reported missing", got)
	}
	if err := Install("dpkg"); err != nil {
		t.Fatalf("Install(installed package) = %v, want nil without touching apt", err)
	}
}
