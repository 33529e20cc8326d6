package main

import (
	"testing"

	"gatehouse.dev/kit/doccheck"
)

// Every variable backend reads is in docs/configuration.md, and every one
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
	doccheck.Check(t, "backend", names)
}

// configDocEnv switches on what is read only when something else is set.
var configDocEnv = map[string]string{}

// configDocExtra returns what is read outside loadConfig (nothing here).
func configDocExtra(*testing.T) []string { return nil }
