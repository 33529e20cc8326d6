package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"gatehouse.dev/kit/devenv"
)

// service is one Gatehouse process of the one-host stack.
type service struct {
	name  string
	ready string // URL polled until 200
	env   []string
	cmd   *exec.Cmd
	done  chan struct{}
}

// runStack starts durable Postgres and Redis under the state directory, then
// authsvc, backend, web (when built) and the proxy, and stops them all in
// reverse order on Ctrl-C.
func runStack(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	state := fs.String("state", ".run", "directory for data kept between runs")
	binDir := fs.String("bin", "bin", "directory of the built services")
	_ = fs.Parse(args)

	if err := devenv.EnsureInstalled(); err != nil {
		return err
	}
	abs, err := filepath.Abs(*state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	secrets, err := loadSecrets(filepath.Join(abs, "secrets.env"))
	if err != nil {
		return err
	}
	pg, err := devenv.StartPostgres(devenv.PostgresOptions{Dir: filepath.Join(abs, "postgres"), Durable: true})
	if err != nil {
		return err
	}
	defer pg.Stop()
	for _, db := range []string{"authsvc", "backend"} {
		if err := pg.CreateDatabase(db); err != nil {
			return err
		}
	}
	rd, err := devenv.StartRedis(devenv.RedisOptions{Dir: filepath.Join(abs, "redis"), Durable: true})
	if err != nil {
		return err
	}
	defer rd.Stop()

	// Mailpit catches every mail authsvc sends (password reset, email
	// verification); its web UI shows them, links clickable. On its
	// default ports, so the README can say where.
	mp, mpErr := devenv.StartMailpit(devenv.MailpitOptions{
		SMTPAddr: "127.0.0.1:1025", HTTPAddr: "127.0.0.1:8025", Database: filepath.Join(abs, "mailpit.db"),
	})
	mailEnv := []string{"SMTP_URL=", "MAIL_FROM="}
	if mpErr != nil {
		fmt.Fprintf(os.Stderr, "warning: no mail catcher, so password reset and email verification are off: %v\n", mpErr)
	} else {
		defer mp.Stop()
		mailEnv = []string{"SMTP_URL=smtp://" + mp.SMTPAddr, "MAIL_FROM=Gatehouse <noreply@localhost>"}
	}

	const public = "http://localhost:8080"
	svcs := []*service{
		{name: "authsvc", ready: "http://127.0.0.1:8082/readyz", env: append([]string{
			"AUTHSVC_ADDR=127.0.0.1:8082", "AUTHSVC_METRICS_ADDR=127.0.0.1:9092",
			"DATABASE_URL=" + pg.URL("authsvc"), "REDIS_URL=" + rd.URL(),
			"AUTH_BASE_URL=" + public, "AUTH_SECRET=" + secrets["AUTH_SECRET"],
		}, mailEnv...)},
		{name: "backend", ready: "http://127.0.0.1:8081/readyz", env: []string{
			"BACKEND_ADDR=127.0.0.1:8081", "BACKEND_METRICS_ADDR=127.0.0.1:9091",
			"DATABASE_URL=" + pg.URL("backend"), "REDIS_URL=" + rd.URL(), // user.deleted events from authsvc
		}},
		{name: "web", ready: "http://127.0.0.1:8083/healthz", env: []string{"WEB_ADDR=127.0.0.1:8083", "WEB_METRICS_ADDR=127.0.0.1:9093"}},
		{name: "proxy", ready: "http://127.0.0.1:8080/readyz", env: []string{
			"PROXY_ADDR=:8080", "PROXY_METRICS_ADDR=127.0.0.1:9090",
			"BACKEND_URL=http://127.0.0.1:8081", "AUTHSVC_URL=http://127.0.0.1:8082",
			"REDIS_URL=" + rd.URL(), "JWT_ISSUER=" + public, "JWT_AUDIENCE=" + public,
		}},
	}
	var running []*service
	for _, s := range svcs {
		if _, err := os.Stat(filepath.Join(*binDir, s.name)); err != nil {
			continue // not built in this checkout yet
		}
		running = append(running, s)
	}
	hasWeb := false
	for _, s := range running {
		hasWeb = hasWeb || s.name == "web"
	}
	for _, s := range running {
		if s.name == "proxy" && hasWeb {
			s.env = append(s.env, "WEB_URL=http://127.0.0.1:8083")
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &lineWriter{w: os.Stdout}
	defer func() {
		for i := len(running) - 1; i >= 0; i-- {
			running[i].stop()
		}
	}()
	for i, s := range running {
		if err := s.start(*binDir, out); err != nil {
			running = running[:i]
			return err
		}
		if err := s.waitReady(ctx, 30*time.Second); err != nil {
			running = running[:i+1]
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "\nGatehouse is running on %s\n", public)
	for _, s := range running {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", s.name, strings.TrimSuffix(strings.TrimSuffix(s.ready, "/readyz"), "/healthz"))
	}
	fmt.Fprintf(os.Stderr, "  postgres 127.0.0.1:%d (databases authsvc, backend; password in %s)\n", pg.Port(), filepath.Join(*state, "postgres", "pg.password"))
	if mp != nil {
		fmt.Fprintf(os.Stderr, "  mailpit  http://%s (every mail authsvc sends; SMTP %s)\n", mp.HTTPAddr, mp.SMTPAddr)
	}
	fmt.Fprintf(os.Stderr, "  redis    %s\n  state    %s (delete it to start afresh)\nPress Ctrl-C to stop.\n\n", rd.Addr(), *state)

	exited := make(chan string, len(running))
	for _, s := range running {
		go func(s *service) { <-s.done; exited <- s.name }(s)
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "\nstopping…")
		return nil
	case name := <-exited:
		return fmt.Errorf("%s exited unexpectedly; see its log above", name)
	}
}

func (s *service) start(binDir string, out *lineWriter) error {
	s.cmd = exec.Command(filepath.Join(binDir, s.name))
	s.cmd.Env = append(os.Environ(), s.env...)
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.done = make(chan struct{})
	go out.copy(s.name, pr)
	go func() { _ = s.cmd.Wait(); pw.Close(); close(s.done) }()
	return nil
}

func (s *service) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during start-up; see its log above", s.name)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s at %s", s.name, timeout, s.ready)
}

func (s *service) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// loadSecrets reads KEY=VALUE lines from path, generating (and saving, mode
// 0600) the development secrets that are missing. They stay on this machine.
func loadSecrets(path string) (map[string]string, error) {
	m := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				m[k] = v
			}
		}
	}
	changed := false
	for _, k := range []string{"AUTH_SECRET"} {
		if len(m[k]) < 32 {
			var b [48]byte
			_, _ = rand.Read(b[:])
			m[k] = base64.RawURLEncoding.EncodeToString(b[:])
			changed = true
		}
	}
	if changed {
		var sb strings.Builder
		sb.WriteString("# Development secrets generated by `make run`. Never commit; delete to regenerate.\n")
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&sb, "%s=%s\n", k, m[k])
		}
		if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// lineWriter prints each service's JSON log lines in a readable form:
// time, service, level, message, then the remaining fields.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lineWriter) copy(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := formatLine(name, sc.Bytes())
		lw.mu.Lock()
		fmt.Fprintln(lw.w, line)
		lw.mu.Unlock()
	}
}

func formatLine(name string, b []byte) string {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return fmt.Sprintf("%-7s | %s", name, b)
	}
	ts, _ := m["ts"].(string)
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		ts = t.Local().Format("15:04:05.000")
	}
	level, _ := m["level"].(string)
	msg, _ := m["msg"].(string)
	for _, k := range []string{"ts", "level", "msg", "service", "caller"} {
		delete(m, k)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %-7s %-5s %s", ts, name, strings.ToUpper(level), msg)
	for _, k := range keys {
		fmt.Fprintf(&sb, " %s=%v", k, m[k])
	}
	return sb.String()
}
