// Package gcdefault sets a service's garbage-collector defaults at
// start-up, from its container rather than from constants: a soft memory
// limit at 90% of the cgroup's memory limit, and the service's own GOGC.
// What the operator sets in the runtime's variables (GOGC, GOMEMLIMIT)
// always wins.
package gcdefault

import (
	"runtime/debug"
	"strconv"
	"strings"
)

// Settings are what Apply set; a zero field was left to the runtime.
type Settings struct {
	MemoryLimit int64 // the soft memory limit in bytes
	GOGC        int
}

// memoryLimitShare is the part of the container's memory limit given to
// the runtime as its soft limit: the collector works harder before the
// kernel would kill the process. Never a constant: a fixed 64 MiB limit made
// the proxy's collector run without pause once 2,000 connections' buffers
// exceeded it (issue 18).
const memoryLimitShare = 0.9

// Apply sets the soft memory limit unless GOMEMLIMIT is set (the runtime has
// then applied the operator's value), and GOGC to gogc when gogc > 0 and the
// environment has no GOGC. The environment is read through lookup and files
// through readFile, as each service's run reads everything.
func Apply(lookup func(string) (string, bool), readFile func(string) ([]byte, error), gogc int) Settings {
	var s Settings
	if gogc > 0 {
		if _, ok := lookup("GOGC"); !ok {
			debug.SetGCPercent(gogc)
			s.GOGC = gogc
		}
	}
	if _, ok := lookup("GOMEMLIMIT"); ok {
		return s
	}
	if limit, ok := CgroupMemoryLimit(readFile); ok {
		s.MemoryLimit = int64(float64(limit) * memoryLimitShare)
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	return s
}

// cgroupMemoryFiles are where cgroup v2 and v1 publish the memory limit of
// a container with its own cgroup namespace (the usual case).
var cgroupMemoryFiles = []string{
	"/sys/fs/cgroup/memory.max",
	"/sys/fs/cgroup/memory/memory.limit_in_bytes",
}

// CgroupMemoryLimit returns the container's memory limit in bytes, and
// whether there is one ("max" in cgroup v2, or v1's page-rounded
// near-maximum, means none). Without a private cgroup namespace the
// process's own cgroup is found through /proc/self/cgroup.
func CgroupMemoryLimit(readFile func(string) ([]byte, error)) (int64, bool) {
	files := cgroupMemoryFiles
	if b, err := readFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			// v2: "0::/path"; v1: "N:memory:/path" (or with other controllers).
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 || parts[2] == "/" {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				files = append(files, "/sys/fs/cgroup"+parts[2]+"/memory.max")
			case strings.Contains(","+parts[1]+",", ",memory,"):
				files = append(files, "/sys/fs/cgroup/memory"+parts[2]+"/memory.limit_in_bytes")
			}
		}
	}
	for _, f := range files {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
