package verify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// deploymentWatch follows every Deployment in a namespace through
// `kubectl get -w -o json` and keeps, per Deployment, the fewest available
// and the most total pods it reported while watched.
type deploymentWatch struct {
	mu       sync.Mutex
	minAvail map[string]int32
	maxTotal map[string]int32
	events   int
	cmd      *exec.Cmd
	done     chan struct{}
}

func (v *Verifier) watchDeployments(ctx context.Context, ns string) (*deploymentWatch, error) {
	w := &deploymentWatch{minAvail: map[string]int32{}, maxTotal: map[string]int32{}, done: make(chan struct{})}
	w.cmd = exec.CommandContext(ctx, v.C.Bins.Kubectl, "--kubeconfig="+v.C.Kubeconfig,
		"get", "deployments", "-n", ns, "-w", "-o", "json")
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := w.cmd.Start(); err != nil {
		return nil, err
	}
	first := make(chan struct{})
	go func() {
		defer close(w.done)
		dec := json.NewDecoder(bufio.NewReader(out))
		once := sync.Once{}
		for {
			var d appsv1.Deployment
			if err := dec.Decode(&d); err != nil {
				if !errors.Is(err, io.EOF) {
					once.Do(func() { close(first) })
				}
				return
			}
			w.mu.Lock()
			w.events++
			a, seen := w.minAvail[d.Name]
			if !seen || d.Status.AvailableReplicas < a {
				w.minAvail[d.Name] = d.Status.AvailableReplicas
			}
			if d.Status.Replicas > w.maxTotal[d.Name] {
				w.maxTotal[d.Name] = d.Status.Replicas
			}
			w.mu.Unlock()
			once.Do(func() { close(first) })
		}
	}()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		w.stop()
		return nil, errors.New("kubectl get -w: no first event in 30s")
	}
	return w, nil
}

// stop ends the watch and reports whether it was still running: a watch
// that ended early saw only part of the rollout.
func (w *deploymentWatch) stop() (wasRunning bool) {
	select {
	case <-w.done:
	default:
		wasRunning = true
	}
	if w.cmd.Process != nil {
		_ = w.cmd.Process.Kill()
	}
	<-w.done
	_ = w.cmd.Wait()
	return wasRunning
}

// RollingUpdate applies dir (the same overlay with a new image tag) to ns
// and checks that every Deployment whose pods changed rolls out without
// ever having fewer available pods than desired (maxUnavailable: 0), and
// that every pod then runs image tag. The most pods seen is reported.
func (v *Verifier) RollingUpdate(ctx context.Context, ns, dir, tag string) *Result {
	r := &Result{}
	var deps appsv1.DeploymentList
	if err := v.getJSON(ctx, &deps, "deployments", "-n", ns); err != nil {
		r.problem("%v", err)
		return r
	}
	w, err := v.watchDeployments(ctx, ns)
	if err != nil {
		r.problem("%v", err)
		return r
	}
	start := time.Now()
	warnings, err := v.Apply(ctx, dir)
	if err != nil {
		w.stop()
		r.problem("%v", err)
		return r
	}
	for _, line := range warnings {
		r.problem("%s: kubectl apply (rolling update) warned: %s", ns, line)
	}
	var updated []string
	for _, d := range deps.Items {
		_, err := v.kubectl(ctx, "rollout", "status", "-n", ns, "deployment/"+d.Name,
			fmt.Sprintf("--timeout=%ds", int(v.RolloutTimeout.Seconds())))
		if err != nil {
			r.problem("%s Deployment/%s: rolling update did not complete: %s", ns, d.Name, firstLines(err.Error(), 3))
			continue
		}
		updated = append(updated, fmt.Sprintf("%s %s", d.Name, time.Since(start).Round(100*time.Millisecond)))
	}
	if !w.stop() {
		r.problem("%s: the Deployment watch (kubectl get -w) ended before the rolling update did: availability was not observed throughout", ns)
	}
	for _, d := range deps.Items {
		desired := deref(d.Spec.Replicas)
		surge := int32(0)
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil {
			surge = int32(ru.MaxSurge.IntValue())
		}
		if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
			continue // Redis: one replica, no rolling update by design
		}
		w.mu.Lock()
		minA, maxT := w.minAvail[d.Name], w.maxTotal[d.Name]
		w.mu.Unlock()
		r.report("%s Deployment/%s rolling update: available never below %d (desired %d), at most %d pods (maxSurge %d)",
			ns, d.Name, minA, desired, maxT, surge)
		if minA < desired {
			r.problem("%s Deployment/%s: %d available during the rolling update, desired %d: capacity dropped", ns, d.Name, minA, desired)
		}
		// Not a failure: maxSurge bounds the ReplicaSets' sizes, and each
		// ReplicaSet controller creates and deletes pods on its own (and the
		// status sums ReplicaSet statuses that may lag), so a pod more than
		// desired+maxSurge can be observed for a moment (seen once in ~10
		// runs: 4 for 2+1). Reported, not judged.
		if maxT > desired+surge {
			r.report("%s Deployment/%s: %d pods observed for a moment, more than %d+%d (transient; see rollout.go)", ns, d.Name, maxT, desired, surge)
		}
	}
	var pods struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct {
				InitContainers, Containers []struct{ Name, Image string }
			}
		}
	}
	if err := v.getJSON(ctx, &pods, "pods", "-n", ns); err != nil {
		r.problem("%v", err)
		return r
	}
	for _, p := range pods.Items {
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			if tag != "" && strings.Contains(c.Image, "gatehouse/") && !strings.HasSuffix(c.Image, ":"+tag) {
				r.problem("%s pod %s container %s: image %s after the update, want tag %s", ns, p.Metadata.Name, c.Name, c.Image, tag)
			}
		}
	}
	r.report("%s rolling update to tag %s: rolled out %s (time since apply); %d watch events", ns, tag, strings.Join(updated, ", "), w.events)
	return r
}
