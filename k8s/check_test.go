package k8s

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// check runs every invariant and returns one line per problem.
func check(m *manifests, o overlay) []string {
	var p []string
	for _, f := range []func(*manifests, overlay) []string{
		checkContainers, checkServices, checkRoutes, checkReferences,
		checkLoopbackBackend, checkImages, checkNetworkPolicies, checkPDBs, checkShutdown,
		checkSidecar, checkMemoryLimit, checkAutoscalers, checkSpread,
	} {
		p = append(p, f(m, o)...)
	}
	return p
}

func allContainers(ps *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for i := range ps.InitContainers {
		out = append(out, &ps.InitContainers[i])
	}
	for i := range ps.Containers {
		out = append(out, &ps.Containers[i])
	}
	return out
}

// isInit reports whether c is an init container that runs to completion
// (a native sidecar, restartPolicy Always, keeps running and is not one).
func isInit(ps *corev1.PodSpec, c *corev1.Container) bool {
	for i := range ps.InitContainers {
		if &ps.InitContainers[i] == c {
			return !isSidecar(c)
		}
	}
	return false
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// running returns the containers that run for the pod's life: native
// sidecars (in start order) and the main containers.
func running(ps *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for i := range ps.InitContainers {
		if isSidecar(&ps.InitContainers[i]) {
			out = append(out, &ps.InitContainers[i])
		}
	}
	for i := range ps.Containers {
		out = append(out, &ps.Containers[i])
	}
	return out
}

// checkContainers: probes, requests and limits, and the restricted security
// context on every container.
func checkContainers(m *manifests, _ overlay) []string {
	var p []string
	for _, pt := range m.pods() {
		ps := &pt.spec.Spec
		psc := ps.SecurityContext
		for _, c := range allContainers(ps) {
			where := fmt.Sprintf("%s container %s", pt.owner, c.Name)
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[r]; !ok {
					p = append(p, where+": no "+string(r)+" request")
				}
				if _, ok := c.Resources.Limits[r]; !ok {
					p = append(p, where+": no "+string(r)+" limit")
				}
			}
			sc := c.SecurityContext
			if sc == nil {
				p = append(p, where+": no securityContext")
				continue
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				p = append(p, where+": allowPrivilegeEscalation is not false")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				p = append(p, where+": readOnlyRootFilesystem is not true")
			}
			if sc.Privileged != nil && *sc.Privileged {
				p = append(p, where+": privileged")
			}
			nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
			if !nonRoot || (sc.RunAsUser != nil && *sc.RunAsUser == 0) {
				p = append(p, where+": may run as root")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				p = append(p, where+": capabilities are not drop ALL")
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil && psc != nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				p = append(p, where+": seccomp profile is not RuntimeDefault")
			}
			if isInit(ps, c) {
				continue // init containers run to completion; no probes
			}
			p = append(p, checkProbes(m, where, c)...)
		}
	}
	return p
}

// checkProbes: liveness and readiness everywhere, on ports the container
// declares; Gatehouse's own services are probed on /healthz and /readyz,
// except where the listener is loopback-only and out of the kubelet's reach.
func checkProbes(m *manifests, where string, c *corev1.Container) []string {
	var p []string
	for _, pr := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if pr.probe == nil {
			if pr.kind != "startup" {
				p = append(p, where+": no "+pr.kind+" probe")
			}
			continue
		}
		var port *intstr.IntOrString
		if h := pr.probe.HTTPGet; h != nil {
			port = &h.Port
			if isGatehouse(c.Image) && !loopbackOnly(m, c) && h.Path != pr.path {
				p = append(p, fmt.Sprintf("%s: %s probe on %s, want %s", where, pr.kind, h.Path, pr.path))
			}
		} else if s := pr.probe.TCPSocket; s != nil {
			port = &s.Port
		} else if pr.probe.Exec == nil && pr.probe.GRPC == nil {
			p = append(p, where+": "+pr.kind+" probe has no handler")
		}
		if port != nil && declaredPort(c, *port) == nil {
			p = append(p, fmt.Sprintf("%s: %s probe port %s is not a declared containerPort", where, pr.kind, port.String()))
		}
	}
	return p
}

