package k8s

import (
	"slices"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestOverlays renders every overlay with kubectl kustomize, decodes each
// object strictly into its typed struct and checks every invariant.
func TestOverlays(t *testing.T) {
	for _, o := range overlays {
		t.Run(o.name, func(t *testing.T) {
			m, _ := o.loadT(t)
			if len(m.Namespaces) != 1 || m.Namespaces[0].Name != "gatehouse" {
				t.Errorf("want exactly namespace gatehouse, got %d namespaces", len(m.Namespaces))
			}
			for _, line := range outsideNamespace(m) {
				t.Errorf("overlays/%s: %s is not in namespace gatehouse", o.name, line)
			}
			if p := check(m, o); len(p) > 0 {
				t.Errorf("overlays/%s breaks %d invariants:%s", o.name, len(p), joinLines(p))
			}
		})
	}
}

// TestDecodeIsStrict: a field the typed struct does not know is an error,
// not silently dropped.
func TestDecodeIsStrict(t *testing.T) {
	doc := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replica: 2\n"
	if _, err := decode([]byte(doc)); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("decode with unknown field spec.replica: err = %v, want it named", err)
	}
	if _, err := decode([]byte("apiVersion: example.com/v1\nkind: Widget\n")); err == nil {
		t.Error("decode of an unexpected kind: no error")
	}
}

// TestChecksCatchBreakage mutates a freshly decoded render, one invariant at
// a time, and asserts the checker names the breakage: each check can fail.
func TestChecksCatchBreakage(t *testing.T) {
	o := overlays[0] // kind: the fullest render
	_, raw := o.loadT(t)
	container := func(m *manifests, app, name string) *corev1.Container {
		pt := m.pod(app)
		for _, c := range allContainers(&pt.spec.Spec) {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no container %s in %s", name, app)
		return nil
	}
	policy := func(m *manifests, name string) *networkingv1.NetworkPolicy {
		for _, p := range m.Policies {
			if p.Name == name {
				return p
			}
		}
		t.Fatalf("no NetworkPolicy %s", name)
		return nil
	}
	f := false
	for _, tt := range []struct {
		name   string
		mutate func(m *manifests)
		want   string
	}{
		{"readiness probe removed", func(m *manifests) { container(m, "authsvc", "authsvc").ReadinessProbe = nil }, "no readiness probe"},
		{"liveness probe on wrong path", func(m *manifests) { container(m, "todo", "proxy").LivenessProbe.HTTPGet.Path = "/" }, "liveness probe on /"},
		{"probe on undeclared port", func(m *manifests) {
			container(m, "web", "web").ReadinessProbe.HTTPGet.Port = intstr.FromInt32(9999)
		}, "readiness probe port 9999"},
		{"memory limit removed", func(m *manifests) { delete(container(m, "todo", "backend").Resources.Limits, corev1.ResourceMemory) }, "no memory limit"},
		{"init container writable root", func(m *manifests) { container(m, "todo", "migrate").SecurityContext.ReadOnlyRootFilesystem = &f }, "readOnlyRootFilesystem"},
		{"capability added", func(m *manifests) {
			container(m, "redis", "redis").SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}, "capabilities"},
		{"privilege escalation", func(m *manifests) {
			container(m, "postgres", "postgres").SecurityContext.AllowPrivilegeEscalation = nil
		}, "allowPrivilegeEscalation"},
		{"seccomp unconfined", func(m *manifests) {
			pt := m.pod("web")
			pt.spec.Spec.SecurityContext.SeccompProfile = nil
			container(m, "web", "web").SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}, "seccomp"},
		{"root allowed", func(m *manifests) {
			m.pod("authsvc").spec.Spec.SecurityContext.RunAsNonRoot = nil
			container(m, "authsvc", "authsvc").SecurityContext.RunAsNonRoot = nil
		}, "may run as root"},
		{"service selects nothing", func(m *manifests) { m.Services[0].Spec.Selector = map[string]string{appLabel: "nobody"} }, "selects no pod"},
		{"service targets undeclared port", func(m *manifests) {
			for _, s := range m.Services {
				if s.Name == "proxy" {
					s.Spec.Ports[0].TargetPort = intstr.FromInt32(8081)
				}
			}
		}, "targets 8081"},
		{"route to missing service port", func(m *manifests) {
			p := int32(8084)
			m.HTTPRoutes[0].Spec.Rules[1].BackendRefs[0].Port = &p
		}, "backend web:8084 is not a Service port"},
		{"route /api to web", func(m *manifests) { m.HTTPRoutes[0].Spec.Rules[0].BackendRefs[0].Name = "web" }, `/api goes to "web"`},
		{"ingress to missing service", func(m *manifests) {
			m.Ingresses[0].Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "nothing"
		}, "backend nothing:http is not a Service port"},
		{"missing secret", func(m *manifests) {
			container(m, "authsvc", "authsvc").Env[1].ValueFrom.SecretKeyRef.Name = "nope"
		}, `Secret "nope" does not exist`},
		{"mail secret required", func(m *manifests) {
			for _, e := range container(m, "authsvc", "authsvc").Env {
				if e.Name == "SMTP_URL" {
					*e.ValueFrom.SecretKeyRef.Optional = false
				}
			}
		}, `Secret "smtp" does not exist`},
		{"missing configmap key", func(m *manifests) {
			container(m, "todo", "proxy").Env[0].ValueFrom.ConfigMapKeyRef.Key = "NOPE"
		}, `has no key "NOPE"`},
		{"backend on all interfaces", func(m *manifests) { m.configMap(cmName(m, "backend")).Data["BACKEND_ADDR"] = ":8081" }, "want a loopback address"},
		{"backend port exposed", func(m *manifests) {
			c := container(m, "todo", "backend")
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: "http", ContainerPort: 8081})
		}, "declares its loopback port"},
		{"image tag drift", func(m *manifests) { container(m, "authsvc", "authsvc").Image = "localhost/gatehouse/authsvc:old" }, "prefix/tag combinations"},
		{"migration on another image", func(m *manifests) { container(m, "todo", "migrate").Image = "localhost/gatehouse/proxy:dev" }, "migrate image"},
		{"no default deny", func(m *manifests) {
			policy(m, "default-deny").Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		}, "no default deny"},
		{"no DNS", func(m *manifests) { policy(m, "allow-dns").Spec.Egress = nil }, "no DNS egress"},
		{"web may reach postgres", func(m *manifests) {
			pg := policy(m, "postgres")
			pg.Spec.Ingress[0].From = append(pg.Spec.Ingress[0].From, networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}})
			w := policy(m, "web")
			w.Spec.Egress = append(w.Spec.Egress, networkingv1.NetworkPolicyEgressRule{})
		}, "allows web->postgres:5432"},
		{"authsvc cut from postgres", func(m *manifests) { policy(m, "authsvc").Spec.Egress = nil }, "denies authsvc->postgres:5432"},
		{"pdb removed", func(m *manifests) { m.PDBs = m.PDBs[1:] }, "no PodDisruptionBudget"},
		{"proxy as a main container", func(m *manifests) {
			ps := &m.pod("todo").spec.Spec
			for i, c := range ps.InitContainers {
				if c.Name == "proxy" {
					c.RestartPolicy = nil
					ps.Containers = append([]corev1.Container{c}, ps.Containers...)
					ps.InitContainers = append(ps.InitContainers[:i], ps.InitContainers[i+1:]...)
					break
				}
			}
		}, "proxy is a main container"},
		{"proxy sidecar that must exit", func(m *manifests) { container(m, "todo", "proxy").RestartPolicy = nil }, "no restartPolicy Always"},
		{"GOMEMLIMIT removed", func(m *manifests) {
			c := container(m, "todo", "backend")
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
		}, "container backend: GOMEMLIMIT"},
		{"GOMEMLIMIT of another container", func(m *manifests) {
			for _, e := range container(m, "authsvc", "authsvc").Env {
				if e.Name == "GOMEMLIMIT" {
					e.ValueFrom.ResourceFieldRef.Resource = "requests.memory"
				}
			}
		}, "container authsvc: GOMEMLIMIT"},
		{"autoscaler removed", func(m *manifests) {
			m.HPAs = slices.DeleteFunc(m.HPAs, func(h *autoscalingv2.HorizontalPodAutoscaler) bool { return h.Name == "authsvc" })
		}, "Deployment/authsvc: no HorizontalPodAutoscaler"},
		{"replicas fight the autoscaler", func(m *manifests) {
			two := int32(2)
			for _, d := range m.Deployments {
				if d.Name == "todo" {
					d.Spec.Replicas = &two
				}
			}
		}, "sets replicas"},
		{"no spread", func(m *manifests) { m.pod("web").spec.Spec.TopologySpreadConstraints = nil }, "Deployment/web: no topology spread"},
		{"grace period too short", func(m *manifests) {
			g := int64(50) // covers the backend (35s), not the proxy sidecar after it (20s)
			m.pod("todo").spec.Spec.TerminationGracePeriodSeconds = &g
		}, "terminationGracePeriodSeconds 50"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if p := check(m, o); len(p) > 0 {
				t.Fatalf("render is not clean before the mutation:%s", joinLines(p))
			}
			tt.mutate(m)
			p := check(m, o)
			for _, line := range p {
				if strings.Contains(line, tt.want) {
					return
				}
			}
			t.Errorf("checker did not report %q; it reported:%s", tt.want, joinLines(p))
		})
	}
}

