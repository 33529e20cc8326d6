package main

import (
	"testing"

	"gatehouse.dev/kit/doccheck"
	"gatehouse.dev/kit/gcdefault"
)

// Every variable the proxy reads is in docs/configuration.md, and every one
// documented for it is read, by loadConfig or by gcdefault (the soft memory limit).
func TestConfigurationIsDocumented(t *testing.T) {
	gc := doccheck.NewRecorder(map[string]string{"GOMEMLIMIT": "1GiB"})
	gcdefault.Apply(gc.Lookup, func(string) ([]byte, error) { return nil, nil }, 0)
	doccheck.CheckLoader(t, "proxy", func(l func(string) (string, bool)) { _, _ = loadConfig(l) },
		map[string]string{"JWT_SECRET": "0123456789abcdef0123456789abcdef", "REDIS_URL": "redis://127.0.0.1:1/0"},
		gc.Read()...)
}