// loopbackOnly reports whether the container's main listener is on loopback
// (the backend), where the kubelet cannot probe it over HTTP.
func loopbackOnly(m *manifests, c *corev1.Container) bool {
	addr, ok := m.env(c, "BACKEND_ADDR")
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(addr)
	return err == nil && isLoopback(host)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func declaredPort(c *corev1.Container, port intstr.IntOrString) *corev1.ContainerPort {
	for i, cp := range c.Ports {
		if (port.Type == intstr.String && cp.Name == port.StrVal) || (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) {
			return &c.Ports[i]
		}
	}
	return nil
}

func isGatehouse(image string) bool { return strings.Contains(image, "gatehouse/") }

// checkServices: every Service selects at least one pod template, and every
// target port is declared by a container of each pod it selects.
func checkServices(m *manifests, _ overlay) []string {
	var p []string
	for _, s := range m.Services {
		if len(s.Spec.Selector) == 0 {
			p = append(p, "Service/"+s.Name+": no selector")
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var matched []podTemplate
		for _, pt := range m.pods() {
			if sel.Matches(labels.Set(pt.spec.Labels)) {
				matched = append(matched, pt)
			}
		}
		if len(matched) == 0 {
			p = append(p, "Service/"+s.Name+": selects no pod")
		}
		for _, sp := range s.Spec.Ports {
			tp := sp.TargetPort
			if tp.Type == intstr.Int && tp.IntVal == 0 {
				tp = intstr.FromInt32(sp.Port)
			}
			for _, pt := range matched {
				found := false
				for _, c := range running(&pt.spec.Spec) {
					found = found || declaredPort(c, tp) != nil
				}
				if !found {
					p = append(p, fmt.Sprintf("Service/%s: port %s targets %s, not declared in %s", s.Name, sp.Name, tp.String(), pt.owner))
				}
			}
		}
	}
	return p
}

func (m *manifests) servicePort(name string, port intstr.IntOrString) bool {
	for _, s := range m.Services {
		if s.Name != name {
			continue
		}
		for _, sp := range s.Spec.Ports {
			if (port.Type == intstr.Int && sp.Port == port.IntVal) || (port.Type == intstr.String && sp.Name == port.StrVal) {
				return true
			}
		}
	}
	return false
}

// checkRoutes: the HTTPRoute and the Ingress both send / to web and /api to
// the proxy, at existing Service ports, through an existing Gateway.
func checkRoutes(m *manifests, _ overlay) []string {
	var p []string
	want := map[string]string{"/": "web", "/api": "proxy"}
	if len(m.HTTPRoutes) == 0 {
		p = append(p, "no HTTPRoute")
	}
	for _, r := range m.HTTPRoutes {
		got := map[string]string{}
		for _, pr := range r.Spec.ParentRefs {
			gw := false
			for _, g := range m.Gateways {
				if g.Name == string(pr.Name) {
					gw = pr.SectionName == nil
					for _, l := range g.Spec.Listeners {
						gw = gw || (pr.SectionName != nil && l.Name == *pr.SectionName)
					}
				}
			}
			if !gw {
				p = append(p, fmt.Sprintf("HTTPRoute/%s: parent %s is not a Gateway listener here", r.Name, pr.Name))
			}
		}
		for _, rule := range r.Spec.Rules {
			for _, br := range rule.BackendRefs {
				port := intstr.FromInt32(0)
				if br.Port != nil {
					port = intstr.FromInt32(*br.Port)
				}
				if !m.servicePort(string(br.Name), port) {
					p = append(p, fmt.Sprintf("HTTPRoute/%s: backend %s:%s is not a Service port", r.Name, br.Name, port.String()))
				}
				for _, mt := range rule.Matches {
					if mt.Path != nil && mt.Path.Value != nil {
						got[*mt.Path.Value] = string(br.Name)
					}
				}
			}
		}
		for path, svc := range want {
			if got[path] != svc {
				p = append(p, fmt.Sprintf("HTTPRoute/%s: %s goes to %q, want %q", r.Name, path, got[path], svc))
			}
		}
	}
	if len(m.Ingresses) == 0 {
		p = append(p, "no Ingress")
	}
	for _, in := range m.Ingresses {
		got := map[string]string{}
		for _, rule := range in.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, path := range rule.HTTP.Paths {
				svc := path.Backend.Service
				if svc == nil {
					p = append(p, "Ingress/"+in.Name+": backend is not a Service")
					continue
				}
				port := intstr.FromInt32(svc.Port.Number)
				if svc.Port.Name != "" {
					port = intstr.FromString(svc.Port.Name)
				}
				if !m.servicePort(svc.Name, port) {
					p = append(p, fmt.Sprintf("Ingress/%s: backend %s:%s is not a Service port", in.Name, svc.Name, port.String()))
				}
				got[path.Path] = svc.Name
			}
		}
		for path, svc := range want {
			if got[path] != svc {
				p = append(p, fmt.Sprintf("Ingress/%s: %s goes to %q, want %q", in.Name, path, got[path], svc))
			}
		}
	}
	return p
}

// checkReferences: every Secret and ConfigMap a pod, Gateway or Ingress
// names exists in the render (or is declared external by the overlay), and
// so does the key it reads.
func checkReferences(m *manifests, o overlay) []string {
	var p []string
	secret := func(where, name, key string) {
		if slices.Contains(o.externalSecrets, name) {
			return
		}
		s := m.secret(name)
		if s == nil {
			p = append(p, fmt.Sprintf("%s: Secret %q does not exist", where, name))
			return
		}
		if _, ok := s.Data[key]; key != "" && !ok {
			if _, ok := s.StringData[key]; !ok {
				p = append(p, fmt.Sprintf("%s: Secret %q has no key %q", where, name, key))
			}
		}
	}
	configMap := func(where, name, key string) {
		cm := m.configMap(name)
		if cm == nil {
			p = append(p, fmt.Sprintf("%s: ConfigMap %q does not exist", where, name))
			return
		}
		if _, ok := cm.Data[key]; key != "" && !ok {
			p = append(p, fmt.Sprintf("%s: ConfigMap %q has no key %q", where, name, key))
		}
	}
	for _, pt := range m.pods() {
		for _, c := range allContainers(&pt.spec.Spec) {
			where := pt.owner + " container " + c.Name
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				// An optional reference may name a Secret the operator
				// has not created (mail, until it is set up).
				if r := e.ValueFrom.SecretKeyRef; r != nil && (r.Optional == nil || !*r.Optional) {
					secret(where, r.Name, r.Key)
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					configMap(where, r.Name, r.Key)
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					secret(where, ef.SecretRef.Name, "")
				}
				if ef.ConfigMapRef != nil {
					configMap(where, ef.ConfigMapRef.Name, "")
				}
			}
		}
		for _, v := range pt.spec.Spec.Volumes {
			if v.Secret != nil {
				secret(pt.owner+" volume "+v.Name, v.Secret.SecretName, "")
			}
			if v.ConfigMap != nil {
				configMap(pt.owner+" volume "+v.Name, v.ConfigMap.Name, "")
			}
		}
	}
	for _, g := range m.Gateways {
		for _, l := range g.Spec.Listeners {
			if l.TLS != nil {
				for _, ref := range l.TLS.CertificateRefs {
					secret("Gateway/"+g.Name, string(ref.Name), "")
				}
			}
		}
	}
	for _, in := range m.Ingresses {
		for _, tls := range in.Spec.TLS {
			secret("Ingress/"+in.Name, tls.SecretName, "")
		}
	}
	return p
}

