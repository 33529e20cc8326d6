package main

import (
	"net/http"
	"sort"
	"testing"
	"time"
)

// BenchmarkSignIn compares a wrong password with an unknown email at the
// production argon2id parameters: SPEC.md requires that timing does not
// tell whether an account exists. Each reports its median latency:
//
//	go test -run '^$' -bench SignIn -benchtime 40x ./authsvc/
func BenchmarkSignIn(b *testing.B) {
	in := startDefault(b, "PASSWORD_HASH_MEMORY_KIB", "", "PASSWORD_HASH_ITERATIONS", "", "LOG_LEVEL", "error")
	newBrowser(b, in).signUp("bench@example.com", "the-right-password")
	for _, bc := range []struct{ name, email string }{
		{"WrongPassword", "bench@example.com"},
		{"UnknownEmail", "nobody@example.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			br := newBrowser(b, in)
			body := map[string]any{"email": bc.email, "password": "not-the-password"}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				began := time.Now()
				r := br.do("POST", "/api/auth/sign-in/email", body)
				lat = append(lat, time.Since(began))
				if r.status != http.StatusUnauthorized {
					b.Fatalf("status %d", r.status)
				}
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
		})
	}
}