// cmName returns the generated (hash-suffixed) name of ConfigMap base.
func cmName(m *manifests, base string) string {
	for _, c := range m.ConfigMaps {
		if strings.HasPrefix(c.Name, base+"-") && len(c.Name) == len(base)+11 {
			return c.Name
		}
	}
	return base
}

// outsideNamespace lists the namespaced objects not in namespace gatehouse.
func outsideNamespace(m *manifests) []string {
	var out []string
	ck := func(kind string, om metav1.ObjectMeta) {
		if om.Namespace != "gatehouse" {
			out = append(out, kind+"/"+om.Name)
		}
	}
	for _, o := range m.ConfigMaps {
		ck("ConfigMap", o.ObjectMeta)
	}
	for _, o := range m.Secrets {
		ck("Secret", o.ObjectMeta)
	}
	for _, o := range m.Services {
		ck("Service", o.ObjectMeta)
	}
	for _, o := range m.Deployments {
		ck("Deployment", o.ObjectMeta)
	}
	for _, o := range m.StatefulSets {
		ck("StatefulSet", o.ObjectMeta)
	}
	for _, o := range m.Ingresses {
		ck("Ingress", o.ObjectMeta)
	}
	for _, o := range m.Policies {
		ck("NetworkPolicy", o.ObjectMeta)
	}
	for _, o := range m.PDBs {
		ck("PodDisruptionBudget", o.ObjectMeta)
	}
	for _, o := range m.Gateways {
		ck("Gateway", o.ObjectMeta)
	}
	for _, o := range m.HTTPRoutes {
		ck("HTTPRoute", o.ObjectMeta)
	}
	return out
}