// checkLoopbackBackend: the backend listens on loopback, declares no port
// for that listener, and the proxy in the same pod reaches it there.
func checkLoopbackBackend(m *manifests, _ overlay) []string {
	pt := m.pod("todo")
	if pt == nil {
		return []string{"no todo pod"}
	}
	var p []string
	var backend, proxy *corev1.Container
	for _, c := range allContainers(&pt.spec.Spec) {
		switch {
		case c.Name == "backend":
			backend = c
		case c.Name == "proxy":
			proxy = c
		}
	}
	if backend == nil || proxy == nil {
		return []string{"todo pod: want containers backend and proxy"}
	}
	addr, _ := m.env(backend, "BACKEND_ADDR")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !isLoopback(host) {
		p = append(p, fmt.Sprintf("todo pod: backend BACKEND_ADDR=%q, want a loopback address", addr))
	}
	for _, cp := range backend.Ports {
		if fmt.Sprint(cp.ContainerPort) == port {
			p = append(p, "todo pod: backend declares its loopback port "+port)
		}
	}
	u, _ := m.env(proxy, "BACKEND_URL")
	if pu, err := url.Parse(u); err != nil || !isLoopback(pu.Hostname()) || pu.Port() != port {
		p = append(p, fmt.Sprintf("todo pod: proxy BACKEND_URL=%q does not reach the backend at %s", u, addr))
	}
	var exposed []string
	for _, c := range running(&pt.spec.Spec) {
		for _, cp := range c.Ports {
			if !strings.Contains(cp.Name, "metric") {
				exposed = append(exposed, c.Name+":"+cp.Name)
			}
		}
	}
	if !slices.Equal(exposed, []string{"proxy:http"}) {
		p = append(p, fmt.Sprintf("todo pod: serving ports %v, want only proxy:http", exposed))
	}
	return p
}

