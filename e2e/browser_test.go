package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
)

// ensureChromium installs Debian's chromium when it is missing, through the
// project's one serialised install path. A browser is never downloaded.
func ensureChromium(t *testing.T) string {
	t.Helper()
	const bin = "/usr/bin/chromium"
	if err := devenv.Install(devenv.TestPackages["browser"]...); err != nil {
		t.Fatalf("install chromium: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing after installing chromium: %v", bin, err)
	}
	return bin
}

// The demo in a real browser through the proxy: sign up, add two todos,
// complete one, reload and see them, sign out, sign in as another user and
// see none of them. Screenshots go to the test's output folder.
func TestDemoInBrowser(t *testing.T) {
	t.Parallel()
	chromium := ensureChromium(t)
	testenv.NPMCI(t, "browser")
	s := StartStack(t, Options{WithWeb: true})
	other := s.NewUser(t)
	other.SignUp("other@example.com", pw)

	// The test's output folder (git-ignored), kept after the run so a person
	// can look at what the browser showed.
	shots := os.Getenv("GATEHOUSE_SCREENSHOT_DIR")
	if shots == "" {
		shots, _ = filepath.Abs(filepath.Join("out", "screenshots"))
	}
	_ = os.MkdirAll(shots, 0o755)
	start := time.Now()
	cmd := exec.Command("node", "demo.mjs")
	cmd.Dir = "browser"
	cmd.Env = append(os.Environ(), "BASE_URL="+s.URL, "SCREENSHOT_DIR="+shots, "CHROMIUM="+chromium,
		"OTHER_EMAIL=other@example.com", "OTHER_PASSWORD="+pw)
	out, err := cmd.Output()
	var res struct {
		OK          bool
		Error       string
		Steps       []string
		AfterReload []struct {
			Title string
			Done  bool
		}
		CookiesVisibleToScript string
		LocalStorage           string
		WrongPasswordMessage   string
		OtherUserTodos         []string
		ConsoleErrors          []string
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil || err != nil || !res.OK {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("browser run failed: %v\nsteps %v\nerror %s\nstdout %s\nstderr %s", err, res.Steps, res.Error, out, stderr)
	}
	t.Logf("browser flow took %s; screenshots in %s", time.Since(start).Round(time.Millisecond), shots)
	if len(res.AfterReload) != 2 {
		t.Fatalf("after reload the page lists %+v, want two todos", res.AfterReload)
	}
	for _, td := range res.AfterReload {
		if want := strings.Contains(td.Title, "buy milk"); td.Done != want {
			t.Errorf("after reload %q done=%v, want %v", td.Title, td.Done, want)
		}
	}
	if strings.Contains(res.CookiesVisibleToScript, "token") {
		t.Errorf("tokens readable by page script: %q (cookies must be HttpOnly)", res.CookiesVisibleToScript)
	}
	if strings.Contains(strings.ToLower(res.LocalStorage), "ey") && strings.Contains(res.LocalStorage, ".") {
		t.Errorf("localStorage looks like it holds a token: %s", res.LocalStorage)
	}
	if res.WrongPasswordMessage == "" {
		t.Error("no message shown for a wrong password")
	}
	if len(res.OtherUserTodos) != 0 {
		t.Errorf("the other user sees %v, want no todos", res.OtherUserTodos)
	}
	for _, e := range res.ConsoleErrors {
		if strings.Contains(e, "Content Security Policy") {
			t.Errorf("CSP violation in the demo: %s", e)
		}
	}
}
