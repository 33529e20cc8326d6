package main

import (
	"runtime/debug"
	"testing"

	"gatehouse.dev/kit/doccheck"
	"gatehouse.dev/kit/gcdefault"
)

// Every variable backend reads is in docs/configuration.md, and every one
// documented for it is read, by loadConfig or by gcdefault (GOGC and the
// soft memory limit).
func TestConfigurationIsDocumented(t *testing.T) {
	gc := doccheck.NewRecorder(map[string]string{"GOMEMLIMIT": "1GiB", "GOGC": "100"})
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	gcdefault.Apply(gc.Lookup, func(string) ([]byte, error) { return nil, nil }, backendGOGC)
	// REDIS_URL switches on REDIS_CA_FILE and REDIS_SENTINEL_PASSWORD.
	doccheck.CheckLoader(t, "backend", func(l func(string) (string, bool)) { _, _ = loadConfig(l) },
		map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"}, gc.Read()...)
}
