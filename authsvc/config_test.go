package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestRunRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"DATABASE_URL": "postgres://u:p@127.0.0.1:1/db",
		"AUTH_SECRET":  testSecret,
	}
	for _, tt := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"missing AUTH_SECRET", map[string]string{"AUTH_SECRET": ""}, []string{"AUTH_SECRET: required"}},
		{"missing DATABASE_URL", map[string]string{"DATABASE_URL": ""}, []string{"DATABASE_URL: required"}},
		{"short AUTH_SECRET", map[string]string{"AUTH_SECRET": "too-short"}, []string{"AUTH_SECRET: too short (9 bytes)"}},
		{"short JWT_SECRET", map[string]string{"JWT_SECRET": "short"}, []string{"JWT_SECRET: too short"}},
		{"everything at once", map[string]string{"AUTH_SECRET": "", "DATABASE_URL": "", "JWT_TTL": "soon", "TRUSTED_ORIGINS": "not a url"},
			[]string{"AUTH_SECRET:", "DATABASE_URL:", "JWT_TTL:", "TRUSTED_ORIGINS:"}},
		{"bad AUTH_BASE_URL", map[string]string{"AUTH_BASE_URL": "ftp://x"}, []string{"AUTH_BASE_URL:"}},
		// A bad LOG_LEVEL, a listener without a valid port and a key file
		// that is not there are reported together, before anything starts.
		{"log level, port and key file at once", map[string]string{"LOG_LEVEL": "loud", "AUTHSVC_ADDR": ":99999",
			"JWT_PRIVATE_KEY_FILE": "/nonexistent/gatehouse-test/ed25519.pem", "REDIS_URL": "rediss://127.0.0.1:1/0",
			"REDIS_CA_FILE": "/nonexistent/gatehouse-test/ca.pem"},
			[]string{"LOG_LEVEL:", "AUTHSVC_ADDR:", "JWT_PRIVATE_KEY_FILE: cannot read", "REDIS_CA_FILE:"}},
		{"malformed key file", map[string]string{"JWT_PRIVATE_KEY_FILE": "config_test.go"}, []string{"JWT_PRIVATE_KEY_FILE: want a PEM"}},
		{"bad REDIS_URL", map[string]string{"REDIS_URL": "redis://u:p@127.0.0.1:6379/notadb"}, []string{"REDIS_URL:"}},
		{"REDIS_URL not redis", map[string]string{"REDIS_URL": "http://u:p@127.0.0.1:6379"}, []string{"REDIS_URL:"}},
		{"delay cap below base", map[string]string{"SIGNIN_DELAY_BASE": "2s", "SIGNIN_DELAY_MAX": "1s"}, []string{"SIGNIN_DELAY_MAX:"}},
		{"SMTP_URL not smtp", map[string]string{"SMTP_URL": "http://u:p@mail.example.com", "MAIL_FROM": "a@example.com"}, []string{"SMTP_URL: scheme"}},
		{"SMTP_URL unknown parameter", map[string]string{"SMTP_URL": "smtp://u:p@mail.example.com?tls=yes", "MAIL_FROM": "a@example.com"}, []string{"SMTP_URL: unknown parameter"}},
		{"SMTP_URL without MAIL_FROM", map[string]string{"SMTP_URL": "smtps://u:p@mail.example.com"}, []string{"MAIL_FROM: required"}},
		{"bad MAIL_FROM", map[string]string{"SMTP_URL": "smtp://mail.example.com", "MAIL_FROM": "not an address"}, []string{"MAIL_FROM:"}},
		{"bad REQUIRE_EMAIL_VERIFICATION", map[string]string{"REQUIRE_EMAIL_VERIFICATION": "yes please"}, []string{"REQUIRE_EMAIL_VERIFICATION:"}},
		{"verification required without mail", map[string]string{"REQUIRE_EMAIL_VERIFICATION": "true"}, []string{"REQUIRE_EMAIL_VERIFICATION: needs SMTP_URL"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.set {
				env[k] = v
			}
			err := run(context.Background(), nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("run succeeded, want a configuration error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "too-short") || strings.Contains(err.Error(), "u:p@") {
				t.Errorf("error reveals a secret: %q", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(func(k string) (string, bool) {
		v, ok := map[string]string{"DATABASE_URL": "postgres://x/y", "AUTH_SECRET": testSecret, "AUTHSVC_METRICS_ADDR": ""}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8082" || cfg.MetricsAddr != "" || cfg.BaseURL != "http://localhost:8080" ||
		cfg.JWTTTL.String() != "15m0s" || cfg.SessionTTL.String() != "168h0m0s" || cfg.CookiePrefix != "better-auth" ||
		len(cfg.TrustedOrigins) != 1 || cfg.TrustedOrigins[0] != "http://localhost:8080" {
		t.Errorf("defaults = %+v", cfg)
	}
	if cfg.RedisURL != "" || cfg.RedisPrefix != "gatehouse:" || cfg.RedisTimeout.String() != "500ms" ||
		cfg.SignInFreeFailures != 5 || cfg.SignInDelayBase.String() != "250ms" || cfg.SignInDelayMax.String() != "8s" ||
		cfg.SignInFailWindow.String() != "15m0s" {
		t.Errorf("Redis and throttle defaults = %+v", cfg)
	}
	if cfg.SMTPURL != "" || cfg.RequireEmailVerification || cfg.MailPerEmail != 5 || cfg.MailPerIP != 20 ||
		cfg.MailAnswerFloor.String() != "1s" || cfg.SMTPTimeout.String() != "10s" {
		t.Errorf("mail defaults = %+v", cfg)
	}
	if cfg.Password.Memory < 19*1024 || cfg.Password.Iterations < 2 || cfg.Password.Parallelism < 1 {
		t.Errorf("default argon2id parameters %+v are below OWASP's minimum", cfg.Password)
	}
}
