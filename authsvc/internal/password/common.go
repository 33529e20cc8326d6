package password

import (
	_ "embed"
	"strings"
	"sync"
)

// commonList is zxcvbn 4.4.2's list of the 30,000 most common passwords,
// cut to those of 8+ characters (the only ones our length rule lets
// through). Source, licence and selection are in the file's header and in
// NOTICE.
//
//go:embed common-passwords.txt
var commonList string

var commonSet = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 12000)
	for _, line := range strings.Split(commonList, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[strings.ToLower(line)] = struct{}{}
	}
	return set
})

// Common reports whether pw is on the embedded list of common passwords,
// ignoring letter case (NIST SP 800-63B §3.1.1.2 asks verifiers to refuse
// passwords found in breach corpora; "Password1" is no better than
// "password1").
func Common(pw string) bool {
	_, ok := commonSet()[strings.ToLower(pw)]
	return ok
}

// CommonCount is the number of entries on the list (for tests and start-up logs).
func CommonCount() int { return len(commonSet()) }

// CommonEntries calls f with every entry on the list, in order.
func CommonEntries(f func(string)) {
	for _, line := range strings.Split(commonList, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			f(line)
		}
	}
}
