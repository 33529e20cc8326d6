package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// A configuration with several problems names all of them in one error,
// before anything starts: a bad LOG_LEVEL, a listener without a valid
// port, a CA file that is not there, a pool size out of range, and a
// prepared-statements mode it does not know.
func TestConfigReportsEveryProblem(t *testing.T) {
	env := map[string]string{
		"LOG_LEVEL":              "loud",
		"BACKEND_ADDR":           "127.0.0.1:99999",
		"DATABASE_URL":           "postgres://u@127.0.0.1:1/db",
		"REDIS_URL":              "rediss://127.0.0.1:1/0",
		"REDIS_CA_FILE":          filepath.Join(t.TempDir(), "missing-ca.pem"),
		"DB_MAX_CONNS":           "0",
		"DB_PREPARED_STATEMENTS": "on",
	}
	_, err := loadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		t.Fatal("accepted")
	}
	for _, name := range []string{"LOG_LEVEL", "BACKEND_ADDR", "REDIS_CA_FILE", "DB_MAX_CONNS", `DB_PREPARED_STATEMENTS: "on": want one of auto, off`} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
