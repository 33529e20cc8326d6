package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
)

// TestContainerFlow builds the real Dockerfile with podman and runs the todo
// pod the way Kubernetes would: backend and proxy in one pod (one network
// namespace, the backend on loopback), `backend migrate` first as the init
// container does, authsvc in its own container, every container read-only,
// non-root and without capabilities. Then sign-up → token → todo through the
// proxy's port.
//
// This machine can pull no base image, so the Go image is made from the
// installed toolchain plus a static busybox, the runtime image is scratch,
// and module downloads come from the host's module cache through a file://
// GOPROXY (build-time volume): the Dockerfile itself is unchanged.
func TestContainerFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("container build and run: not in -short")
	}
	root, _ := filepath.Abs("..")
	for _, svc := range []string{"proxy", "backend", "authsvc", "web"} {
		if _, err := os.Stat(filepath.Join(root, svc, "main.go")); err != nil {
			t.Fatalf("service %s is not written yet (%s/main.go missing): the container flow needs all four images", svc, svc)
		}
	}
	pm := ensurePodman(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	goImage := ensureGoImage(ctx, t, pm)
	// The build reads modules from the host cache: fill it for the workspace.
	mustRun(ctx, t, root, "go", "mod", "download")
	modcache := strings.TrimSpace(mustRun(ctx, t, root, "go", "env", "GOMODCACHE"))
	// The host's build cache too, mounted where the Dockerfile points GOCACHE:
	// the host compiled the same packages with the same flags (-trimpath,
	// CGO_ENABLED=0), so the image build reuses them instead of compiling
	// every dependency again. The Dockerfile itself is unchanged.
	gocache := strings.TrimSpace(mustRun(ctx, t, root, "go", "env", "GOCACHE"))

	tag := fmt.Sprintf("test%d", os.Getpid())
	images := map[string]string{}
	for _, svc := range []string{"backend", "proxy", "authsvc", "web"} {
		img := "localhost/gatehouse/" + svc + ":" + tag
		start := time.Now()
		pm.run(ctx, t, "build", "--target", svc, "-t", img,
			"--build-arg", "GO_IMAGE="+goImage, "--build-arg", "RUNTIME_IMAGE=scratch",
			"--build-arg", "GOPROXY=file:///modcache", "--build-arg", "GOSUMDB=off",
			"-v", filepath.Join(modcache, "cache", "download")+":/modcache:ro",
			"-v", gocache+":/cache/go-build", root)
		t.Logf("built %s in %s", img, time.Since(start).Round(time.Second))
		images[svc] = img
		t.Cleanup(func() { pm.quiet("rmi", "-f", img) })
		// No shell in the final images: running one must fail.
		if out, err := exec.Command(pm.bin, pm.args([]string{"run", "--rm", "--entrypoint", "/bin/sh", img, "-c", "true"})...).CombinedOutput(); err == nil {
			t.Errorf("the %s image runs /bin/sh: %s", svc, out)
		}
	}

	public := "http://localhost:" + freePort(t)
	proxyAddr := "127.0.0.1:" + public[strings.LastIndex(public, ":")+1:]
	backendAddr := "127.0.0.1:" + freePort(t)
	authsvcAddr := "127.0.0.1:" + freePort(t)
	backendDB, authsvcDB := testenv.Database(t), testenv.Database(t)
	redisURL := "redis://" + testenv.RedisAddr(t) + "/0"

	// Postgres and Redis run on the host's loopback, so the containers share
	// the host's network namespace; the pod still gives proxy and backend one
	// namespace, as in Kubernetes.
	name := fmt.Sprintf("gatehouse-test-%d", os.Getpid())
	pm.run(ctx, t, "pod", "create", "--name", name, "--network", "host")
	t.Cleanup(func() { pm.quiet("pod", "rm", "-f", "-t", "2", name) })
	common := []string{"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--user", "65532:65532", "-e", "LOG_LEVEL=info", "-e", "DRAIN_DELAY=0s"}
	backendEnv := []string{"-e", "BACKEND_ADDR=" + backendAddr, "-e", "BACKEND_METRICS_ADDR=", "-e", "DATABASE_URL=" + backendDB}

	// The init container: migrate, exit 0.
	args := append(append([]string{"run", "--rm", "--pod", name}, common...), backendEnv...)
	pm.run(ctx, t, append(args, images["backend"], "migrate")...)

	args = append(append([]string{"run", "-d", "--name", name + "-authsvc", "--network", "host"}, common...),
		"-e", "AUTHSVC_ADDR="+authsvcAddr, "-e", "AUTHSVC_METRICS_ADDR=", "-e", "DATABASE_URL="+authsvcDB,
		"-e", "REDIS_URL="+redisURL, "-e", "AUTH_BASE_URL="+public,
		"-e", "AUTH_SECRET=container-test-secret-0123456789abcdef", images["authsvc"])
	pm.run(ctx, t, args...)
	t.Cleanup(func() { pm.logsOnFailure(t, name+"-authsvc"); pm.quiet("rm", "-f", "-t", "2", name+"-authsvc") })

	args = append(append([]string{"run", "-d", "--name", name + "-backend", "--pod", name}, common...), backendEnv...)
	pm.run(ctx, t, append(args, images["backend"])...)
	t.Cleanup(func() { pm.logsOnFailure(t, name+"-backend") })

	args = append(append([]string{"run", "-d", "--name", name + "-proxy", "--pod", name}, common...),
		"-e", "PROXY_ADDR="+proxyAddr, "-e", "PROXY_METRICS_ADDR=",
		"-e", "BACKEND_URL=http://"+backendAddr, "-e", "AUTHSVC_URL=http://"+authsvcAddr,
		"-e", "REDIS_URL="+redisURL, "-e", "JWT_ISSUER="+public, "-e", "JWT_AUDIENCE="+public, images["proxy"])
	pm.run(ctx, t, args...)
	t.Cleanup(func() { pm.logsOnFailure(t, name+"-proxy") })

	waitReady(ctx, t, "http://"+authsvcAddr+"/readyz")
	waitReady(ctx, t, "http://"+backendAddr+"/readyz")
	waitReady(ctx, t, "http://"+proxyAddr+"/readyz")
	todoFlow(t, "http://"+proxyAddr, public)
}

