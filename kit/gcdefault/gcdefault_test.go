package gcdefault

import (
	"errors"
	"io/fs"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

// The soft memory limit follows the container (issue 18): 90% of a cgroup
// limit, none without one, and the operator's GOMEMLIMIT always wins.
func TestMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	noEnv := func(string) (string, bool) { return "", false }
	for _, tt := range []struct {
		name   string
		env    func(string) (string, bool)
		files  map[string]string
		want   int64 // the limit Apply reports setting; 0: none
		wantRT int64 // the runtime's limit afterwards
	}{
		{"cgroup v2 limit", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "268435456\n"}, 241591910, 241591910},
		{"cgroup v2 no limit", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0, math.MaxInt64},
		{"cgroup v1 limit", noEnv, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824"}, 966367641, 966367641},
		{"cgroup v1 no limit", noEnv, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"}, 0, math.MaxInt64},
		{"no cgroup", noEnv, nil, 0, math.MaxInt64},
		{"host cgroup namespace, v2", noEnv, map[string]string{"/proc/self/cgroup": "0::/kubepods/pod1/c1\n",
			"/sys/fs/cgroup/kubepods/pod1/c1/memory.max": "268435456"}, 241591910, 241591910},
		{"host cgroup namespace, v1", noEnv, map[string]string{"/proc/self/cgroup": "5:cpu,cpuacct:/x\n4:memory:/kubepods/c2\n",
			"/sys/fs/cgroup/memory/kubepods/c2/memory.limit_in_bytes": "1073741824"}, 966367641, 966367641},
		{"garbage", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "lots"}, 0, math.MaxInt64},
		{"operator's GOMEMLIMIT wins", func(k string) (string, bool) { return "1GiB", k == "GOMEMLIMIT" },
			map[string]string{"/sys/fs/cgroup/memory.max": "268435456"}, 0, math.MaxInt64},
	} {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			if got := Apply(tt.env, files(tt.files), 0); got.MemoryLimit != tt.want || got.GOGC != 0 {
				t.Errorf("Apply = %+v, want MemoryLimit %d and GOGC untouched", got, tt.want)
			}
			if got := debug.SetMemoryLimit(-1); got != tt.wantRT {
				t.Errorf("runtime memory limit = %d, want %d", got, tt.wantRT)
			}
		})
	}
	if _, err := CgroupMemoryLimit(func(string) ([]byte, error) { return nil, errors.New("x") }); err {
		t.Error("cgroupMemoryLimit without files reports a limit")
	}
}

// A service's GOGC applies unless the environment sets one; asking for none
// leaves the runtime's.
func TestGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	none := func(string) ([]byte, error) { return nil, fs.ErrNotExist }
	var read []string
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			read = append(read, k)
			v, ok := m[k]
			return v, ok
		}
	}
	debug.SetGCPercent(100)
	if s := Apply(env(nil), none, 400); s.GOGC != 400 || debug.SetGCPercent(100) != 400 {
		t.Errorf("Apply(400) = %+v; want GOGC 400 set", s)
	}
	if s := Apply(env(map[string]string{"GOGC": "150"}), none, 400); s.GOGC != 0 || debug.SetGCPercent(100) != 100 {
		t.Errorf("with GOGC in the environment: %+v; want it left alone", s)
	}
	read = nil
	if s := Apply(env(nil), none, 0); s.GOGC != 0 || strings.Contains(strings.Join(read, ","), "GOGC") {
		t.Errorf("Apply(0) = %+v, read %v; want GOGC neither set nor read", s, read)
	}
}
