package token_test

import (
	"encoding/base64"
	"strings"
	"testing"
)

// forgeHeader replaces the JOSE header of raw, keeping payload and signature.
func forgeHeader(t *testing.T, raw, header string) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + parts[1] + "." + parts[2]
}

func forgePayload(t *testing.T, payload string) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString([]byte(payload))
}
