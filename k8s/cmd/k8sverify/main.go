// Command k8sverify is `make k8s-verify`: it runs a real Kubernetes control
// plane on loopback (etcd, kube-apiserver with RBAC and Pod Security
// admission, kube-controller-manager, kube-scheduler, and kwok's simulated
// nodes), applies the kind overlay and the production overlay the way the
// README tells a user to, and checks admission, rollouts, EndpointSlices,
// PodDisruptionBudgets, HorizontalPodAutoscalers and a rolling update.
// Everything it starts is stopped and removed at the end, on failure and on
// Ctrl-C too. That the checks can fail is internal/verify's mutation test
// (mutants_test.go), which `make k8s-verify` runs next. See
// docs/kubernetes.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gatehouse.dev/k8s/internal/cluster"
	"gatehouse.dev/k8s/internal/verify"
)

func main() {
	root := flag.String("root", ".", "the repository (holds the Makefile and k8s/)")
	nodes := flag.Int("nodes", 3, "simulated nodes")
	keep := flag.Bool("keep", false, "keep the state directory (logs, certificates) after the run")
	rollout := flag.Duration("rollout-timeout", 180*time.Second, "bound on each rollout")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, *root, *nodes, *keep, *rollout)
	stop()
	os.Exit(code)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "k8s-verify: "+format+"\n", args...)
}

func run(ctx context.Context, root string, nodes int, keep bool, rolloutTimeout time.Duration) int {
	root, err := filepath.Abs(root)
	if err != nil {
		logf("%v", err)
		return 2
	}
	if _, err := os.Stat(filepath.Join(root, "k8s", "overlays", "kind")); err != nil {
		logf("-root %s is not the repository: %v", root, err)
		return 2
	}
	log := prefixWriter{}
	t0 := time.Now()
	bins, err := cluster.EnsureBinaries(ctx, log)
	if err != nil {
		logf("%v", err)
		return 1
	}
	tBins := time.Since(t0)
	t1 := time.Now()
	c, err := cluster.Start(ctx, bins, cluster.Options{Nodes: nodes, Log: log, KeepDir: keep})
	if err != nil {
		logf("control plane: %v", err)
		return 1
	}
	defer c.Stop()
	tCluster := time.Since(t1)
	v := &verify.Verifier{C: c, Root: root, Log: log, RolloutTimeout: rolloutTimeout}
	var report, problems []string
	add := func(r *verify.Result) {
		report = append(report, r.Report...)
		problems = append(problems, r.Problems...)
	}
	fail := func(err error) int {
		logf("%v", err)
		if e := c.Alive(); e != nil {
			logf("%v", e)
		}
		return 1
	}

	// 1. What a user does: Gateway API CRDs, make kind-secrets, apply -k.
	gwVersion, err := v.GatewayCRDs(ctx)
	if err != nil {
		return fail(err)
	}
	// No dynamic provisioner here: one pre-provisioned volume for the
	// Postgres claim, as an administrator would create.
	if err := v.StaticVolume(ctx, "gatehouse-verify-postgres"); err != nil {
		return fail(err)
	}
	if err := v.KindSecrets(ctx); err != nil {
		return fail(err)
	}
	applyKind := time.Now()
	warnings, err := v.Apply(ctx, filepath.Join(root, "k8s", "overlays", "kind"))
	if err != nil {
		return fail(err)
	}
	for _, w := range warnings {
		problems = append(problems, "kubectl apply -k k8s/overlays/kind warned: "+w)
	}
	add(v.Check(ctx, "gatehouse", applyKind))

	// 2. A release: the same overlay with a new image tag.
	tree, err := v.CopyTree()
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tree)
	next, err := verify.Wrap(tree, "verify-next", "kind", images("localhost/gatehouse", "next"))
	if err != nil {
		return fail(err)
	}
	add(v.RollingUpdate(ctx, "gatehouse", next, "next"))

	// 3. The production overlay, in its own namespace, with the Secrets its
	// comment says are created out of band.
	prodNS := "gatehouse-production"
	if err := v.ProductionSecrets(ctx, prodNS); err != nil {
		return fail(err)
	}
	prod, err := verify.Wrap(tree, "verify-production", "production", "namespace: "+prodNS+"\n")
	if err != nil {
		return fail(err)
	}
	applyProd := time.Now()
	warnings, err = v.Apply(ctx, prod)
	if err != nil {
		return fail(err)
	}
	for _, w := range warnings {
		problems = append(problems, "kubectl apply -k (production) warned: "+w)
	}
	add(v.Check(ctx, prodNS, applyProd))

	add(v.Admitted(ctx, "gatehouse", prodNS))

	fmt.Printf("\nk8s-verify: Kubernetes %s, kwok %s, Gateway API %s, %d simulated nodes\n", cluster.KubeVersion, cluster.KwokVersion, gwVersion, nodes)
	fmt.Printf("binaries ready in %s, control plane up in %s\n", tBins.Round(100*time.Millisecond), tCluster.Round(100*time.Millisecond))
	for _, line := range report {
		fmt.Println("  " + line)
	}

	if len(problems) > 0 {
		fmt.Printf("\nk8s-verify FAILED: %d problem(s)\n", len(problems))
		for _, p := range problems {
			fmt.Println("  " + p)
		}
		for name, path := range c.Logs() {
			fmt.Printf("--- last lines of %s:\n%s\n", name, cluster.LogTail(path, 15))
		}
		return 1
	}
	fmt.Printf("k8s-verify passed in %s\n", time.Since(t0).Round(100*time.Millisecond))
	return 0
}

// images is a kustomization images: list giving every Gatehouse image tag.
func images(prefix, tag string) string {
	var b strings.Builder
	b.WriteString("images:\n")
	for _, s := range []string{"proxy", "backend", "authsvc", "web"} {
		fmt.Fprintf(&b, "  - name: %s/%s\n    newTag: %s\n", prefix, s, tag)
	}
	return b.String()
}

// prefixWriter writes progress lines to stderr.
type prefixWriter struct{}

func (prefixWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		fmt.Fprintln(os.Stderr, "k8s-verify: "+line)
	}
	return len(p), nil
}
