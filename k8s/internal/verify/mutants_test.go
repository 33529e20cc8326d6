//go:build k8sverify

// The mutation tests of `make k8s-verify`: one control plane (built and
// started like cmd/k8sverify's), the clean production overlay as the
// control, then every mutant, each in a namespace of its own, must make
// the checks report what it broke. Built only with -tags k8sverify: it
// needs the cached Kubernetes binaries (minutes to build cold), so `make
// test` does not compile it; `make k8s-verify` runs it.
package verify

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/k8s/internal/cluster"
)

// mutant is a breakage and what the checks must say about it: every
// pattern must match some problem.
type mutant struct {
	Mutant
	want []string
}

var mutants = []mutant{
	{Mutant{Name: "web runs as root", File: "base/web.yaml",
		Old: "runAsUser: 65532", New: "runAsUser: 0"},
		[]string{`kubectl apply warned: .*would violate PodSecurity "restricted:latest": .*runAsUser=0`,
			`Deployment/web: rollout did not complete`,
			`ReplicaSet/web-\w+ FailedCreate: .*violates PodSecurity "restricted:latest"`}},
	{Mutant{Name: "todo pod allows privilege escalation", File: "base/todo.yaml",
		Old: "allowPrivilegeEscalation: false", New: "allowPrivilegeEscalation: true"},
		[]string{`would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false`,
			`Deployment/todo: rollout did not complete`}},
	{Mutant{Name: "proxy Service targets the backend's loopback port", File: "base/todo.yaml",
		Old: "targetPort: http", New: "targetPort: 8081"},
		[]string{`Service/proxy port http: EndpointSlice sends to todo-\S+:8081, which no container of the pod declares`}},
	{Mutant{Name: "web Service selects no pod", File: "base/web.yaml",
		Old: "  selector:\n    app.kubernetes.io/name: web\n  ports:", New: "  selector:\n    app.kubernetes.io/name: webb\n  ports:"},
		[]string{`Service/web: selects no Ready pod`}},
	{Mutant{Name: "web readiness probe never passes", File: "base/web.yaml",
		Old: "httpGet: {path: /readyz, port: http}", New: "httpGet: {path: /readyz, port: health}"},
		[]string{`Deployment/web: rollout did not complete`, `Deployment/web: 2 pods, 0 Ready, want 2`}},
	{Mutant{Name: "web rolls out with maxUnavailable 1", File: "base/web.yaml",
		Old: "maxUnavailable: 0", New: "maxUnavailable: 1", Update: true},
		[]string{`Deployment/web: [01] available during the rolling update, desired 2: capacity dropped`}},
	{Mutant{Name: "web budget selects no pod", File: "base/pdb.yaml",
		Old: "matchLabels:\n      app.kubernetes.io/name: web", New: "matchLabels:\n      app.kubernetes.io/name: webb"},
		[]string{`PodDisruptionBudget/web: selects 0 pods`, `Deployment/web: 2 replicas and no PodDisruptionBudget bound`}},
	{Mutant{Name: "authsvc autoscaler targets a missing Deployment", File: "base/hpa.yaml",
		Old: "    kind: Deployment\n    name: authsvc\n", New: "    kind: Deployment\n    name: authsvc-v2\n"},
		[]string{`HorizontalPodAutoscaler/authsvc: target Deployment/authsvc-v2 does not exist`}},
}

// logWriter sends progress lines to t.Log.
type logWriter struct {
	t  *testing.T
	mu sync.Mutex
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestMutants(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "k8s", "overlays", "production")); err != nil {
		t.Fatalf("repository root not at %s: %v", root, err)
	}
	ctx := t.Context()
	log := &logWriter{t: t}
	bins, err := cluster.EnsureBinaries(ctx, log)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Start(ctx, bins, cluster.Options{Nodes: 3, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for name, path := range c.Logs() {
				t.Logf("--- last lines of %s:\n%s", name, cluster.LogTail(path, 15))
			}
		}
		c.Stop()
	})
	// Each mutant is expected to fail its rollout: short bounds.
	v := &Verifier{C: c, Root: root, Log: log, RolloutTimeout: 30 * time.Second, Settle: 5 * time.Second}
	if _, err := v.GatewayCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	tree, err := v.CopyTree()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tree) })

	// The control: without a mutation, the same checks in the same cluster
	// find nothing, so what a mutant trips is the mutation.
	problems, err := v.ApplyMutated(ctx, tree, "mutant-control")
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("the clean production overlay failed the checks:\n%s", strings.Join(problems, "\n"))
	}

	t.Run("mutant", func(t *testing.T) {
		for i, m := range mutants {
			t.Run(m.Name, func(t *testing.T) {
				t.Parallel()
				ns := "mutant-" + string(rune('a'+i))
				start := time.Now()
				problems, err := v.ApplyMutated(ctx, tree, ns, m.Mutant)
				if err != nil {
					t.Fatal(err)
				}
				var all bytes.Buffer
				for _, p := range problems {
					all.WriteString(p + "\n")
				}
				for _, w := range m.want {
					re := regexp.MustCompile(w)
					if !re.Match(all.Bytes()) {
						t.Errorf("no problem matches %q; the checks reported:\n%s", w, all.String())
					}
				}
				// Caught for the right reason: the simulation itself held up.
				if strings.Contains(all.String(), "NodeNotReady") {
					t.Errorf("a simulated node went NotReady during the mutant's checks:\n%s", all.String())
				}
				if len(problems) == 0 {
					t.Fatal("survived: the checks reported nothing")
				}
				t.Logf("caught in %s: %d problem(s):\n%s", time.Since(start).Round(100*time.Millisecond), len(problems), all.String())
			})
		}
	})
}
