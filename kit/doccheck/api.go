package doccheck

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Routes records the patterns a service registers (it is the mux its
// addRoutes is given in a test) and serves nothing.
type Routes struct {
	mu       sync.Mutex
	patterns []string
}

// Handle records pattern.
func (r *Routes) Handle(pattern string, _ http.Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.patterns = append(r.patterns, pattern)
}

// Operations returns "METHOD /path" for every pattern with a method whose
// path starts with prefix. A trailing-slash form ("/x/{$}") is the same
// operation as "/x"; method-less patterns (405 and 404 fallbacks) are not
// operations.
func (r *Routes) Operations(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ops []string
	for _, p := range r.patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, prefix) {
			continue
		}
		path = strings.TrimSuffix(path, "/{$}")
		if op := method + " " + path; !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	slices.Sort(ops)
	return ops
}

// openAPI is the part of docs/openapi.json the checks read.
type openAPI struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

type operation struct {
	Responses map[string]json.RawMessage `json:"responses"`
}

// DocumentedAPI returns "METHOD /path" → the response statuses documented for
// it, for every operation of docs/openapi.json under prefix.
func DocumentedAPI(prefix string) (map[string][]int, error) {
	path, err := repoFile("docs", "openapi.json")
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc openAPI
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		return nil, fmt.Errorf("%s: openapi %q, want 3.1.x", path, doc.OpenAPI)
	}
	out := map[string][]int{}
	for p, item := range doc.Paths {
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		for method, raw := range item {
			m := strings.ToUpper(method)
			switch m {
			case "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE":
			default:
				continue // "parameters", "summary", …
			}
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("%s: %s %s: %w", path, m, p, err)
			}
			var codes []int
			for c := range op.Responses {
				n, err := strconv.Atoi(c)
				if err != nil {
					return nil, fmt.Errorf("%s: %s %s: response %q: want a status code", path, m, p, c)
				}
				codes = append(codes, n)
			}
			out[m+" "+p] = codes
		}
	}
	return out, nil
}

// CheckAPI fails when an operation the service routes under prefix is not in
// docs/openapi.json, when one documented there is not routed, or when the
// real handler answers a documented operation (called through do with the
// path's parameters set to "1") with a status not documented for it.
func CheckAPI(t testing.TB, prefix string, routes *Routes, do func(method, path string) int) {
	t.Helper()
	doc, err := DocumentedAPI(prefix)
	if err != nil {
		t.Fatal(err)
	}
	served := routes.Operations(prefix)
	for _, op := range served {
		if _, ok := doc[op]; !ok {
			t.Errorf("docs/openapi.json does not document %s, which the service routes", op)
		}
	}
	var ops []string
	for op := range doc {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	for _, op := range ops {
		if !slices.Contains(served, op) {
			t.Errorf("docs/openapi.json documents %s, which the service does not route", op)
			continue
		}
		method, path, _ := strings.Cut(op, " ")
		status := do(method, fillParams(path))
		if !slices.Contains(doc[op], status) {
			t.Errorf("%s answered %d, not among its documented responses %v", op, status, doc[op])
		}
	}
	if len(served) == 0 {
		t.Errorf("no routes recorded under %s", prefix)
	}
}

// fillParams replaces every {name} in an OpenAPI path with "1".
func fillParams(p string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(p, '{')
		j := strings.IndexByte(p, '}')
		if i < 0 || j < i {
			b.WriteString(p)
			return b.String()
		}
		b.WriteString(p[:i] + "1")
		p = p[j+1:]
	}
}
