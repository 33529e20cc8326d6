// Package cluster runs a real Kubernetes control plane on loopback for
// `make k8s-verify`: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler built from the Go module proxy, and kwok managing
// simulated nodes. Everything listens on free 127.0.0.1 ports, keeps its
// state in one temporary directory, and is stopped and removed by Stop.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Versions of what is built. KubeVersion's k8s.io/kubernetes module
// requires its staging modules at v0.0.0 with replace directives to its own
// tree; the scratch module replaces each with its published StagingVersion.
const (
	KubeVersion    = "v1.34.4"
	StagingVersion = "v0.34.4"
	KwokVersion    = "v0.7.0"
	// EtcdVersion: Kubernetes 1.34 supports etcd 3.5 and later only. With
	// Debian's 3.4 the watch cache cannot ask for progress notifications
	// (RequestWatchProgress), watches that kwok and the controllers open
	// end, and rollouts stall.
	EtcdVersion = "v3.6.16"
)

// stagingModules are the k8s.io modules that k8s.io/kubernetes replaces
// with ./staging/src/k8s.io/<name> (its go.mod at KubeVersion).
var stagingModules = []string{
	"api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime",
	"client-go", "cloud-provider", "cluster-bootstrap", "code-generator",
	"component-base", "component-helpers", "controller-manager", "cri-api",
	"cri-client", "csi-translation-lib", "dynamic-resource-allocation",
	"endpointslice", "externaljwt", "kms", "kube-aggregator",
	"kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl",
	"kubelet", "metrics", "mount-utils", "pod-security-admission",
	"sample-apiserver", "sample-cli-plugin", "sample-controller",
}

var kubeCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"}

// Binaries are the absolute paths of every program the cluster runs.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Kubectl, Kwok string
}

// CacheDir is where built binaries are kept, per version:
// $XDG_CACHE_HOME/gatehouse (default ~/.cache/gatehouse).
func CacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "gatehouse"), nil
}

// EnsureBinaries builds etcd, the Kubernetes programs and kwok into the
// cache unless they are there already. Builds are serialised across processes
// with a lock file next to the output; log receives progress lines.
func EnsureBinaries(ctx context.Context, log io.Writer) (*Binaries, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	etcdDir := filepath.Join(cache, "etcd-"+EtcdVersion)
	if err := withLock(etcdDir, func() error { return buildEtcd(ctx, etcdDir, log) }); err != nil {
		return nil, err
	}
	kubeDir := filepath.Join(cache, "k8s-"+KubeVersion)
	if err := withLock(kubeDir, func() error { return buildKube(ctx, kubeDir, log) }); err != nil {
		return nil, err
	}
	kwokDir := filepath.Join(cache, "kwok-"+KwokVersion)
	if err := withLock(kwokDir, func() error { return buildKwok(ctx, kwokDir, log) }); err != nil {
		return nil, err
	}
	bin := func(dir, name string) string { return filepath.Join(dir, "bin", name) }
	return &Binaries{
		Etcd:              bin(etcdDir, "etcd"),
		APIServer:         bin(kubeDir, "kube-apiserver"),
		ControllerManager: bin(kubeDir, "kube-controller-manager"),
		Scheduler:         bin(kubeDir, "kube-scheduler"),
		Kubectl:           bin(kubeDir, "kubectl"),
		Kwok:              bin(kwokDir, "kwok"),
	}, nil
}

// withLock runs f holding an exclusive flock on dir/.lock, so two
// verifiers starting on a cold cache build once, not twice at once.
func withLock(dir string, f func() error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	return f()
}

