package envconf

import (
	"strings"
	"testing"
)

func TestAddrAndLogLevel(t *testing.T) {
	env := map[string]string{"A": "127.0.0.1:0", "B": ":http", "C": "[::1]:65536", "M": "", "L": "loud", "K": "debug"}
	r := FromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if got := r.Addr("A", ":1"); got != "127.0.0.1:0" {
		t.Errorf("Addr(A) = %q", got)
	}
	if got := r.Addr("UNSET", ":8080"); got != ":8080" {
		t.Errorf("Addr(UNSET) = %q, want the default", got)
	}
	r.Addr("B", ":1")
	r.Addr("C", ":1")
	if got := r.DisableableAddr("M", ":9090"); got != "" {
		t.Errorf("DisableableAddr(M set empty) = %q, want disabled", got)
	}
	if got := r.LogLevel("K", "info"); got != "debug" {
		t.Errorf("LogLevel(K) = %q", got)
	}
	r.LogLevel("L", "info")
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`B: ":http"`, `C: "[::1]:65536"`, `L: "loud"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "A:") || strings.Contains(err.Error(), "K:") || strings.Contains(err.Error(), "M:") {
		t.Errorf("error %q reports a valid value", err)
	}
}