// todoFlow: sign up, exchange the session for a JWT, create and list a todo.
func todoFlow(t *testing.T, base, origin string) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body := `{"name":"A","email":"a@example.com","password":"correct horse battery"}`
	req, _ := http.NewRequest("POST", base+"/api/auth/sign-up/email", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	var signUp struct {
		Token string          `json:"token"`
		User  json.RawMessage `json:"user"`
	}
	resp := do(t, c, req, http.StatusOK, &signUp)
	names := map[string]bool{}
	for _, ck := range resp.Cookies() {
		names[ck.Name] = true
	}
	if signUp.Token == "" || len(signUp.User) == 0 || !names["better-auth.session_token"] || !names["better-auth.access_token"] {
		t.Fatalf("sign-up: token %q, user %s, cookies %v: want token, user and both cookies", signUp.Token, signUp.User, names)
	}

	// Only the session cookie: the token endpoint must work from it alone.
	req, _ = http.NewRequest("GET", base+"/api/auth/token", nil)
	for _, ck := range resp.Cookies() {
		if ck.Name == "better-auth.session_token" {
			req.AddCookie(ck)
		}
	}
	var tok struct{ Token string }
	do(t, &http.Client{Timeout: 10 * time.Second}, req, http.StatusOK, &tok)
	if strings.Count(tok.Token, ".") != 2 {
		t.Fatalf("GET /api/auth/token: %q is not a JWT", tok.Token)
	}

	bearer := &http.Client{Timeout: 10 * time.Second}
	req, _ = http.NewRequest("POST", base+"/api/v1/todos", strings.NewReader(`{"title":"milk"}`))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	do(t, bearer, req, http.StatusCreated, nil)

	req, _ = http.NewRequest("GET", base+"/api/v1/todos", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	var list []struct{ Title string }
	do(t, bearer, req, http.StatusOK, &list)
	if len(list) != 1 || list[0].Title != "milk" {
		t.Fatalf("GET /api/v1/todos = %+v, want one todo \"milk\"", list)
	}
}

func do(t *testing.T, c *http.Client, req *http.Request, want int, into any) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", req.Method, req.URL.Path, resp.StatusCode, buf.String(), want)
	}
	if into != nil {
		if err := json.Unmarshal(buf.Bytes(), into); err != nil {
			t.Fatalf("%s %s: %v in %s", req.Method, req.URL.Path, err, buf.String())
		}
	}
	return resp
}

