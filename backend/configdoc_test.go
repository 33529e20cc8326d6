package main

import (
	"testing"

	"gatehouse.dev/kit/doccheck"
)

// Every variable backend reads is in docs/configuration.md, and every one
// documented for it is read.
func TestConfigurationIsDocumented(t *testing.T) {
	// REDIS_URL switches on REDIS_CA_FILE and REDIS_SENTINEL_PASSWORD.
	doccheck.CheckLoader(t, "backend", func(l func(string) (string, bool)) { _, _ = loadConfig(l) },
		map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"})
}
