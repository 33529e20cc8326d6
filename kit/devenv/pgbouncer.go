package devenv

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// PgBouncerOptions configures StartPgBouncer.
type PgBouncerOptions struct {
	Dir string // config, auth file, log and pid file
	// PoolMode is session, transaction (default) or statement.
	PoolMode string
	// PoolSize is the server connections per database and user (default 20).
	PoolSize int
}

// PgBouncer is a private pgbouncer in front of one Postgres, on a free
// loopback port, letting in the Postgres superuser with its password.
type PgBouncer struct {
	pg     *Postgres
	opts   PgBouncerOptions
	port   int
	cred   *syscall.Credential
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartPgBouncer starts pgbouncer for every database of pg and returns once
// it accepts connections.
func StartPgBouncer(pg *Postgres, o PgBouncerOptions) (*PgBouncer, error) {
	if _, err := exec.LookPath("pgbouncer"); err != nil {
		return nil, errors.New("pgbouncer not found (devenv install distributed)")
	}
	if o.PoolMode == "" {
		o.PoolMode = "transaction"
	}
	if o.PoolSize == 0 {
		o.PoolSize = 20
	}
	// pgbouncer refuses to run as root.
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
	b := &PgBouncer{pg: pg, opts: o, cred: cred}
	for attempt := 0; ; attempt++ {
		if b.port, err = FreePort(); err != nil {
			return nil, err
		}
		if err = b.start(); err == nil || attempt == 4 {
			return b, err
		}
	}
}

func (b *PgBouncer) start() error {
	dir := b.opts.Dir
	users := filepath.Join(dir, "userlist.txt")
	if err := os.WriteFile(users, []byte(fmt.Sprintf("%q %q\n", "postgres", b.pg.password)), 0o600); err != nil {
		return err
	}
	conf := filepath.Join(dir, "pgbouncer.ini")
	ini := fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
pool_mode = %s
default_pool_size = %d
max_client_conn = 2000
admin_users = postgres
logfile = %s
pidfile = %s
log_connections = 0
log_disconnections = 0
`, b.pg.Port(), b.port, users, b.opts.PoolMode, b.opts.PoolSize,
		filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	if err := os.WriteFile(conf, []byte(ini), 0o600); err != nil {
		return err
	}
	if err := chownTree(dir, b.cred); err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(dir, "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := command(b.cred, lf, "pgbouncer", conf)
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("pgbouncer: %w", err)
	}
	b.cmd, b.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(b.exited) }()
	ok := waitFor(15*time.Second, b.exited, func() bool {
		c, err := net.DialTimeout("tcp", b.Addr(), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if !ok {
		b.Stop()
		return fmt.Errorf("pgbouncer did not start on port %d: %s %s", b.port,
			tail(filepath.Join(dir, "stderr.log"), 1000), tail(filepath.Join(dir, "pgbouncer.log"), 1000))
	}
	return nil
}

// Stop stops pgbouncer (SIGINT: at once) and waits for it.
func (b *PgBouncer) Stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
	b.cmd = nil
}

// Addr is host:port on loopback.
func (b *PgBouncer) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

// URL is the connection URL for database db through pgbouncer, as the
// superuser.
func (b *PgBouncer) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", b.pg.password),
		Host: b.Addr(), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Log is the tail of pgbouncer's log, for failure messages.
func (b *PgBouncer) Log() string { return tail(filepath.Join(b.opts.Dir, "pgbouncer.log"), 4000) }
