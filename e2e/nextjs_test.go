package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse.dev/kit/testenv"
)

// nextBuild returns a directory holding a production build of
// examples/nextjs, made once per source and kept outside the repository:
// $XDG_CACHE_HOME/gatehouse/nextjs-<lock hash>/ holds node_modules (npm ci,
// once per package-lock.json) and build-<source hash>/ the sources and their
// .next (next build, once per source). A shared flock on the cache directory
// is held until the test ends, so no other test binary replaces the build
// while this test serves it.
func nextBuild(t *testing.T) string {
	t.Helper()
	src, _ := filepath.Abs(filepath.Join("..", "examples", "nextjs"))
	lockFile, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		t.Fatalf("examples/nextjs: %v", err)
	}
	files, srcHash := nextSources(t, src)
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	lockSum := sha256.Sum256(lockFile)
	root := filepath.Join(cache, "gatehouse", "nextjs-"+hex.EncodeToString(lockSum[:8]))
	build := filepath.Join(root, "build-"+srcHash)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(root, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	flock := func(how int) {
		if err := syscall.Flock(int(lock.Fd()), how); err != nil {
			t.Fatal(err)
		}
	}
	ready := func() bool {
		_, err := os.Stat(filepath.Join(build, ".built"))
		return err == nil
	}
	flock(syscall.LOCK_SH)
	if ready() {
		return build
	}
	flock(syscall.LOCK_UN)
	flock(syscall.LOCK_EX)
	defer flock(syscall.LOCK_SH)
	if ready() {
		return build
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", ".package-lock.json")); err != nil {
		start := time.Now()
		for _, f := range []string{"package.json", "package-lock.json"} {
			copyFile(t, filepath.Join(src, f), filepath.Join(root, f))
		}
		runIn(t, root, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		t.Logf("npm ci for examples/nextjs: %s", time.Since(start).Round(time.Second))
	}
	// Old builds of other sources go; this one is made from scratch.
	old, _ := filepath.Glob(filepath.Join(root, "build-*"))
	for _, d := range old {
		_ = os.RemoveAll(d)
	}
	for _, f := range files {
		copyFile(t, filepath.Join(src, f), filepath.Join(build, f))
	}
	start := time.Now()
	runIn(t, build, "node", filepath.Join(root, "node_modules", "next", "dist", "bin", "next"), "build")
	t.Logf("next build for examples/nextjs: %s", time.Since(start).Round(time.Second))
	if err := os.WriteFile(filepath.Join(build, ".built"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return build
}

// nextSources lists the example's source files (not node_modules, not build
// output) and hashes their names and contents.
func nextSources(t *testing.T, src string) ([]string, string) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (rel == "node_modules" || rel == ".next") {
			return filepath.SkipDir
		}
		if !d.IsDir() && rel != "package-lock.json" && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return files, hex.EncodeToString(h.Sum(nil)[:8])
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(to), 0o755)
	}
	if err == nil {
		err = os.WriteFile(to, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// runIn runs a command in dir with Next.js telemetry off, failing the test
// with its output.
func runIn(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NEXT_TELEMETRY_DISABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
}

// startNext serves the build with `next start` on loopback until the test
// ends: the proxy's WEB_URL.
func startNext(t *testing.T, build string) *Proc {
	t.Helper()
	p := &Proc{Name: "next", Addr: testenv.FreeAddr(t)}
	host, port, _ := strings.Cut(p.Addr, ":")
	script := filepath.Join(t.TempDir(), "next-start")
	next := filepath.Join(filepath.Dir(build), "node_modules", "next", "dist", "bin", "next")
	body := fmt.Sprintf("#!/bin/sh\ncd %q && exec node %q start -H %s -p %s\n", build, next, host, port)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	p.bin = script
	p.env = []string{"NEXT_TELEMETRY_DISABLED=1", "NODE_ENV=production"}
	t.Cleanup(func() {
		// next start exits with 143 on SIGTERM by design: not an error.
		if err := p.Stop(t); err != nil && !strings.Contains(err.Error(), "143") {
			t.Errorf("next: exit after SIGTERM: %v", err)
		}
		if t.Failed() {
			t.Logf("---- next logs ----\n%s", p.Logs())
		}
	})
	p.start(t)
	p.WaitReady(t)
	return p
}

// The Next.js example (Better Auth's React client, the todo API over
// HttpOnly cookies) in Chromium through the proxy, once against the Go
// backend and once against the FastAPI example: one `next start` serves both.
func TestNextJSInBrowser(t *testing.T) {
	t.Parallel()
	chromium := ensureChromium(t)
	testenv.NPMCI(t, "browser")
	web := startNext(t, nextBuild(t))
	shots := os.Getenv("GATEHOUSE_SCREENSHOT_DIR")
	if shots == "" {
		shots, _ = filepath.Abs(filepath.Join("out", "screenshots"))
	}
	_ = os.MkdirAll(shots, 0o755)

	o := Options{AuthRateLimit: "5/m", ProxyEnv: []string{"WEB_URL=http://" + web.Addr}}
	t.Run("go backend", func(t *testing.T) {
		// Access tokens of 4s: the page outlives its access cookie and must
		// renew it from the session.
		o := o
		o.JWTTTL = "4s"
		browseNext(t, StartStack(t, o), chromium, shots, "nextjs-go", true)
	})
	t.Run("fastapi backend", func(t *testing.T) {
		s, _ := startFastAPIStack(t, o)
		browseNext(t, s, chromium, shots, "nextjs-fastapi", false)
	})
}

// browseNext runs browser/nextjs.mjs against s; frontendCases adds the cases
// that do not depend on the backend (lost session, rate-limit wait).
func browseNext(t *testing.T, s *Stack, chromium, shots, prefix string, frontendCases bool) {
	other := s.NewUser(t)
	other.SignUp("other@example.com", pw)
	other.CreateTodo("other's secret")

	start := time.Now()
	cmd := exec.Command("node", "nextjs.mjs")
	cmd.Dir = "browser"
	cmd.Env = append(os.Environ(), "BASE_URL="+s.URL, "SCREENSHOT_DIR="+shots, "SHOT_PREFIX="+prefix,
		"CHROMIUM="+chromium, "OTHER_EMAIL=other@example.com", "OTHER_PASSWORD="+pw,
		fmt.Sprintf("FRONTEND_CASES=%d", map[bool]int{false: 0, true: 1}[frontendCases]), "ACCESS_TTL_MS=4000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
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
		Storage                string
		WrongPasswordMessage   string
		ExpiredMessage         string
		OtherUserTodos         []string
		RateLimitedMessage     string
		RenewedOnPage          string
		ConsoleErrors          []string
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil || err != nil || !res.OK {
		t.Fatalf("browser run failed: %v\nsteps %v\nerror %s\nstdout %s\nstderr %s", err, res.Steps, res.Error, out, stderr.String())
	}
	t.Logf("browser flow took %s; screenshots %s-*.png in %s", time.Since(start).Round(time.Millisecond), prefix, shots)
	if len(res.AfterReload) != 2 {
		t.Fatalf("after reload the page lists %+v, want two todos", res.AfterReload)
	}
	for _, td := range res.AfterReload {
		if want := td.Title == "buy milk"; td.Done != want {
			t.Errorf("after reload %q done=%v, want %v", td.Title, td.Done, want)
		}
	}
	if res.CookiesVisibleToScript != "" {
		t.Errorf("cookies readable by page script: %q (all must be HttpOnly)", res.CookiesVisibleToScript)
	}
	if strings.Contains(res.Storage, "ey") {
		t.Errorf("web storage looks like it holds a token: %s", res.Storage)
	}
	if res.WrongPasswordMessage != "Wrong email or password." {
		t.Errorf("wrong password shows %q", res.WrongPasswordMessage)
	}
	if frontendCases && res.RenewedOnPage != "/todos" {
		t.Errorf("after the access cookie expired the app went to %q, want to stay on /todos", res.RenewedOnPage)
	}
	if frontendCases && !strings.Contains(res.ExpiredMessage, "session has expired") {
		t.Errorf("lost session shows %q", res.ExpiredMessage)
	}
	if len(res.OtherUserTodos) != 1 || res.OtherUserTodos[0] != "other's secret" {
		t.Errorf("the other user sees %q, want only their own todo", res.OtherUserTodos)
	}
	if frontendCases && !strings.HasPrefix(res.RateLimitedMessage, "Too many attempts. Try again in ") {
		t.Errorf("rate-limited sign-in shows %q", res.RateLimitedMessage)
	}
	for _, e := range res.ConsoleErrors {
		if !strings.Contains(e, "401") && !strings.Contains(e, "429") { // the expected failed requests
			t.Errorf("console error in the Next.js app: %s", e)
		}
	}
}
