package devenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// MailpitVersion is the Mailpit (github.com/axllent/mailpit) that tests and
// `make run` use as their SMTP server and mail catcher.
const MailpitVersion = "v1.33.1"

// MailpitBinary returns the path of the pinned Mailpit, building it with
// `go install` into a per-version cache directory on first use
// ($XDG_CACHE_HOME or ~/.cache, gatehouse/mailpit-<version>). The build runs
// under a file lock, so parallel test binaries build it once; it needs the
// Go toolchain and the module proxy only the first time.
func MailpitBinary() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("mailpit: no cache directory: %w", err)
	}
	dir := filepath.Join(base, "gatehouse", "mailpit-"+MailpitVersion)
	bin := filepath.Join(dir, "mailpit")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process built it while we waited
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if _, e := os.Stat("/usr/local/go/bin/go"); e != nil {
			return "", errors.New("mailpit: not cached and no Go toolchain on PATH to build it")
		}
		goBin = "/usr/local/go/bin/go"
	}
	// Build into a temporary GOBIN and rename, so a killed build never
	// leaves a half-written binary at the cached path.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(goBin, "install", "-trimpath", "github.com/axllent/mailpit@"+MailpitVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mailpit: go install github.com/axllent/mailpit@%s: %v\n%s", MailpitVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "mailpit"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// MailpitOptions configures StartMailpit.
type MailpitOptions struct {
	// SMTPAddr and HTTPAddr are host:port on loopback; empty picks free
	// ports on 127.0.0.1.
	SMTPAddr, HTTPAddr string
	// Database is Mailpit's SQLite file; empty keeps messages in a
	// temporary file Mailpit removes on exit.
	Database string
	// TLSCert and TLSKey (PEM files) make Mailpit offer STARTTLS;
	// RequireSTARTTLS refuses mail before it, ImplicitTLS serves SMTPS
	// (TLS from the first byte) instead.
	TLSCert, TLSKey              string
	RequireSTARTTLS, ImplicitTLS bool
	// AcceptAnyAuth accepts any SMTP AUTH credentials, also without TLS.
	AcceptAnyAuth bool
	// Log receives Mailpit's output; nil discards it.
	Log *os.File
}

// Mailpit is a running Mailpit.
type Mailpit struct {
	SMTPAddr string // host:port of its SMTP listener
	HTTPAddr string // host:port of its web UI and API (/api/v1/...)
	cmd      *exec.Cmd
	done     chan struct{}
}

// StartMailpit starts Mailpit and returns once its API answers.
func StartMailpit(o MailpitOptions) (*Mailpit, error) {
	bin, err := MailpitBinary()
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		smtpAddr, httpAddr := o.SMTPAddr, o.HTTPAddr
		if smtpAddr == "" {
			smtpAddr = freeLoopback()
		}
		if httpAddr == "" {
			httpAddr = freeLoopback()
		}
		m, err := startMailpit(bin, o, smtpAddr, httpAddr)
		if err == nil || (o.SMTPAddr != "" && o.HTTPAddr != "") || attempt == 3 {
			return m, err
		}
	}
}

func freeLoopback() string {
	p, err := FreePort()
	if err != nil {
		return "127.0.0.1:0"
	}
	return "127.0.0.1:" + strconv.Itoa(p)
}

func startMailpit(bin string, o MailpitOptions, smtpAddr, httpAddr string) (*Mailpit, error) {
	// No reverse DNS of clients and no update check: Mailpit talks to nobody.
	args := []string{"--smtp", smtpAddr, "--listen", httpAddr, "--quiet", "--disable-version-check", "--smtp-disable-rdns"}
	if o.Database != "" {
		args = append(args, "--database", o.Database)
	}
	if o.TLSCert != "" {
		args = append(args, "--smtp-tls-cert", o.TLSCert, "--smtp-tls-key", o.TLSKey)
	}
	if o.RequireSTARTTLS {
		args = append(args, "--smtp-require-starttls")
	}
	if o.ImplicitTLS {
		args = append(args, "--smtp-require-tls")
	}
	if o.AcceptAnyAuth {
		args = append(args, "--smtp-auth-accept-any")
		if !o.RequireSTARTTLS && !o.ImplicitTLS { // Mailpit refuses the combination
			args = append(args, "--smtp-auth-allow-insecure")
		}
	}
	cmd := exec.Command(bin, args...)
	var startLog bytes.Buffer // reported when it dies during start-up
	cmd.Stdout, cmd.Stderr = &startLog, &startLog
	if o.Log != nil {
		cmd.Stdout, cmd.Stderr = io.MultiWriter(o.Log, &startLog), io.MultiWriter(o.Log, &startLog)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("mailpit: %w", err)
	}
	m := &Mailpit{SMTPAddr: smtpAddr, HTTPAddr: httpAddr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return nil, fmt.Errorf("mailpit exited during start-up (SMTP %s, HTTP %s): %s", smtpAddr, httpAddr, bytes.TrimSpace(startLog.Bytes()))
		default:
		}
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if c, err := net.DialTimeout("tcp", smtpAddr, time.Second); err == nil {
				c.Close()
				if resp.StatusCode == http.StatusOK {
					return m, nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.Stop()
	return nil, errors.New("mailpit: not ready after 20s")
}

// Stop ends Mailpit and waits for it to exit.
func (m *Mailpit) Stop() {
	if m == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}
