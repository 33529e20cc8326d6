package devenv

import "sort"

// TestPackages names, by purpose, every Debian package the project's tests,
// `make run` and `make bench` install. `devenv install` installs the union
// once before `go test` starts (make test), so parallel test binaries find
// everything in place; a test run on its own still calls Install for its set,
// through the same lock.
var TestPackages = map[string][]string{
	"servers": {"postgresql", "redis-server"},                    // kit/testenv, devenv run
	"browser": {"chromium"},                                      // e2e browser tests
	"podman":  {"podman", "runc", "busybox-static", "catatonit"}, // k8s container test; catatonit: pods' pause binary, only a Recommends
	"bench":   {"wrk", "nginx"},                                  // make bench
	// e2e/topology_*: Sentinel, Cluster, TLS Redis, PgBouncer, a PG standby.
	"distributed": {"redis-server", "redis-sentinel", "redis-tools", "pgbouncer", "postgresql"},
	// examples/fastapi (e2e, make bench): the FastAPI todo backend, and the
	// seed-shaped one that verifies HS256 itself with python-jose.
	"fastapi": {"python3-fastapi", "python3-sqlmodel", "python3-uvicorn", "python3-psycopg2",
		"python3-jose", "python3-uvloop", "python3-httptools"},
}

// AllTestPackages returns the union of TestPackages, sorted.
func AllTestPackages() []string {
	seen := map[string]bool{}
	var all []string
	for _, pkgs := range TestPackages {
		for _, p := range pkgs {
			if !seen[p] {
				seen[p] = true
				all = append(all, p)
			}
		}
	}
	sort.Strings(all)
	return all
}

// TestPackageSets returns the names of TestPackages, sorted.
func TestPackageSets() []string {
	var names []string
	for n := range TestPackages {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
