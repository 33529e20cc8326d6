package main

import (
	"testing"

	"gatehouse.dev/kit/doccheck"
)

// Every variable authsvc reads is in docs/configuration.md, and every one
// documented for it is read.
func TestConfigurationIsDocumented(t *testing.T) {
	doccheck.CheckLoader(t, "authsvc", func(l func(string) (string, bool)) { _, _ = loadConfig(l) }, nil)
}
