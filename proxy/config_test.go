package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/proxy/internal/ratelimit"
)

const secret32 = "0123456789abcdef0123456789abcdef"

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(envFunc(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.MetricsAddr != ":9090" || c.BackendURL.String() != "http://127.0.0.1:8081" ||
		c.JWKSURL != "http://127.0.0.1:8082/api/auth/jwks" || c.RedisURL != "redis://127.0.0.1:6379/0" ||
		c.Leeway != 30*time.Second || c.AuthRateLimit != (ratelimit.Limit{Rate: 10, Period: time.Minute}) ||
		c.AuthGeneralRateLimit != (ratelimit.Limit{Rate: 120, Period: time.Minute}) || c.CookiePrefix != "better-auth" ||
		c.UpstreamTimeout != 30*time.Second || c.ShutdownTimeout != 15*time.Second || c.DrainDelay != 0 || c.WebURL != nil {
		t.Errorf("defaults: %+v", c)
	}
	if len(c.Warnings) != 2 {
		t.Errorf("warnings %q, want JWT_ISSUER and JWT_AUDIENCE", c.Warnings)
	}
}

func TestConfigJWKSFollowsAuthsvc(t *testing.T) {
	c, err := loadConfig(envFunc(map[string]string{"AUTHSVC_URL": "http://auth:9000"}))
	if err != nil || c.JWKSURL != "http://auth:9000/api/auth/jwks" {
		t.Fatalf("JWKS_URL %q err %v", c.JWKSURL, err)
	}
}

func TestConfigEmptyDisables(t *testing.T) {
	c, err := loadConfig(envFunc(map[string]string{"PROXY_METRICS_ADDR": "", "REDIS_URL": "", "JWKS_URL": "", "JWT_SECRET": secret32}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != "" || c.RedisURL != "" || c.JWKSURL != "" || string(c.JWTSecret) != secret32 {
		t.Errorf("got metrics %q redis %q jwks %q", c.MetricsAddr, c.RedisURL, c.JWKSURL)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string // every variable named
	}{
		{"neither JWKS_URL nor JWT_SECRET", map[string]string{"JWKS_URL": ""}, []string{"JWKS_URL", "JWT_SECRET"}},
		{"neither, secret empty too", map[string]string{"JWKS_URL": "", "JWT_SECRET": ""}, []string{"neither JWKS_URL nor JWT_SECRET"}},
		{"short JWT_SECRET", map[string]string{"JWT_SECRET": "short-secret-value"}, []string{"JWT_SECRET", "too short"}},
		{"bad AUTH_RATE_LIMIT", map[string]string{"AUTH_RATE_LIMIT": "ten per minute"}, []string{"AUTH_RATE_LIMIT"}},
		{"bad AUTH_GENERAL_RATE_LIMIT", map[string]string{"AUTH_GENERAL_RATE_LIMIT": "5/d"}, []string{"AUTH_GENERAL_RATE_LIMIT"}},
		{"bad TRUSTED_PROXIES", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, nonsense"}, []string{"TRUSTED_PROXIES", "nonsense"}},
		{"bad ALLOWED_ORIGINS", map[string]string{"ALLOWED_ORIGINS": "app.example.com"}, []string{"ALLOWED_ORIGINS"}},
		{"bad BACKEND_URL", map[string]string{"BACKEND_URL": "ftp://x"}, []string{"BACKEND_URL"}},
		{"BACKEND_URL with path", map[string]string{"BACKEND_URL": "http://x/api"}, []string{"BACKEND_URL"}},
		{"bad REDIS_URL", map[string]string{"REDIS_URL": "http://x"}, []string{"REDIS_URL"}},
		{"bad UPSTREAM_TIMEOUT", map[string]string{"UPSTREAM_TIMEOUT": "soon"}, []string{"UPSTREAM_TIMEOUT"}},
		{"bad JWT_LEEWAY", map[string]string{"JWT_LEEWAY": "-1s"}, []string{"JWT_LEEWAY"}},
		{"all at once", map[string]string{"JWT_SECRET": "short-secret-value", "AUTH_RATE_LIMIT": "x", "SHUTDOWN_TIMEOUT": "0s"},
			[]string{"JWT_SECRET", "AUTH_RATE_LIMIT", "SHUTDOWN_TIMEOUT"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(envFunc(tt.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if s := tt.env["JWT_SECRET"]; s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("error %q reveals the secret", err)
			}
		})
	}
}

func TestConfigWarnsOnlyWhenIssuerAudienceEmpty(t *testing.T) {
	c, err := loadConfig(envFunc(map[string]string{"JWT_ISSUER": "https://a", "JWT_AUDIENCE": "https://a"}))
	if err != nil || len(c.Warnings) != 0 {
		t.Fatalf("warnings %q err %v", c.Warnings, err)
	}
}

func TestConfigRevocationCacheAndPProf(t *testing.T) {
	c, err := loadConfig(envFunc(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RevocationPrefix != "gatehouse:" || c.SignatureCacheSize != 10_000 || c.tokenCacheSize() != 10_000 || c.PProf {
		t.Errorf("defaults: prefix %q, cache %d, pprof %v", c.RevocationPrefix, c.SignatureCacheSize, c.PProf)
	}
	c, err = loadConfig(envFunc(map[string]string{"REDIS_PREFIX": "gh:", "SIGNATURE_CACHE_SIZE": "0", "PPROF": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RevocationPrefix != "gh:" || c.tokenCacheSize() >= 0 || !c.PProf {
		t.Errorf("set: prefix %q, token cache size %d (want < 0: off), pprof %v", c.RevocationPrefix, c.tokenCacheSize(), c.PProf)
	}
	_, err = loadConfig(envFunc(map[string]string{"REDIS_PREFIX": "a b", "SIGNATURE_CACHE_SIZE": "-1", "PPROF": "yes"}))
	for _, v := range []string{"REDIS_PREFIX", "SIGNATURE_CACHE_SIZE", "PPROF"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("error %v does not name %s", err, v)
		}
	}
}

// A configuration with several problems names all of them in one error,
// before anything starts: a bad LOG_LEVEL, a listener without a valid port,
// a routes file and a CA file that are not there.
func TestConfigReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	_, err := loadConfig(envFunc(map[string]string{
		"LOG_LEVEL":         "loud",
		"PROXY_ADDR":        ":http-alt",
		"VERIFY_ADDR":       "127.0.0.1:65536",
		"PROXY_ROUTES_FILE": filepath.Join(dir, "routes.yaml"),
		"REDIS_URL":         "rediss://127.0.0.1:1/0",
		"REDIS_CA_FILE":     filepath.Join(dir, "ca.pem"),
	}))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, name := range []string{"LOG_LEVEL", "PROXY_ADDR", "VERIFY_ADDR", "PROXY_ROUTES_FILE", "REDIS_CA_FILE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
