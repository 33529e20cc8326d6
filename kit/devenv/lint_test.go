package devenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// make lint fails when a tracked file is an executable binary or over
// 1 MiB, and passes on the committed password list (issue 12).
func TestLintRefusesTrackedBinaries(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	makefile := filepath.Join(strings.TrimSpace(string(top)), "Makefile")
	for _, tc := range []struct {
		name    string
		file    string
		content []byte
		wantErr string
	}{
		{"source file", "main.go", []byte("package main\n"), ""},
		{"ELF binary", "proxy/proxy", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...), "ELF executable"},
		{"PE binary", "tool.exe", append([]byte("MZ\x90\x00"), make([]byte, 64)...), "executable binary"},
		{"large file", "data.bin", make([]byte, 1<<20+1), "over 1 MiB"},
		{"the password list", "authsvc/internal/password/common-passwords.txt", make([]byte, 1<<20+1), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			git := func(args ...string) {
				cmd := exec.Command("git", args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git %v: %v\n%s", args, err, out)
				}
			}
			git("init", "-q")
			p := filepath.Join(dir, tc.file)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tc.content, 0o755); err != nil {
				t.Fatal(err)
			}
			git("add", tc.file)
			cmd := exec.Command("make", "-s", "-f", makefile, "lint-tracked")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("make lint-tracked failed on %s: %v\n%s", tc.file, err, out)
			case tc.wantErr != "" && err == nil:
				t.Errorf("make lint-tracked passed with %s tracked; want it refused (%s)", tc.file, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(string(out), tc.file+": "+tc.wantErr):
				t.Errorf("output does not name %s: %s\n%s", tc.file, tc.wantErr, out)
			}
		})
	}
}