// checkImages: Gatehouse images share one repository prefix and one pinned
// tag, and the migration runs the backend's own image.
func checkImages(m *manifests, _ overlay) []string {
	var p []string
	seen := map[string]string{} // prefix:tag -> first image
	for _, pt := range m.pods() {
		for _, c := range allContainers(&pt.spec.Spec) {
			if !isGatehouse(c.Image) {
				if !strings.Contains(c.Image, ":") {
					p = append(p, pt.owner+": image "+c.Image+" has no tag")
				}
				continue
			}
			i := strings.LastIndex(c.Image, ":")
			if i < 0 || strings.Contains(c.Image[i:], "/") || c.Image[i+1:] == "latest" {
				p = append(p, pt.owner+": image "+c.Image+" is not pinned to a tag")
				continue
			}
			repo, tag := c.Image[:i], c.Image[i+1:]
			prefix := repo[:strings.LastIndex(repo, "/")]
			seen[prefix+":"+tag] = c.Image
		}
	}
	if len(seen) != 1 {
		p = append(p, fmt.Sprintf("Gatehouse images use %d prefix/tag combinations, want 1: %v", len(seen), seen))
	}
	if pt := m.pod("todo"); pt != nil {
		imgs := map[string]string{}
		for _, c := range allContainers(&pt.spec.Spec) {
			imgs[c.Name] = c.Image
		}
		if imgs["migrate"] == "" || imgs["migrate"] != imgs["backend"] {
			p = append(p, fmt.Sprintf("todo pod: migrate image %q, want the backend's %q", imgs["migrate"], imgs["backend"]))
		}
		var mig *corev1.Container
		for i := range pt.spec.Spec.InitContainers {
			if pt.spec.Spec.InitContainers[i].Name == "migrate" {
				mig = &pt.spec.Spec.InitContainers[i]
			}
		}
		if mig == nil || !slices.Equal(mig.Args, []string{"migrate"}) {
			p = append(p, "todo pod: no init container running `backend migrate`")
		}
	}
	return p
}