func allExist(dir string, names ...string) bool {
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// buildKube builds kubeCommands from a scratch module outside any go.work:
// it requires k8s.io/kubernetes and replaces every staging module with its
// published version. The version is stamped in, or kubectl cannot parse the
// server's version. Binaries are written to a temporary name and renamed, so
// an interrupted build never leaves a half-written program in the cache.
func buildKube(ctx context.Context, dir string, log io.Writer) error {
	binDir := filepath.Join(dir, "bin")
	if allExist(binDir, kubeCommands...) {
		return nil
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	var mod strings.Builder
	fmt.Fprintf(&mod, "module gatehouse.dev/k8sbuild\n\ngo 1.24\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", KubeVersion)
	for _, m := range stagingModules {
		fmt.Fprintf(&mod, "\tk8s.io/%s => k8s.io/%s %s\n", m, m, StagingVersion)
	}
	mod.WriteString(")\n")
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod.String()), 0o644); err != nil {
		return err
	}
	minor := strings.Split(strings.TrimPrefix(KubeVersion, "v"), ".")[1]
	var ld []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld, "-X", pkg+".gitVersion="+KubeVersion, "-X", pkg+".gitMajor=1", "-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=clean")
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-trimpath", "-ldflags", strings.Join(ld, " "), "-o", tmp + "/"}
	for _, c := range kubeCommands {
		args = append(args, "k8s.io/kubernetes/cmd/"+c)
	}
	fmt.Fprintf(log, "building Kubernetes %s (%s) into %s: a few minutes, once\n", KubeVersion, strings.Join(kubeCommands, ", "), binDir)
	start := time.Now()
	if err := goCmd(ctx, src, log, nil, args...); err != nil {
		return fmt.Errorf("build Kubernetes %s: %w", KubeVersion, err)
	}
	if err := install(tmp, binDir, kubeCommands...); err != nil {
		return err
	}
	fmt.Fprintf(log, "built Kubernetes %s in %s\n", KubeVersion, time.Since(start).Round(time.Second))
	return nil
}

// buildEtcd builds etcd's server (go.etcd.io/etcd/server/v3, whose module
// root is the etcd main package) from a scratch module: its own go.mod has
// replace directives to its repository's tree, so `go install @version`
// refuses it, and a module that requires it resolves the published
// go.etcd.io/etcd/*/v3 modules instead.
func buildEtcd(ctx context.Context, dir string, log io.Writer) error {
	binDir := filepath.Join(dir, "bin")
	if allExist(binDir, "etcd") {
		return nil
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	mod := fmt.Sprintf("module gatehouse.dev/etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n", EtcdVersion)
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(log, "building etcd %s into %s: a minute or two, once\n", EtcdVersion, binDir)
	start := time.Now()
	if err := goCmd(ctx, src, log, nil, "build", "-trimpath", "-o", filepath.Join(tmp, "etcd"), "go.etcd.io/etcd/server/v3"); err != nil {
		return fmt.Errorf("build etcd %s: %w", EtcdVersion, err)
	}
	if err := install(tmp, binDir, "etcd"); err != nil {
		return err
	}
	fmt.Fprintf(log, "built etcd %s in %s\n", EtcdVersion, time.Since(start).Round(time.Second))
	return nil
}

// buildKwok installs sigs.k8s.io/kwok/cmd/kwok at KwokVersion into the cache.
func buildKwok(ctx context.Context, dir string, log io.Writer) error {
	binDir := filepath.Join(dir, "bin")
	if allExist(binDir, "kwok") {
		return nil
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(log, "building kwok %s into %s\n", KwokVersion, binDir)
	start := time.Now()
	if err := goCmd(ctx, tmp, log, []string{"GOBIN=" + tmp}, "install", "-trimpath", "sigs.k8s.io/kwok/cmd/kwok@"+KwokVersion); err != nil {
		return fmt.Errorf("build kwok %s: %w", KwokVersion, err)
	}
	if err := install(tmp, binDir, "kwok"); err != nil {
		return err
	}
	fmt.Fprintf(log, "built kwok %s in %s\n", KwokVersion, time.Since(start).Round(time.Second))
	return nil
}

func goCmd(ctx context.Context, dir string, log io.Writer, env []string, args ...string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("go is not on PATH")
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	// Outside the repository's workspace; -mod=mod lets go fill go.sum.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = log, log
	return cmd.Run()
}

// install moves the named programs from src into dst (same file system).
func install(src, dst string, names ...string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Rename(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
			return err
		}
	}
	return nil
}
