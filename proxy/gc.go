package main

import (
	"runtime/debug"
)

// Garbage-collector defaults for the proxy, used only when the operator has
// not chosen their own with the runtime's GOGC / GOMEMLIMIT variables.
//
// Under load about a third of the proxy's CPU went to allocation and GC,
// while its live heap is a few MiB (the signature cache is the largest
// part). GOGC=100 collects every time the heap doubles from that small
// base, so collections are frequent; 150 makes them a third rarer. 200 was
// measured too (gatebench, 2026-11-26): slightly less CPU, but the
// fresh-token rows, whose full signature cache is most of the live heap,
// peaked at 37.7 MiB RSS against the 40 MiB budget; 150 peaks at 35 MiB
// (100: 30 MiB). The soft memory limit puts a ceiling on the trade: as
// the heap nears it the runtime collects more eagerly again, so a burst
// cannot make the larger GOGC cost unbounded memory. 64 MiB is well above
// what the benchmark's heaviest row uses and well below a typical sidecar
// limit; set GOMEMLIMIT to about 90% of the container's memory limit.
const (
	defaultGCPercent   = 150
	defaultMemoryLimit = 64 << 20
)

// tuneGC applies the defaults above unless GOGC or GOMEMLIMIT is set in the
// environment (read through lookup, as run reads everything), in which case
// the runtime has already applied the operator's value.
func tuneGC(lookup func(string) (string, bool)) {
	if _, ok := lookup("GOGC"); !ok {
		debug.SetGCPercent(defaultGCPercent)
	}
	if _, ok := lookup("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}
