package devenv

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	// Dir holds the cluster (Dir/data), its password and log. An existing
	// cluster there is reused, so data survives restarts.
	Dir string
	// Port to listen on, on 127.0.0.1; 0 picks a free one.
	Port int
	// Durable keeps fsync on (make run). Tests turn it off for speed.
	Durable bool
}

// Postgres is a private PostgreSQL server run from a local directory.
type Postgres struct {
	opts     PostgresOptions
	bin      string
	cred     *syscall.Credential
	password string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// StartPostgres initialises Dir/data when needed and starts the server,
// returning once it accepts connections.
func StartPostgres(o PostgresOptions) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serviceUser("postgres", "nobody")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := checkTraversable(o.Dir, cred); err != nil {
		return nil, err
	}
	p := &Postgres{opts: o, bin: bin, cred: cred}
	if err := p.initdb(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if o.Port == 0 || attempt > 0 {
			if p.opts.Port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		err = p.Start()
		if err == nil || o.Port != 0 || attempt == 4 {
			return p, err
		}
	}
}

func (p *Postgres) initdb() error {
	data := filepath.Join(p.opts.Dir, "data")
	pwPath := filepath.Join(p.opts.Dir, "pg.password")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		b, err := os.ReadFile(pwPath)
		if err != nil {
			return fmt.Errorf("postgres: %s exists but its password file is missing: %w", data, err)
		}
		p.password = strings.TrimSpace(string(b))
		return chownTree(p.opts.Dir, p.cred)
	}
	_ = os.RemoveAll(data)
	var b [16]byte
	_, _ = rand.Read(b[:])
	p.password = hex.EncodeToString(b[:])
	if err := os.WriteFile(pwPath, []byte(p.password+"\n"), 0o600); err != nil {
		return err
	}
	if err := chownTree(p.opts.Dir, p.cred); err != nil {
		return err
	}
	logPath := filepath.Join(p.opts.Dir, "initdb.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := command(p.cred, lf, filepath.Join(p.bin, "initdb"),
		"-D", data, "-U", "postgres", "--pwfile", pwPath, "--auth", "scram-sha-256",
		"-E", "UTF8", "--locale", "C.UTF-8", "--no-sync")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, tail(logPath, 2000))
	}
	return nil
}

// Start runs the server on its port (after Stop, the same port and data).
func (p *Postgres) Start() error {
	if p.cmd != nil {
		return errors.New("postgres: already running")
	}
	logPath := filepath.Join(p.opts.Dir, "postgres.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"-D", filepath.Join(p.opts.Dir, "data"),
		"-p", strconv.Itoa(p.opts.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "max_connections=400",
		"-c", "log_min_messages=warning",
	}
	if !p.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := command(p.cred, lf, filepath.Join(p.bin, "postgres"), args...)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("postgres: %w", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(p.exited) }()
	ready := waitFor(30*time.Second, p.exited, func() bool {
		return exec.Command(filepath.Join(p.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.opts.Port)).Run() == nil
	})
	if !ready {
		_ = p.Stop()
		return fmt.Errorf("postgres did not become ready on port %d: %s", p.opts.Port, tail(logPath, 2000))
	}
	return nil
}

// Stop shuts the server down (fast mode: clients disconnected, data kept)
// and waits for it to exit. Stopping a stopped server is a no-op.
func (p *Postgres) Stop() error {
	if p.cmd == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
	return nil
}

// Port is the TCP port on 127.0.0.1.
func (p *Postgres) Port() int { return p.opts.Port }

// URL is the connection URL for database db as the superuser.
func (p *Postgres) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", p.password),
		Host: "127.0.0.1:" + strconv.Itoa(p.opts.Port), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDatabase creates db unless it exists.
func (p *Postgres) CreateDatabase(db string) error {
	psql := func(sql string) (string, error) {
		cmd := exec.Command(filepath.Join(p.bin, "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
			"-h", "127.0.0.1", "-p", strconv.Itoa(p.opts.Port), "-U", "postgres", "-d", "postgres", "-c", sql)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+p.password)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("psql: %w: %s", err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	out, err := psql(fmt.Sprintf("SELECT 1 FROM pg_database WHERE datname = '%s'", strings.ReplaceAll(db, "'", "''")))
	if err != nil || out == "1" {
		return err
	}
	_, err = psql(fmt.Sprintf(`CREATE DATABASE "%s"`, strings.ReplaceAll(db, `"`, `""`)))
	return err
}