// podman runs podman with what this machine needs: runc, because crun
// refuses the host's hybrid cgroup layout ("cgroups in hybrid mode not
// supported"), and rlimits at or below the test's own, because the
// container's may not exceed them (setrlimit: operation not permitted).
type podman struct {
	bin   string
	flags []string // global
	limit []string // for build and run
}

func ensurePodman(t *testing.T) *podman {
	t.Helper()
	if err := devenv.Install(devenv.TestPackages["podman"]...); err != nil {
		t.Fatalf("install podman: %v", err)
	}
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Fatalf("podman still missing after installation: %v", err)
	}
	pm := &podman{bin: bin}
	if _, err := exec.LookPath("runc"); err == nil {
		pm.flags = []string{"--runtime", "runc"}
	}
	var nofile, nproc syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	_ = syscall.Getrlimit(rlimitNPROC, &nproc)
	// NPROC at the full limit is refused too (seen here at 96365): half.
	np := min(nproc.Cur/2, 32768)
	// The pod's infra container takes no --ulimit flag: give every
	// container these limits through a private containers.conf.
	conf := filepath.Join(t.TempDir(), "containers.conf")
	cfg := fmt.Sprintf("[containers]\ndefault_ulimits = [\"nofile=%d:%d\", \"nproc=%d:%d\"]\n", nofile.Cur, nofile.Cur, np, np)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONTAINERS_CONF", conf)
	pm.limit = []string{"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Cur, nofile.Cur),
		"--ulimit", fmt.Sprintf("nproc=%d:%d", np, np)}
	return pm
}

const rlimitNPROC = 6 // syscall has no name for it on linux/amd64

func (p *podman) args(a []string) []string {
	out := append([]string{}, p.flags...)
	out = append(out, a[0])
	if a[0] == "build" || a[0] == "run" {
		out = append(out, p.limit...)
	}
	return append(out, a[1:]...)
}

func (p *podman) run(ctx context.Context, t *testing.T, a ...string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, p.bin, p.args(a)...).CombinedOutput()
	if err != nil {
		if len(out) > 6000 {
			out = out[len(out)-6000:]
		}
		t.Fatalf("podman %s: %v\n%s", strings.Join(a[:min(len(a), 4)], " "), err, out)
	}
	return string(out)
}

func (p *podman) quiet(a ...string) {
	_ = exec.Command(p.bin, p.args(a)...).Run()
}

func (p *podman) logsOnFailure(t *testing.T, container string) {
	if t.Failed() {
		out, _ := exec.Command(p.bin, "logs", "--tail", "40", container).CombinedOutput()
		t.Logf("logs of %s:\n%s", container, out)
	}
}

// ensureGoImage makes localhost/gatehouse-go:<go version> from the installed
// toolchain and a static busybox (for the Dockerfile's find/rm), once: the tag
// caches it across runs.
func ensureGoImage(ctx context.Context, t *testing.T, pm *podman) string {
	t.Helper()
	img := "localhost/gatehouse-go:" + runtime.Version()
	if exec.Command(pm.bin, "image", "exists", img).Run() == nil {
		return img
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("a static busybox is needed for the local Go image (apt-get install busybox-static): %v", err)
	}
	goroot := runtime.GOROOT()
	dir := t.TempDir()
	for _, d := range []string{"bin", "tmp", "root", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	mustRun(ctx, t, "", "cp", bb, filepath.Join(dir, "bin", "busybox"))
	for _, a := range []string{"sh", "find", "rm", "rmdir", "ls", "cat", "mkdir", "cp", "env"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`tar -c -C %q . -C / %q | %q import --change 'ENV PATH=%s/bin:/bin' --change 'ENV HOME=/root' --change 'ENV GOTOOLCHAIN=local' - %q`,
		dir, strings.TrimPrefix(goroot, "/"), pm.bin, goroot, img)
	mustRun(ctx, t, "", "sh", "-c", script)
	return img
}

func mustRun(ctx context.Context, t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// freePort is a port outside the ephemeral range (testenv.FreeAddr): a port
// from net.Listen(":0") was taken by an outgoing connection in the seconds
// before the proxy's container bound it ("address already in use").
func freePort(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(testenv.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func waitReady(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 60s", url)
}
