package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse.dev/authsvc/internal/mail"
	"gatehouse.dev/kit/devenv"
	"gatehouse.dev/kit/testenv"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns a TLS config trusting only it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, trust *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

func msg(to string) mail.Message {
	return mail.Message{To: to, Subject: "Reset your password",
		Text: "Open https://example.test/reset?token=abc to reset.",
		HTML: `<p>Open <a href="https://example.test/reset?token=abc">this link</a> to reset.</p>`}
}

func TestSendTransports(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, trust := selfSigned(t, dir)
	plain := testenv.Mailpit(t, devenv.MailpitOptions{})
	starttls := testenv.Mailpit(t, devenv.MailpitOptions{TLSCert: certFile, TLSKey: keyFile, RequireSTARTTLS: true, AcceptAnyAuth: true})
	implicit := testenv.Mailpit(t, devenv.MailpitOptions{TLSCert: certFile, TLSKey: keyFile, ImplicitTLS: true})

	for _, tt := range []struct {
		name string
		srv  *testenv.MailServer
		url  string
	}{
		{"plain smtp, STARTTLS not offered", plain, "smtp://" + plain.SMTPAddr},
		{"STARTTLS required, with AUTH", starttls, "smtp://user:secret@" + starttls.SMTPAddr},
		{"STARTTLS opportunistic when offered", starttls, "smtp://" + starttls.SMTPAddr + "?starttls=opportunistic"},
		{"smtps implicit TLS", implicit, "smtps://" + implicit.SMTPAddr},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := mail.New(mail.Config{URL: tt.url, From: "Gatehouse <noreply@example.test>", TLS: trust, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			to := strings.ReplaceAll(strings.ToLower(t.Name()), "/", ".")
			to = strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r == '.' {
					return r
				}
				return '-'
			}, to) + "@example.test"
			if err := s.Send(context.Background(), msg(to)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := tt.srv.WaitFor(t, to, 1)
			if got.Subject != "Reset your password" || !strings.Contains(got.Text, "token=abc") || !strings.Contains(got.HTML, `href="https://example.test/reset?token=abc"`) {
				t.Errorf("delivered %+v", got)
			}
			if ct := strings.Join(got.Headers["Content-Type"], ""); !strings.HasPrefix(ct, "multipart/alternative") {
				t.Errorf("Content-Type = %q, want multipart/alternative", ct)
			}
			if from := got.From.Address; from != "noreply@example.test" {
				t.Errorf("From = %q", from)
			}
		})
	}

	t.Run("STARTTLS required but not offered", func(t *testing.T) {
		s, _ := mail.New(mail.Config{URL: "smtp://" + plain.SMTPAddr + "?starttls=required", From: "noreply@example.test", Attempts: 1})
		if err := s.Send(context.Background(), msg("nostarttls@example.test")); err == nil {
			t.Fatal("sent without TLS although starttls=required")
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		s, _ := mail.New(mail.Config{URL: "smtps://" + implicit.SMTPAddr, From: "noreply@example.test", Attempts: 1})
		if err := s.Send(context.Background(), msg("untrusted@example.test")); err == nil {
			t.Fatal("sent to a server with an untrusted certificate")
		}
	})
}

func TestSendFailures(t *testing.T) {
	t.Run("not configured", func(t *testing.T) {
		s, err := mail.New(mail.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), msg("a@example.test")); !errors.Is(err, mail.ErrNotConfigured) {
			t.Fatalf("err = %v, want ErrNotConfigured", err)
		}
	})
	t.Run("server down: retried, then an error within the bound", func(t *testing.T) {
		addr := testenv.FreeAddr(t) // nothing listens there
		s, _ := mail.New(mail.Config{URL: "smtp://" + addr, From: "noreply@example.test", Timeout: time.Second, Attempts: 3})
		start := time.Now()
		err := s.Send(context.Background(), msg("a@example.test"))
		if err == nil {
			t.Fatal("Send to a closed port succeeded")
		}
		// 3 refused dials and back-offs of 250ms + 500ms.
		if d := time.Since(start); d < 750*time.Millisecond {
			t.Errorf("gave up after %v: the retries did not happen", d)
		}
	})
	t.Run("context deadline bounds the whole send", func(t *testing.T) {
		// A listener that accepts and never greets: each attempt hangs until its timeout.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		s, _ := mail.New(mail.Config{URL: "smtp://" + ln.Addr().String(), From: "noreply@example.test", Timeout: 300 * time.Millisecond, Attempts: 2})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Send(ctx, msg("a@example.test")); err == nil {
			t.Fatal("Send to a silent server succeeded")
		}
		if ctx.Err() != nil {
			t.Fatal("the per-attempt timeout did not bound the send")
		}
	})
}

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"smtp://mail.example.com", true},
		{"smtp://u:p@mail.example.com:2525?starttls=required", true},
		{"smtp://mail.example.com?starttls=opportunistic", true},
		{"smtps://u:p@mail.example.com", true},
		{"smtps://mail.example.com?starttls=required", false},
		{"http://mail.example.com", false},
		{"smtp://", false},
		{"smtp://mail.example.com:99999", false},
		{"smtp://mail.example.com?starttls=maybe", false},
		{"smtp://mail.example.com?tls=1", false},
	} {
		err := mail.ParseURL(tt.url)
		if (err == nil) != tt.ok {
			t.Errorf("ParseURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "u:p") {
			t.Errorf("error quotes the URL's credentials: %v", err)
		}
	}
}
