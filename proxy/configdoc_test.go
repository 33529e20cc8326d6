package main

import (
	"testing"

	"gatehouse.dev/kit/doccheck"
)

// Every variable proxy reads is in docs/configuration.md, and every one
// documented for it is read: the real loader runs through a recording
// environment, once empty and once with every optional feature switched on.
func TestConfigurationIsDocumented(t *testing.T) {
	rec := doccheck.NewRecorder(nil)
	_, _ = loadConfig(rec.Lookup)
	full := doccheck.NewRecorder(configDocEnv)
	_, _ = loadConfig(full.Lookup)
	read := map[string]bool{}
	for _, k := range append(rec.Read(), full.Read()...) {
		read[k] = true
	}
	for _, k := range configDocExtra(t) {
		read[k] = true
	}
	var names []string
	for k := range read {
		names = append(names, k)
	}
	doccheck.Check(t, "proxy", names)
}

// configDocEnv switches on what is read only when something else is set.
var configDocEnv = map[string]string{"JWT_SECRET": "0123456789abcdef0123456789abcdef", "REDIS_URL": "redis://127.0.0.1:1/0"}

// configDocExtra returns what the proxy reads outside loadConfig: the GC
// defaults (tuneGC), run through a recorder too.
func configDocExtra(t *testing.T) []string {
	rec := doccheck.NewRecorder(map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"})
	tuneGC(rec.Lookup, func(string) ([]byte, error) { return nil, nil })
	return rec.Read()
}