// checkPDBs: every Deployment with more than one replica has a budget.
func checkPDBs(m *manifests, _ overlay) []string {
	var p []string
	for _, d := range m.Deployments {
		if m.replicas(d) < 2 {
			continue
		}
		found := false
		for _, b := range m.PDBs {
			sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			found = found || (err == nil && sel.Matches(labels.Set(d.Spec.Template.Labels)))
		}
		if !found {
			p = append(p, "Deployment/"+d.Name+": no PodDisruptionBudget")
		}
	}
	return p
}

// checkShutdown: the grace period covers the pod's whole shutdown, so
// SIGKILL never cuts a request short. Main containers get SIGTERM together
// (the slowest drain + shutdown counts); native sidecars get it after they
// have exited, one after another in reverse order (each one's time adds).
func checkShutdown(m *manifests, _ overlay) []string {
	var p []string
	for _, pt := range m.pods() {
		grace := int64(30)
		if g := pt.spec.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = *g
		}
		var mainMax, sidecarSum float64
		var names []string
		for _, c := range running(&pt.spec.Spec) {
			if !isGatehouse(c.Image) {
				continue
			}
			names = append(names, c.Name)
			sum := 0.0
			for _, k := range []string{"DRAIN_DELAY", "SHUTDOWN_TIMEOUT"} {
				v, ok := m.env(c, k)
				if !ok {
					p = append(p, fmt.Sprintf("%s container %s: %s not set", pt.owner, c.Name, k))
					continue
				}
				d, err := parseDuration(v)
				if err != nil {
					p = append(p, fmt.Sprintf("%s container %s: %s=%q: %v", pt.owner, c.Name, k, v, err))
				}
				sum += d
			}
			if isSidecar(c) {
				sidecarSum += sum
			} else {
				mainMax = max(mainMax, sum)
			}
		}
		if total := mainMax + sidecarSum; len(names) > 0 && float64(grace) <= total {
			p = append(p, fmt.Sprintf("%s containers %v: terminationGracePeriodSeconds %d <= drain+shutdown %.0fs", pt.owner, names, grace, total))
		}
		if pt.spec.Labels[appLabel] == "todo" {
			if d := m.Deployments; len(d) > 0 {
				for _, dep := range d {
					if dep.Name == "todo" {
						ru := dep.Spec.Strategy.RollingUpdate
						if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
							p = append(p, "Deployment/todo: rolling update may take pods out before new ones are ready (maxUnavailable != 0)")
						}
					}
				}
			}
		}
	}
	return p
}

// peerMatches matches pods in the Gatehouse namespace only; peers in other
// namespaces or IP blocks are outside what checkNetworkPolicies compares.
func peerMatches(peer networkingv1.NetworkPolicyPeer, podLabels map[string]string, ns string) bool {
	if peer.IPBlock != nil {
		return false
	}
	if peer.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
		if err != nil || !sel.Matches(labels.Set{"kubernetes.io/metadata.name": ns}) {
			return false
		}
	}
	if peer.PodSelector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
	return err == nil && sel.Matches(labels.Set(podLabels))
}

func anyPeer(peers []networkingv1.NetworkPolicyPeer, podLabels map[string]string, ns string) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if peerMatches(p, podLabels, ns) {
			return true
		}
	}
	return false
}

func portMatches(ports []networkingv1.NetworkPolicyPort, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil || (p.Port.Type == intstr.Int && p.Port.IntVal == port) {
			return true
		}
	}
	return false
}

// allowed evaluates the policies like a CNI would for a TCP connection from
// pod src to pod dst: both dst's ingress and src's egress must allow it.
func allowed(pols []*networkingv1.NetworkPolicy, src, dst map[string]string, ns string, port int32) bool {
	side := func(pod, peer map[string]string, typ networkingv1.PolicyType) bool {
		isolated := false
		for _, pol := range pols {
			sel, err := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
			if err != nil || !sel.Matches(labels.Set(pod)) || !slices.Contains(pol.Spec.PolicyTypes, typ) {
				continue
			}
			isolated = true
			// A rule with no peers admits every peer.
			if typ == networkingv1.PolicyTypeIngress {
				for _, r := range pol.Spec.Ingress {
					if anyPeer(r.From, peer, ns) && portMatches(r.Ports, port) {
						return true
					}
				}
			} else {
				for _, r := range pol.Spec.Egress {
					if anyPeer(r.To, peer, ns) && portMatches(r.Ports, port) {
						return true
					}
				}
			}
		}
		return !isolated
	}
	return side(dst, src, networkingv1.PolicyTypeIngress) && side(src, dst, networkingv1.PolicyTypeEgress)
}

