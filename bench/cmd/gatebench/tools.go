package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"gatehouse.dev/kit/devenv"
)

// ensureTools installs wrk and nginx (and perf) from Debian when missing,
// through kit/devenv's one serialised install path, which never lets nginx
// start on port 80. Without root it names what to install; it never skips a
// row.
func ensureTools(needNginx, needPerf bool) error {
	want := map[string]string{"wrk": "wrk"}
	if needNginx {
		want["nginx"] = "nginx"
	}
	if needPerf {
		want["perf"] = "linux-perf"
	}
	var pkgs []string
	for _, pkg := range want {
		pkgs = append(pkgs, pkg)
	}
	if err := devenv.Install(pkgs...); err != nil {
		return err
	}
	for bin := range want {
		if _, err := lookTool(bin); err != nil {
			return fmt.Errorf("%s still not found after apt-get install: %w", bin, err)
		}
	}
	return nil
}

// lookTool finds bin on PATH or in /usr/sbin (nginx lives there, and a
// non-login PATH may lack it).
func lookTool(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", bin)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/sbin", bin)
}

// toolVersion returns the first line a tool prints about its version.
func toolVersion(bin string, args ...string) string {
	p, err := lookTool(bin)
	if err != nil {
		return "not installed"
	}
	out, _ := exec.Command(p, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	line, _, _ = strings.Cut(line, " Copyright") // wrk's banner
	return strings.TrimSpace(line)
}

// buildHelpers builds the upstream and the bare proxy into dir, like the
// services are built (static, trimmed). GOWORK=off: the bench module stands
// alone whether or not go.work lists it, and needs only kit via replace.
func buildHelpers(dir string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+string(os.PathSeparator),
		"gatehouse.dev/bench/cmd/upstream", "gatehouse.dev/bench/cmd/bareproxy")
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build helpers (run gatebench from inside bench/): %w\n%s", err, out)
	}
	return nil
}
