package k8s

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// renderDir runs `kubectl kustomize` on dir (relative to k8s/) and returns
// its objects as generic maps, by kind.
func renderDir(t *testing.T, dir string) map[string][]json.RawMessage {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed to render %s (kubectl kustomize): %v", dir, err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.Bytes())
	}
	byKind := map[string][]json.RawMessage{}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		var tm struct{ Kind string }
		if err := json.Unmarshal(js, &tm); err != nil {
			t.Fatal(err)
		}
		byKind[tm.Kind] = append(byKind[tm.Kind], js)
	}
	return byKind
}

func strictInto(t *testing.T, js json.RawMessage, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode: %v\n%s", err, js)
	}
}

// TestSidecarExample: the sidecar component, applied by the worked example,
// adds the proxy to the annotated Deployment, wired to ConfigMaps that
// exist, with the Service pointing at the proxy and the app on loopback.
func TestSidecarExample(t *testing.T) {
	objs := renderDir(t, "examples/sidecar")
	if len(objs["Deployment"]) != 1 || len(objs["Service"]) != 1 {
		t.Fatalf("want one Deployment and one Service, got %d and %d", len(objs["Deployment"]), len(objs["Service"]))
	}
	var d appsv1.Deployment
	strictInto(t, objs["Deployment"][0], &d)
	var svc corev1.Service
	strictInto(t, objs["Service"][0], &svc)
	cms := map[string]corev1.ConfigMap{}
	for _, js := range objs["ConfigMap"] {
		var cm corev1.ConfigMap
		strictInto(t, js, &cm)
		cms[cm.Name] = cm
	}

	ps := d.Spec.Template.Spec
	var proxy, app *corev1.Container
	for i := range ps.Containers {
		switch ps.Containers[i].Name {
		case "gatehouse-proxy":
			proxy = &ps.Containers[i]
		case "app":
			app = &ps.Containers[i]
		}
	}
	if proxy == nil || app == nil {
		t.Fatalf("containers %v: want the app and gatehouse-proxy", ps.Containers)
	}
	if !strings.HasSuffix(strings.Split(proxy.Image, ":")[0], "gatehouse/proxy") {
		t.Errorf("proxy image %q", proxy.Image)
	}
	if len(app.Ports) != 0 {
		t.Errorf("the app declares ports %v: it must only listen on loopback", app.Ports)
	}
	env := cms[proxy.EnvFrom[0].ConfigMapRef.Name]
	if env.Name == "" {
		t.Fatalf("proxy envFrom names ConfigMap %q, which is not rendered", proxy.EnvFrom[0].ConfigMapRef.Name)
	}
	for _, k := range []string{"PROXY_ROUTES_FILE", "BACKEND_URL", "JWT_ISSUER", "JWT_AUDIENCE"} {
		if env.Data[k] == "" {
			t.Errorf("proxy environment lacks %s", k)
		}
	}
	if !strings.HasPrefix(env.Data["BACKEND_URL"], "http://127.0.0.1:") {
		t.Errorf("BACKEND_URL %q: want the app on loopback", env.Data["BACKEND_URL"])
	}
	var routesCM string
	for _, v := range ps.Volumes {
		if v.ConfigMap != nil {
			routesCM = v.ConfigMap.Name
		}
	}
	routes, ok := cms[routesCM]
	if !ok || !strings.Contains(routes.Data["routes.yaml"], env.Data["BACKEND_URL"]) {
		t.Errorf("routes ConfigMap %q missing or not routing to BACKEND_URL %s", routesCM, env.Data["BACKEND_URL"])
	}
	if len(proxy.VolumeMounts) != 1 || !strings.HasPrefix(env.Data["PROXY_ROUTES_FILE"], proxy.VolumeMounts[0].MountPath+"/") || proxy.VolumeMounts[0].SubPath != "" {
		t.Errorf("routes file %q not under the mounted directory %v (a subPath mount would never see updates)", env.Data["PROXY_ROUTES_FILE"], proxy.VolumeMounts)
	}
	if got := svc.Spec.Ports[0].TargetPort.String(); got != "gatehouse" {
		t.Errorf("Service targets %q, want the proxy's port gatehouse", got)
	}
	if proxy.ReadinessProbe == nil || proxy.ReadinessProbe.HTTPGet == nil || proxy.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("the proxy has no /readyz readiness probe")
	}
}

// TestForwardAuthExample renders and names what the docs promise.
func TestForwardAuthExample(t *testing.T) {
	objs := renderDir(t, "examples/forward-auth")
	for kind, n := range map[string]int{"Deployment": 1, "Service": 1, "Ingress": 1, "HTTPRoute": 1, "SecurityPolicy": 1} {
		if len(objs[kind]) != n {
			t.Errorf("%d %s, want %d", len(objs[kind]), kind, n)
		}
	}
	if len(objs["Ingress"]) == 1 && !bytes.Contains(objs["Ingress"][0], []byte(`"nginx.ingress.kubernetes.io/auth-url":"http://gatehouse-verify.`)) {
		t.Error("the Ingress does not send auth-url to the verify Service")
	}
	if len(objs["SecurityPolicy"]) == 1 && !bytes.Contains(objs["SecurityPolicy"][0], []byte(`"name":"gatehouse-verify"`)) {
		t.Error("the SecurityPolicy does not call the verify Service")
	}
}