// checkNetworkPolicies: default deny both ways, DNS egress for every pod, and
// exactly the stated in-namespace paths: only the todo pod (proxy) reaches
// authsvc; only the todo pod (backend) and authsvc reach Postgres; only the
// todo pod (proxy) and authsvc reach Redis; nothing reaches anything else.
func checkNetworkPolicies(m *manifests, o overlay) []string {
	var p []string
	ns := "gatehouse"
	denyAll := false
	for _, pol := range m.Policies {
		if len(pol.Spec.PodSelector.MatchLabels)+len(pol.Spec.PodSelector.MatchExpressions) == 0 &&
			slices.Contains(pol.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) &&
			slices.Contains(pol.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) &&
			len(pol.Spec.Ingress)+len(pol.Spec.Egress) == 0 {
			denyAll = true
		}
	}
	if !denyAll {
		p = append(p, "NetworkPolicy: no default deny for ingress and egress")
	}
	dns := map[string]string{"k8s-app": "kube-dns"}
	for _, pt := range m.pods() {
		ok := false
		for _, pol := range m.Policies {
			sel, _ := metav1.LabelSelectorAsSelector(&pol.Spec.PodSelector)
			if !sel.Matches(labels.Set(pt.spec.Labels)) {
				continue
			}
			for _, r := range pol.Spec.Egress {
				for _, to := range r.To {
					if to.NamespaceSelector != nil && to.PodSelector != nil {
						nsSel, _ := metav1.LabelSelectorAsSelector(to.NamespaceSelector)
						podSel, _ := metav1.LabelSelectorAsSelector(to.PodSelector)
						if nsSel.Matches(labels.Set{"kubernetes.io/metadata.name": "kube-system"}) && podSel.Matches(labels.Set(dns)) && portMatches(r.Ports, 53) {
							ok = true
						}
					}
				}
			}
		}
		if !ok {
			p = append(p, pt.owner+": no DNS egress")
		}
	}
	want := map[string]bool{"todo->authsvc:8082": true}
	if o.inClusterData {
		for _, k := range []string{"todo->postgres:5432", "authsvc->postgres:5432", "todo->redis:6379", "authsvc->redis:6379"} {
			want[k] = true
		}
	}
	ports := map[string]int32{"todo": 8080, "authsvc": 8082, "web": 8083, "postgres": 5432, "redis": 6379}
	for _, src := range m.pods() {
		for _, dst := range m.pods() {
			sName, dName := src.spec.Labels[appLabel], dst.spec.Labels[appLabel]
			port, ok := ports[dName]
			if !ok || sName == dName {
				continue
			}
			key := fmt.Sprintf("%s->%s:%d", sName, dName, port)
			got := allowed(m.Policies, src.spec.Labels, dst.spec.Labels, ns, port)
			switch {
			case got && !want[key]:
				p = append(p, "NetworkPolicy allows "+key+", which must be denied")
			case !got && want[key]:
				p = append(p, "NetworkPolicy denies "+key+", which must be allowed")
			}
		}
	}
	return p
}

// parseDuration reads a Go duration as seconds.
func parseDuration(s string) (float64, error) {
	d, err := time.ParseDuration(s)
	return d.Seconds(), err
}

