// Package doccheck keeps the reference under docs/ true. A service's tests
// run its real configuration loader through a Recorder and call Check, which
// fails when a variable the service reads is not in docs/configuration.md, or
// one documented for it is not read; and they record the service's routes
// and call CheckAPI against docs/openapi.json.
package doccheck

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Recorder wraps an environment lookup and remembers every name asked for.
type Recorder struct {
	mu   sync.Mutex
	env  map[string]string
	read map[string]bool
}

// NewRecorder returns a Recorder answering from env (which may be nil).
func NewRecorder(env map[string]string) *Recorder {
	return &Recorder{env: env, read: map[string]bool{}}
}

// Lookup is an os.LookupEnv that records key.
func (r *Recorder) Lookup(key string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read[key] = true
	v, ok := r.env[key]
	return v, ok
}

// Read returns the names looked up so far, sorted.
func (r *Recorder) Read() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.read {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// CheckLoader runs a service's configuration loader through a Recorder twice,
// with no environment and with env (to switch on what is read only when
// something else is set), adds extra (names read outside the loader), and
// calls Check with all of them.
func CheckLoader(t testing.TB, service string, load func(lookup func(string) (string, bool)), env map[string]string, extra ...string) {
	t.Helper()
	read := map[string]bool{}
	for _, e := range []map[string]string{nil, env} {
		rec := NewRecorder(e)
		load(rec.Lookup)
		for _, k := range rec.Read() {
			read[k] = true
		}
	}
	for _, k := range extra {
		read[k] = true
	}
	names := make([]string, 0, len(read))
	for k := range read {
		names = append(names, k)
	}
	slices.Sort(names)
	Check(t, service, names)
}

// Check compares the variables a service read with those docs/configuration.md
// documents for it (its own section plus "Every service").
func Check(t testing.TB, service string, read []string) {
	t.Helper()
	doc, err := Documented(service)
	if err != nil {
		t.Fatal(err)
	}
	var missing, unread []string
	for _, v := range read {
		if !slices.Contains(doc, v) {
			missing = append(missing, v)
		}
	}
	for _, v := range doc {
		if !slices.Contains(read, v) {
			unread = append(unread, v)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s reads variables docs/configuration.md does not document for it: %v", service, missing)
	}
	if len(unread) > 0 {
		t.Errorf("docs/configuration.md documents variables %s does not read: %v", service, unread)
	}
}

var rowName = regexp.MustCompile("^\\| `([A-Z][A-Z0-9_]*)` \\|")

// Documented returns the variables docs/configuration.md lists for service
// and for every service, sorted.
func Documented(service string) ([]string, error) {
	path, err := docPath()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	section, own := "", false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = strings.TrimSpace(h)
			own = own || section == service
			continue
		}
		if section != service && section != "Every service" {
			continue
		}
		if m := rowName.FindStringSubmatch(line); m != nil && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !own {
		return nil, fmt.Errorf("%s: no section \"## %s\"", path, service)
	}
	slices.Sort(out)
	return out, nil
}

// docPath finds docs/configuration.md.
func docPath() (string, error) { return repoFile("docs", "configuration.md") }

// repoFile returns the path of a file below the directory holding go.work,
// found above the test's working directory.
func repoFile(elem ...string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(append([]string{dir}, elem...)...), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("doccheck: no go.work above the working directory")
		}
		dir = parent
	}
}
