// Package verify applies Gatehouse's kustomize overlays to a running
// cluster (internal/cluster) the way the README tells a user to, and checks
// what the control plane made of them: admission without a warning, every
// workload rolled out, EndpointSlices on the right ports, disruption budgets
// and autoscalers bound to the right pods, and a rolling update that never
// drops below the desired number of available pods.
package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"gatehouse.dev/k8s/internal/cluster"
)

// Verifier runs checks against one cluster.
type Verifier struct {
	C    *cluster.Cluster
	Root string    // the repository: Makefile, k8s/
	Log  io.Writer // progress and findings
	// RolloutTimeout bounds each `kubectl rollout status`.
	RolloutTimeout time.Duration
	// Settle is how long the checks after a rollout are retried while
	// controllers catch up (default 30s).
	Settle time.Duration
}

func (v *Verifier) logf(format string, args ...any) { fmt.Fprintf(v.Log, format+"\n", args...) }

func (v *Verifier) kubectl(ctx context.Context, args ...string) ([]byte, error) {
	out, _, err := v.C.Kubectl(ctx, nil, args...)
	return out, err
}

// getJSON decodes `kubectl get ... -o json` into into.
func (v *Verifier) getJSON(ctx context.Context, into any, args ...string) error {
	out, err := v.kubectl(ctx, append(append([]string{"get"}, args...), "-o", "json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal(out, into)
}

// Apply runs `kubectl apply -k dir` and returns every warning the server
// (Pod Security's warn mode, deprecations) sent back.
func (v *Verifier) Apply(ctx context.Context, dir string) (warnings []string, err error) {
	start := time.Now()
	out, stderr, err := v.C.Kubectl(ctx, nil, "apply", "-k", dir)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(stderr), "\n") {
		if strings.TrimSpace(line) != "" {
			warnings = append(warnings, line)
		}
	}
	v.logf("kubectl apply -k %s: %d objects in %s", rel(v.Root, dir), bytes.Count(out, []byte("\n")), time.Since(start).Round(10*time.Millisecond))
	return warnings, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// GatewayCRDs applies the Gateway API standard-channel CRDs of the
// sigs.k8s.io/gateway-api version that the k8s module requires (the version
// the manifests are decoded against) and waits until they are Established.
func (v *Verifier) GatewayCRDs(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "sigs.k8s.io/gateway-api")
	cmd.Dir = filepath.Join(v.Root, "k8s")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download sigs.k8s.io/gateway-api: %w", err)
	}
	var mod struct{ Version, Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", err
	}
	crds := filepath.Join(mod.Dir, "config", "crd", "standard")
	if _, err := v.kubectl(ctx, "apply", "--server-side", "-f", crds); err != nil {
		return "", err
	}
	if _, err := v.kubectl(ctx, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"); err != nil {
		return "", err
	}
	v.logf("Gateway API %s standard CRDs established", mod.Version)
	return mod.Version, nil
}

// KindSecrets runs `make kind-secrets` with KUBECTL pointing at this cluster.
func (v *Verifier) KindSecrets(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "kind-secrets",
		"KUBECTL="+v.C.Bins.Kubectl+" --kubeconfig="+v.C.Kubeconfig)
	cmd.Dir = v.Root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("make kind-secrets: %w\n%s", err, out)
	}
	v.logf("make kind-secrets: namespace gatehouse and its Secrets created")
	return nil
}