// checkSidecar: the proxy is the todo pod's native sidecar, started after
// the migration and before the backend, and stopped after it.
func checkSidecar(m *manifests, _ overlay) []string {
	pt := m.pod("todo")
	if pt == nil {
		return nil
	}
	ps := &pt.spec.Spec
	idx := map[string]int{}
	for i := range ps.InitContainers {
		idx[ps.InitContainers[i].Name] = i
	}
	for _, c := range ps.Containers {
		if c.Name == "proxy" {
			return []string{"todo pod: proxy is a main container, want a native sidecar (initContainers, restartPolicy Always)"}
		}
	}
	i, ok := idx["proxy"]
	if !ok {
		return []string{"todo pod: no proxy sidecar"}
	}
	var p []string
	proxy := &ps.InitContainers[i]
	if !isSidecar(proxy) {
		p = append(p, "todo pod: proxy init container has no restartPolicy Always: it would have to exit before the backend starts")
	}
	if proxy.StartupProbe == nil {
		p = append(p, "todo pod: proxy sidecar has no startup probe: the backend would start before it listens")
	}
	if j, ok := idx["migrate"]; ok && j > i {
		p = append(p, "todo pod: proxy sidecar starts before the migration")
	}
	return p
}

// checkMemoryLimit: every Gatehouse container sets GOMEMLIMIT from its own
// memory limit through the downward API.
func checkMemoryLimit(m *manifests, _ overlay) []string {
	var p []string
	for _, pt := range m.pods() {
		for _, c := range allContainers(&pt.spec.Spec) {
			if !isGatehouse(c.Image) {
				continue
			}
			ok := false
			for _, e := range c.Env {
				if e.Name != "GOMEMLIMIT" || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil {
					continue
				}
				r := e.ValueFrom.ResourceFieldRef
				// A divisor would turn bytes into a bare number Go reads as bytes.
				ok = r.Resource == "limits.memory" && (r.ContainerName == "" || r.ContainerName == c.Name) && r.Divisor.IsZero()
			}
			if !ok {
				p = append(p, fmt.Sprintf("%s container %s: GOMEMLIMIT is not its own limits.memory (downward API)", pt.owner, c.Name))
			}
		}
	}
	return p
}

// checkAutoscalers: the todo pod and authsvc each have an autoscaler with at
// least 2 replicas, on a Deployment that leaves the count to it.
func checkAutoscalers(m *manifests, _ overlay) []string {
	var p []string
	for _, name := range []string{"todo", "authsvc"} {
		var h *autoscalingv2.HorizontalPodAutoscaler
		for _, x := range m.HPAs {
			if x.Spec.ScaleTargetRef.Kind == "Deployment" && x.Spec.ScaleTargetRef.Name == name {
				h = x
			}
		}
		if h == nil {
			p = append(p, "Deployment/"+name+": no HorizontalPodAutoscaler")
			continue
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			p = append(p, "HorizontalPodAutoscaler/"+h.Name+": minReplicas below 2 or above maxReplicas")
		}
		for _, d := range m.Deployments {
			if d.Name == name && d.Spec.Replicas != nil {
				p = append(p, "Deployment/"+name+": sets replicas, which every apply would reset under its autoscaler")
			}
		}
	}
	return p
}

// replicas is a Deployment's pod count: its autoscaler's minimum if it has
// one, else spec.replicas.
func (m *manifests) replicas(d *appsv1.Deployment) int32 {
	for _, h := range m.HPAs {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name && h.Spec.MinReplicas != nil {
			return *h.Spec.MinReplicas
		}
	}
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// checkSpread: every Deployment with more than one pod spreads them over
// nodes with a constraint that selects its own pods.
func checkSpread(m *manifests, _ overlay) []string {
	var p []string
	for _, d := range m.Deployments {
		if m.replicas(d) < 2 {
			continue
		}
		ok := false
		for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
			sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
			ok = ok || (tsc.TopologyKey == "kubernetes.io/hostname" && err == nil && !sel.Empty() &&
				sel.Matches(labels.Set(d.Spec.Template.Labels)))
		}
		if !ok {
			p = append(p, "Deployment/"+d.Name+": no topology spread over kubernetes.io/hostname selecting its pods")
		}
	}
	return p
}
