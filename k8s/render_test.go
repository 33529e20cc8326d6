package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"gatehouse.dev/k8s/internal/kindsecrets"
)

// manifests is one rendered overlay, every object decoded into its typed
// Kubernetes struct.
type manifests struct {
	Namespaces   []*corev1.Namespace
	ConfigMaps   []*corev1.ConfigMap
	Secrets      []*corev1.Secret
	Services     []*corev1.Service
	Deployments  []*appsv1.Deployment
	StatefulSets []*appsv1.StatefulSet
	Ingresses    []*networkingv1.Ingress
	Policies     []*networkingv1.NetworkPolicy
	PDBs         []*policyv1.PodDisruptionBudget
	HPAs         []*autoscalingv2.HorizontalPodAutoscaler
	Gateways     []*gatewayv1.Gateway
	HTTPRoutes   []*gatewayv1.HTTPRoute
}

// overlay describes what differs between the overlays the checks run on.
type overlay struct {
	name string
	// externalSecrets are created outside the render (production's
	// External Secrets, cert-manager); references to them are allowed.
	externalSecrets []string
	// kindSecrets: the Secrets `make kind-secrets` creates are added to the
	// render (made exactly as the Makefile makes them), so every reference
	// to them, key included, is checked.
	kindSecrets bool
	// inClusterData: Postgres and Redis run in the namespace.
	inClusterData bool
}

var overlays = []overlay{
	{name: "kind", inClusterData: true, kindSecrets: true},
	{name: "production", externalSecrets: []string{"auth", "backend-db", "authsvc-db", "redis", "gatehouse-tls"}},
}

// render runs `kubectl kustomize` on a copy of k8s/ (so the kind overlay's
// generated secrets never land in the work tree) and returns the YAML.
func render(t *testing.T, name string) []byte {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed to render the overlays (kubectl kustomize): %v", err)
	}
	dir := t.TempDir()
	for _, sub := range []string{"base", "components", "overlays"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(sub)); err != nil {
			t.Fatalf("copy %s: %v", sub, err)
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(dir, "overlays", name))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize overlays/%s: %v\n%s", name, err, stderr.Bytes())
	}
	return out
}

// decode splits a multi-document stream and decodes every object strictly
// into its typed struct: an unknown field (a typo, a field of another API
// version) is an error, as is a kind this project does not expect.
func decode(stream []byte) (*manifests, error) {
	m := &manifests{}
	for i, doc := range bytes.Split(stream, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var tm struct{ APIVersion, Kind string }
		if err := json.Unmarshal(js, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var target any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			target = add(&m.Namespaces)
		case "v1 ConfigMap":
			target = add(&m.ConfigMaps)
		case "v1 Secret":
			target = add(&m.Secrets)
		case "v1 Service":
			target = add(&m.Services)
		case "apps/v1 Deployment":
			target = add(&m.Deployments)
		case "apps/v1 StatefulSet":
			target = add(&m.StatefulSets)
		case "networking.k8s.io/v1 Ingress":
			target = add(&m.Ingresses)
		case "networking.k8s.io/v1 NetworkPolicy":
			target = add(&m.Policies)
		case "policy/v1 PodDisruptionBudget":
			target = add(&m.PDBs)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			target = add(&m.HPAs)
		case "gateway.networking.k8s.io/v1 Gateway":
			target = add(&m.Gateways)
		case "gateway.networking.k8s.io/v1 HTTPRoute":
			target = add(&m.HTTPRoutes)
		default:
			return nil, fmt.Errorf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(target); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
	}
	return m, nil
}

// add appends a new zero object to *list and returns it for decoding into.
func add[T any](list *[]*T) *T {
	v := new(T)
	*list = append(*list, v)
	return v
}

// podTemplate is a workload's pod template with where it came from.
type podTemplate struct {
	owner string // "Deployment/todo"
	spec  *corev1.PodTemplateSpec
}

func (m *manifests) pods() []podTemplate {
	var out []podTemplate
	for _, d := range m.Deployments {
		out = append(out, podTemplate{"Deployment/" + d.Name, &d.Spec.Template})
	}
	for _, s := range m.StatefulSets {
		out = append(out, podTemplate{"StatefulSet/" + s.Name, &s.Spec.Template})
	}
	return out
}

// pod returns the template whose app.kubernetes.io/name is app.
func (m *manifests) pod(app string) *podTemplate {
	for _, p := range m.pods() {
		if p.spec.Labels[appLabel] == app {
			return &p
		}
	}
	return nil
}

const appLabel = "app.kubernetes.io/name"

func (m *manifests) configMap(name string) *corev1.ConfigMap {
	for _, c := range m.ConfigMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (m *manifests) secret(name string) *corev1.Secret {
	for _, s := range m.Secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// env resolves a container's environment variable the way the kubelet
// would from literal values and ConfigMaps in the render; secrets resolve
// to "<secret>".
func (m *manifests) env(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name != name {
			continue
		}
		if e.ValueFrom == nil {
			return e.Value, true
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			if cm := m.configMap(r.Name); cm != nil {
				v, ok := cm.Data[r.Key]
				return v, ok
			}
		}
		return "<secret>", true
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			if cm := m.configMap(ef.ConfigMapRef.Name); cm != nil {
				if v, ok := cm.Data[ef.Prefix+name]; ok {
					return v, true
				}
			}
		}
	}
	return "", false
}

// kindSecretsYAML makes the Secrets `make kind-secrets` creates, with the
// same commands (kindsecrets, then kubectl create secret --dry-run=client),
// from fresh random values in a temporary folder.
func kindSecretsYAML(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := kindsecrets.Write(dir); err != nil {
		t.Fatalf("kind secrets: %v", err)
	}
	var out bytes.Buffer
	for _, name := range kindsecrets.Names {
		cmd := exec.Command("kubectl", "create", "secret", "generic", name, "--namespace", "gatehouse",
			"--from-env-file", filepath.Join(dir, name+".env"), "--dry-run=client", "-o", "yaml")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl create secret %s: %v\n%s", name, err, stderr.Bytes())
		}
		out.WriteString("\n---\n")
		out.Write(b)
	}
	return out.Bytes()
}

func (o overlay) loadT(t *testing.T) (*manifests, []byte) {
	t.Helper()
	raw := render(t, o.name)
	if o.kindSecrets {
		raw = append(append(raw, '\n'), kindSecretsYAML(t)...)
	}
	m, err := decode(raw)
	if err != nil {
		t.Fatalf("overlays/%s: %v", o.name, err)
	}
	return m, raw
}

func joinLines(s []string) string { return "\n  " + strings.Join(s, "\n  ") }