// StaticVolume creates a PersistentVolume without a class, as an
// administrator pre-provisions one on a cluster without a dynamic
// provisioner, so the Postgres claim binds and its pod schedules.
func (v *Verifier) StaticVolume(ctx context.Context, name string) error {
	pv := fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata:
  name: %s
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  storageClassName: ""
  hostPath: {path: /var/lib/gatehouse-verify/%s}
`, name, name)
	_, _, err := v.C.Kubectl(ctx, []byte(pv), "apply", "-f", "-")
	return err
}

// CopyTree copies k8s/{base,components,overlays} into a new temporary
// directory, so wrapper overlays and mutations never touch the work tree.
func (v *Verifier) CopyTree() (string, error) {
	dir, err := os.MkdirTemp("", "gatehouse-k8s-tree-")
	if err != nil {
		return "", err
	}
	for _, sub := range []string{"base", "components", "overlays"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join(v.Root, "k8s", sub))); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// Wrap writes overlays/NAME/kustomization.yaml in tree: the overlay base
// plus extra kustomization lines (a namespace, image tags).
func Wrap(tree, name, base, extra string) (string, error) {
	dir := filepath.Join(tree, "overlays", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../" + base + "\n" + extra
	return dir, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644)
}

// Workload is a Deployment or StatefulSet as the checks see it.
type Workload struct {
	Kind, Name string
	Replicas   int32
	Selector   *metav1.LabelSelector
	Template   corev1.PodTemplateSpec
}

func (w Workload) String() string { return w.Kind + "/" + w.Name }

func (v *Verifier) workloads(ctx context.Context, ns string) ([]Workload, error) {
	var deps appsv1.DeploymentList
	if err := v.getJSON(ctx, &deps, "deployments", "-n", ns); err != nil {
		return nil, err
	}
	var stss appsv1.StatefulSetList
	if err := v.getJSON(ctx, &stss, "statefulsets", "-n", ns); err != nil {
		return nil, err
	}
	var out []Workload
	for _, d := range deps.Items {
		out = append(out, Workload{"Deployment", d.Name, deref(d.Spec.Replicas), d.Spec.Selector, d.Spec.Template})
	}
	for _, s := range stss.Items {
		out = append(out, Workload{"StatefulSet", s.Name, deref(s.Spec.Replicas), s.Spec.Selector, s.Spec.Template})
	}
	return out, nil
}

func deref(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// Result is what one namespace's check found.
type Result struct {
	Problems []string
	Report   []string
}

func (r *Result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}
func (r *Result) report(format string, args ...any) {
	r.Report = append(r.Report, fmt.Sprintf(format, args...))
}

// Check waits for every workload in ns to roll out (after the autoscalers
// have raised them to their minimum) and checks pods, EndpointSlices,
// disruption budgets, autoscalers and spread. since is when the apply
// started, for the rollout times.
func (v *Verifier) Check(ctx context.Context, ns string, since time.Time) *Result {
	r := &Result{}
	if err := v.waitAutoscalers(ctx, ns); err != nil {
		r.problem("%s: %v", ns, err)
	}
	ws, err := v.workloads(ctx, ns)
	if err != nil {
		r.problem("%s: %v", ns, err)
		return r
	}
	if len(ws) == 0 {
		r.problem("%s: no Deployment or StatefulSet", ns)
	}
	for _, w := range ws {
		_, err := v.kubectl(ctx, "rollout", "status", "-n", ns, strings.ToLower(w.Kind)+"/"+w.Name,
			fmt.Sprintf("--timeout=%ds", int(v.RolloutTimeout.Seconds())))
		if err != nil {
			r.problem("%s %s: rollout did not complete in %s: %s", ns, w, v.RolloutTimeout, firstLines(err.Error(), 3))
			continue
		}
		r.report("%s %s rolled out %s after apply", ns, w, time.Since(since).Round(100*time.Millisecond))
	}
	// Re-read: the autoscalers may have changed the replica counts.
	if ws, err = v.workloads(ctx, ns); err != nil {
		r.problem("%s: %v", ns, err)
		return r
	}
	// Controllers catch up asynchronously (EndpointSlices, disruption
	// budgets, autoscaler status): the checks are retried for a while and
	// the last round counts.
	var pods corev1.PodList
	last := &Result{}
	settle := v.Settle
	if settle == 0 {
		settle = 30 * time.Second
	}
	deadline := time.Now().Add(settle)
	for {
		last = &Result{}
		if err := v.getJSON(ctx, &pods, "pods", "-n", ns); err != nil {
			last.problem("%s: %v", ns, err)
		} else {
			v.checkPods(last, ns, ws, pods.Items)
			v.checkEndpoints(ctx, last, ns, pods.Items)
			v.checkPDBs(ctx, last, ns, ws, pods.Items)
			v.checkHPAs(ctx, last, ns, ws)
		}
		if len(last.Problems) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(2 * time.Second)
	}
	r.Problems = append(r.Problems, last.Problems...)
	r.Report = append(r.Report, last.Report...)
	v.events(ctx, r, ns, pods.Items)
	return r
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}

func selected(sel *metav1.LabelSelector, pods []corev1.Pod) []corev1.Pod {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil
	}
	var out []corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && s.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// checkPods: each workload has exactly its replicas, all Running and Ready,
// and a multi-replica workload is spread over more than one node.
func (v *Verifier) checkPods(r *Result, ns string, ws []Workload, pods []corev1.Pod) {
	for _, w := range ws {
		sel := selected(w.Selector, pods)
		ready := 0
		nodes := map[string]bool{}
		for _, p := range sel {
			if p.Status.Phase == corev1.PodRunning && podReady(p) {
				ready++
			}
			nodes[p.Spec.NodeName] = true
		}
		r.report("%s %s: %d/%d pods Running and Ready on %d node(s)", ns, w, ready, w.Replicas, len(nodes))
		if int32(ready) != w.Replicas || int32(len(sel)) != w.Replicas {
			r.problem("%s %s: %d pods, %d Ready, want %d", ns, w, len(sel), ready, w.Replicas)
		}
		if len(sel) > 1 && len(v.C.Nodes) > 1 && len(nodes) < 2 {
			r.problem("%s %s: %d replicas all on one node: topology spread did not spread them", ns, w, w.Replicas)
		}
	}
}

// containerPort resolves a Service target port against a pod the way the
// EndpointSlice controller does (containers, then native sidecars) and
// reports whether a container declares it.
func containerPort(p corev1.Pod, tp intstr.IntOrString) (int32, bool) {
	var cs []corev1.Container
	cs = append(cs, p.Spec.Containers...)
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			cs = append(cs, c)
		}
	}
	for _, c := range cs {
		for _, cp := range c.Ports {
			if (tp.Type == intstr.String && cp.Name == tp.StrVal) || (tp.Type == intstr.Int && cp.ContainerPort == tp.IntVal) {
				return cp.ContainerPort, true
			}
		}
	}
	if tp.Type == intstr.Int {
		return tp.IntVal, false
	}
	return 0, false
}

// checkEndpoints: every Service's EndpointSlices list exactly the Ready pods
// it selects, on ports that a container of each pod declares.
func (v *Verifier) checkEndpoints(ctx context.Context, r *Result, ns string, pods []corev1.Pod) {
	var svcs corev1.ServiceList
	if err := v.getJSON(ctx, &svcs, "services", "-n", ns); err != nil {
		r.problem("%s: %v", ns, err)
		return
	}
	var slices discoveryv1.EndpointSliceList
	if err := v.getJSON(ctx, &slices, "endpointslices", "-n", ns); err != nil {
		r.problem("%s: %v", ns, err)
		return
	}
	byName := map[string]corev1.Pod{}
	for _, p := range pods {
		byName[p.Name] = p
	}
	for _, s := range svcs.Items {
		sel := selected(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, pods)
		want := map[string]bool{}
		for _, p := range sel {
			if podReady(p) {
				want[p.Name] = true
			}
		}
		got := map[string]bool{}
		var ports []string
		for _, es := range slices.Items {
			if es.Labels[discoveryv1.LabelServiceName] != s.Name {
				continue
			}
			for _, ep := range es.Endpoints {
				if ep.TargetRef == nil || ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
					continue
				}
				got[ep.TargetRef.Name] = true
				pod, ok := byName[ep.TargetRef.Name]
				if !ok {
					r.problem("%s Service/%s: endpoint %s is not a pod here", ns, s.Name, ep.TargetRef.Name)
					continue
				}
				for _, esp := range es.Ports {
					name := deref2(esp.Name)
					for _, sp := range s.Spec.Ports {
						if sp.Name != name {
							continue
						}
						tp := sp.TargetPort
						if tp.Type == intstr.Int && tp.IntVal == 0 {
							tp = intstr.FromInt32(sp.Port)
						}
						cp, declared := containerPort(pod, tp)
						if !declared {
							r.problem("%s Service/%s port %s: EndpointSlice sends to %s:%d, which no container of the pod declares",
								ns, s.Name, name, pod.Name, deref3(esp.Port))
						} else if esp.Port == nil || *esp.Port != cp {
							r.problem("%s Service/%s port %s: EndpointSlice port %d, the pod's %s is %d", ns, s.Name, name, deref3(esp.Port), tp.String(), cp)
						}
					}
				}
			}
			for _, esp := range es.Ports {
				ports = append(ports, fmt.Sprintf("%s:%d", deref2(esp.Name), deref3(esp.Port)))
			}
		}
		sort.Strings(ports)
		ports = compact(ports)
		if len(want) == 0 {
			r.problem("%s Service/%s: selects no Ready pod", ns, s.Name)
		}
		if !equalSets(want, got) {
			r.problem("%s Service/%s: EndpointSlices list Ready pods %v, want %v", ns, s.Name, keys(got), keys(want))
		}
		r.report("%s Service/%s: %d Ready endpoints on %v", ns, s.Name, len(got), ports)
	}
}

func deref2(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func deref3(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func compact(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkPDBs: each budget covers exactly the pods of one workload, all
// healthy, and allows a disruption (a drain can proceed).
func (v *Verifier) checkPDBs(ctx context.Context, r *Result, ns string, ws []Workload, pods []corev1.Pod) {
	var pdbs policyv1.PodDisruptionBudgetList
	if err := v.getJSON(ctx, &pdbs, "poddisruptionbudgets", "-n", ns); err != nil {
		r.problem("%s: %v", ns, err)
		return
	}
	covered := map[string]bool{}
	for _, b := range pdbs.Items {
		sel := selected(b.Spec.Selector, pods)
		owner := ""
		for _, w := range ws {
			if len(selected(w.Selector, sel)) == len(sel) && len(sel) > 0 && int32(len(sel)) == w.Replicas {
				owner = w.String()
				covered[owner] = true
			}
		}
		st := b.Status
		switch {
		case st.ObservedGeneration != b.Generation:
			r.problem("%s PodDisruptionBudget/%s: not observed by the disruption controller", ns, b.Name)
		case owner == "":
			r.problem("%s PodDisruptionBudget/%s: selects %d pods, not exactly one workload's", ns, b.Name, len(sel))
		case st.ExpectedPods != int32(len(sel)) || st.CurrentHealthy != st.ExpectedPods:
			r.problem("%s PodDisruptionBudget/%s: expects %d pods, %d healthy; %d selected", ns, b.Name, st.ExpectedPods, st.CurrentHealthy, len(sel))
		case st.DisruptionsAllowed < 1:
			r.problem("%s PodDisruptionBudget/%s: allows no disruption (a node drain would hang)", ns, b.Name)
		}
		r.report("%s PodDisruptionBudget/%s → %s: %d/%d healthy, %d disruption(s) allowed", ns, b.Name, owner, st.CurrentHealthy, st.ExpectedPods, st.DisruptionsAllowed)
	}
	for _, w := range ws {
		if w.Replicas > 1 && !covered[w.String()] {
			r.problem("%s %s: %d replicas and no PodDisruptionBudget bound to its pods", ns, w, w.Replicas)
		}
	}
}

// waitAutoscalers waits until every HPA's target runs at least minReplicas.
func (v *Verifier) waitAutoscalers(ctx context.Context, ns string) error {
	deadline := time.Now().Add(v.RolloutTimeout)
	for {
		var hpas autoscalingv2.HorizontalPodAutoscalerList
		if err := v.getJSON(ctx, &hpas, "horizontalpodautoscalers", "-n", ns); err != nil {
			return err
		}
		var deps appsv1.DeploymentList
		if err := v.getJSON(ctx, &deps, "deployments", "-n", ns); err != nil {
			return err
		}
		var short []string
		for _, h := range hpas.Items {
			for _, d := range deps.Items {
				if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name &&
					deref(d.Spec.Replicas) < deref(h.Spec.MinReplicas) {
					short = append(short, d.Name)
				}
			}
		}
		if len(short) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("autoscalers did not raise %v to their minReplicas", short)
		}
		time.Sleep(time.Second)
	}
}

// checkHPAs: each autoscaler targets an existing Deployment, has read its
// scale (AbleToScale) and counts the Deployment's pods.
func (v *Verifier) checkHPAs(ctx context.Context, r *Result, ns string, ws []Workload) {
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	if err := v.getJSON(ctx, &hpas, "horizontalpodautoscalers", "-n", ns); err != nil {
		r.problem("%s: %v", ns, err)
		return
	}
	for _, h := range hpas.Items {
		ref := h.Spec.ScaleTargetRef
		var target *Workload
		for i := range ws {
			if ws[i].Kind == ref.Kind && ws[i].Name == ref.Name {
				target = &ws[i]
			}
		}
		if target == nil {
			r.problem("%s HorizontalPodAutoscaler/%s: target %s/%s does not exist", ns, h.Name, ref.Kind, ref.Name)
			continue
		}
		able, active := "", ""
		for _, c := range h.Status.Conditions {
			switch c.Type {
			case autoscalingv2.AbleToScale:
				able = string(c.Status) + " (" + c.Reason + ")"
			case autoscalingv2.ScalingActive:
				active = string(c.Status) + " (" + c.Reason + ")"
			}
		}
		if !strings.HasPrefix(able, "True") {
			r.problem("%s HorizontalPodAutoscaler/%s: AbleToScale %q", ns, h.Name, able)
		}
		if h.Status.CurrentReplicas != target.Replicas {
			r.problem("%s HorizontalPodAutoscaler/%s: counts %d replicas of %s, which has %d", ns, h.Name, h.Status.CurrentReplicas, target, target.Replicas)
		}
		r.report("%s HorizontalPodAutoscaler/%s → %s: %d replicas (min %d, max %d), AbleToScale %s, ScalingActive %s",
			ns, h.Name, target, h.Status.CurrentReplicas, deref(h.Spec.MinReplicas), h.Spec.MaxReplicas, able, active)
	}
}

// events reports Warning events that point at the manifests: pods refused
// by admission, unresolvable references.
func (v *Verifier) events(ctx context.Context, r *Result, ns string, pods []corev1.Pod) {
	readyNow := map[string]bool{}
	for _, p := range pods {
		readyNow[p.Name] = podReady(p)
	}
	var evs corev1.EventList
	if err := v.getJSON(ctx, &evs, "events", "-n", ns, "--field-selector=type=Warning"); err != nil {
		r.problem("%s: %v", ns, err)
		return
	}
	seen := map[string]bool{}
	for _, e := range evs.Items {
		// The simulation has no metrics server: the autoscalers say so.
		if e.InvolvedObject.Kind == "HorizontalPodAutoscaler" && strings.Contains(e.Reason, "Metric") {
			continue
		}
		// Transient: the scheduler tried postgres-0 before its claim bound.
		if e.InvolvedObject.Kind == "Pod" && e.Reason == "FailedScheduling" && readyNow[e.InvolvedObject.Name] {
			continue
		}
		// A namespace's first pods may race its default ServiceAccount;
		// the ReplicaSet retries.
		if strings.Contains(e.Message, `serviceaccount "default" not found`) {
			continue
		}
		line := fmt.Sprintf("%s %s/%s %s: %s", ns, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, firstLines(e.Message, 1))
		// The apiserver's ClusterIP repair loop can look at a Service
		// created between its listing of Services and of allocated
		// addresses, and allocate the address itself ("repairing"): a race
		// inside the apiserver (seen once in a fresh-clone run), not a
		// fault of the manifests. Reported, not judged.
		if e.InvolvedObject.Kind == "Service" && e.Reason == "ClusterIPNotAllocated" && strings.Contains(e.Message, "repairing") {
			if !seen[line] {
				seen[line] = true
				r.report("apiserver repaired a Service's ClusterIP allocation (its own race): %s", line)
			}
			continue
		}
		if !seen[line] {
			seen[line] = true
			r.problem("warning event: %s", line)
		}
	}
}
