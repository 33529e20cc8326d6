package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ProductionSecrets creates namespace ns and the Secrets the production
// overlay expects from outside (its kustomization's comment), with
// throwaway values and a self-signed certificate for gatehouse-tls.
func (v *Verifier) ProductionSecrets(ctx context.Context, ns string) error {
	if _, err := v.kubectl(ctx, "create", "namespace", ns, "--save-config"); err != nil {
		return err
	}
	secrets := map[string]string{
		"auth":       "AUTH_SECRET=verify-only-not-a-secret-0123456789abcdef",
		"backend-db": "DATABASE_URL=postgres://backend:x@db.internal.example.com:5432/backend?sslmode=verify-full",
		"authsvc-db": "DATABASE_URL=postgres://authsvc:x@db.internal.example.com:5432/authsvc?sslmode=verify-full",
		"redis":      "REDIS_URL=rediss://:x@redis.internal.example.com:6380/0",
	}
	for name, kv := range secrets {
		if _, err := v.kubectl(ctx, "create", "secret", "generic", name, "-n", ns, "--from-literal="+kv); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "gatehouse-tls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse.example.com"},
		DNSNames: []string{"gatehouse.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	crt, kf := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	_, err = v.kubectl(ctx, "create", "secret", "tls", "gatehouse-tls", "-n", ns, "--cert="+crt, "--key="+kf)
	return err
}

// admittedKinds are counted per namespace in the report.
var admittedKinds = []string{
	"deployments", "statefulsets", "services", "configmaps", "secrets",
	"networkpolicies", "poddisruptionbudgets", "horizontalpodautoscalers",
	"ingresses", "gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io",
	"persistentvolumeclaims", "pods",
}

// Admitted counts the objects the API server holds in each namespace and
// checks that the namespace enforces and warns on the restricted Pod
// Security Standard.
func (v *Verifier) Admitted(ctx context.Context, namespaces ...string) *Result {
	r := &Result{}
	for _, ns := range namespaces {
		var nsObj struct {
			Metadata struct{ Labels map[string]string }
		}
		if err := v.getJSON(ctx, &nsObj, "namespace", ns); err != nil {
			r.problem("%v", err)
			continue
		}
		for _, mode := range []string{"enforce", "warn"} {
			if got := nsObj.Metadata.Labels["pod-security.kubernetes.io/"+mode]; got != "restricted" {
				r.problem("namespace %s: pod-security.kubernetes.io/%s=%q, want restricted", ns, mode, got)
			}
		}
		out, err := v.kubectl(ctx, "get", strings.Join(admittedKinds, ","), "-n", ns, "-o", "name")
		if err != nil {
			r.problem("%v", err)
			continue
		}
		counts := map[string]int{}
		total := 0
		for _, line := range strings.Fields(string(out)) {
			kind, _, _ := strings.Cut(line, "/")
			counts[strings.Split(kind, ".")[0]]++
			total++
		}
		var parts []string
		for k, n := range counts {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
		sort.Strings(parts)
		r.report("namespace %s (Pod Security enforce+warn restricted): %d objects held: %s", ns, total, strings.Join(parts, ", "))
	}
	return r
}

// Mutant is one deliberate breakage of the manifests: in File (under k8s/),
// Old is replaced by New. The mutation tests (mutants_test.go, run by `make
// k8s-verify`) apply each to the cluster and expect the checks to report it.
type Mutant struct {
	Name, File, Old, New string
	// Update also runs a rolling update of the web image to a new tag.
	Update bool
}

// ApplyMutated copies cleanTree (from CopyTree), applies the mutations in
// it, applies its production overlay to namespace ns, runs Check (and a
// rolling update when a mutant asks for one) and returns every problem
// found. With no mutation it is the control: the clean overlay in the same
// cluster, which must return none.
func (v *Verifier) ApplyMutated(ctx context.Context, cleanTree, ns string, muts ...Mutant) ([]string, error) {
	tree, err := os.MkdirTemp("", "gatehouse-k8s-mutant-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tree)
	if err := os.CopyFS(tree, os.DirFS(cleanTree)); err != nil {
		return nil, err
	}
	update := false
	for _, m := range muts {
		path := filepath.Join(tree, m.File)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if !strings.Contains(string(b), m.Old) {
			return nil, fmt.Errorf("mutant %q: %s has no %q", m.Name, m.File, m.Old)
		}
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), m.Old, m.New)), 0o644); err != nil {
			return nil, err
		}
		update = update || m.Update
	}
	dir, err := Wrap(tree, "mutant", "production", "namespace: "+ns+"\n")
	if err != nil {
		return nil, err
	}
	var problems []string
	start := time.Now()
	warnings, err := v.Apply(ctx, dir)
	if err != nil {
		problems = append(problems, err.Error())
	}
	for _, w := range warnings {
		problems = append(problems, "kubectl apply warned: "+w)
	}
	res := v.Check(ctx, ns, start)
	problems = append(problems, res.Problems...)
	if update {
		next, err := Wrap(tree, "mutant-next", "mutant", "images:\n  - name: registry.example.com/gatehouse/web\n    newTag: next\n")
		if err != nil {
			return nil, err
		}
		problems = append(problems, v.RollingUpdate(ctx, ns, next, "").Problems...)
	}
	return problems, nil
}
